"""What updating the container stack would take: per service image, the running version
and the exact bytes its update downloads from the registry. Blocking: call it from a
thread worker."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.catalog import IMAGES
from services.compose import StackError, stack_settings
from services.images.recipes import LABEL
from services.images.update import Plan, UpdateError, plan

# What the Updates screen runs in a thread worker (pull, recreate, health gate, rollback).
from services.images.update import rollback as rollback
from services.images.update import update as update


@dataclass
class ServiceUpdate:
    service: str
    running: str  # the running image's version label (or short id); "" if none
    plan: Plan | None = None
    problem: str = ""  # why there is no plan
    short: str = ""  # the same in a few words


@dataclass
class UpdateCheck:
    registry: str
    strategy: str
    services: list[ServiceUpdate] = field(default_factory=list)

    def _updates(self) -> list[Plan]:
        return [s.plan for s in self.services if s.plan and not s.plan.up_to_date]

    @property
    def pending(self) -> list[str]:
        return [p.service for p in self._updates()]

    @property
    def total_bytes(self) -> int:
        return sum(p.download_bytes for p in self._updates())


def stack_registry(state_dir: Path | None, registry: str | None) -> tuple[str, str]:
    """(registry, strategy) of the stack in `state_dir`; StackError/UpdateError say what
    is missing."""
    if state_dir is None:
        raise StackError("no container stack here (agile-gateway up --containers)")
    settings = stack_settings(state_dir)
    registry = registry or settings.get("registry") or ""
    if not registry:
        raise UpdateError(
            "no registry: bring the stack up with --registry HOST:PORT, "
            "or start agile-tui with --registry"
        )
    return registry, settings["strategy"]


def running_version(client: Any, service: str, strategy: str) -> str:
    import docker

    try:
        image = client.images.get(f"agile/{service}:{strategy}")
    except docker.errors.ImageNotFound:
        return ""
    return image.labels.get(f"{LABEL}.version") or image.short_id.removeprefix("sha256:")


def check(client: Any, state_dir: Path | None, registry: str | None) -> UpdateCheck:
    registry, strategy = stack_registry(state_dir, registry)
    result = UpdateCheck(registry, strategy)
    for service in IMAGES:
        row = ServiceUpdate(service, running_version(client, service, strategy))
        try:
            row.plan = plan(client, registry, service, strategy)
        except UpdateError as exc:
            row.problem, row.short = str(exc), exc.short
        result.services.append(row)
    return result
