"""The container stack's compose invocation and the settings it was brought up with
(DIR/stack.json): what bringing it up, down and updating it share."""

import contextlib
import json
import os
import shlex
from pathlib import Path
from typing import Any

from services.access import ROLE_GROUPS_ENV, resolved_groups, role_groups
from services.errors import AgileError
from services.paths import DOCKERFILES

STACK_FILE = "stack.json"
PROJECT = "agile"


class StackError(AgileError, RuntimeError):
    """The stack cannot come up; the message says why and what to do."""


def compose_command(simulate: bool, project: str = PROJECT) -> list[str]:
    variant = "compose.sim.yaml" if simulate else "compose.radios.yaml"
    return [
        "docker-compose",
        "-p",
        project,
        "-f",
        str(DOCKERFILES / "compose.yaml"),
        "-f",
        str(DOCKERFILES / variant),
    ]


def engine_socket() -> str:
    """The engine's socket on this host, for the update service's container."""
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


def engine_images() -> str:
    """The engine's image records on this host (its data root's image/), which the update
    service reads to know which layers a pull will skip (services.images.known_blobs)."""
    from services.engine import connect, said
    from services.errors import EngineError

    try:
        with contextlib.closing(connect(timeout=10, ping=False)) as client, said("info"):
            return str(Path(client.info()["DockerRootDir"]) / "image")
    except (EngineError, KeyError):
        return "/var/lib/docker/image"  # the engine's default; the stack's start says more


def docker_config() -> str:
    """The docker config folder of whoever brings the stack up (their `docker login`),
    made if missing: compose would make a missing bind-mount source as root."""
    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(folder)


def options_variable(service: str) -> str:
    """The variable compose.yaml hands a service as its AGILE_OPTIONS."""
    return f"AGILE_{service.upper().replace('-', '_')}_OPTIONS"


def environment(
    state_dir: Path, strategy: str, options: dict[str, list[str]] | None = None
) -> dict[str, str]:
    """compose's environment; `options`: each service's KEY=VALUE pairs (`up --option`)."""
    env = {
        **os.environ,
        "AGILE_RUN_DIR": str(state_dir / "run"),
        "AGILE_STATE_DIR": str(state_dir.resolve()),
        "AGILE_STRATEGY": strategy,
        "AGILE_DOCKER_SOCKET": engine_socket(),
        "AGILE_ENGINE_IMAGES": engine_images(),
        "AGILE_DOCKER_CONFIG": docker_config(),
        # By gid: the services' containers know no host group by name.
        ROLE_GROUPS_ENV: resolved_groups(role_groups()),
    }
    for service, pairs in (options or {}).items():
        env[options_variable(service)] = shlex.join(pairs)
    return env


def stack_settings(state_dir: Path) -> dict[str, Any]:
    """How the stack in `state_dir` was brought up (`environment` makes compose's from it)."""
    try:
        return json.loads((state_dir / STACK_FILE).read_text())
    except (OSError, ValueError):
        raise StackError(
            f"no container stack in {state_dir} (agile-gateway up --containers)"
        ) from None
