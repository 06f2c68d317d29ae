"""`agile-gateway up --containers`: the gateway as the compose stack of dockerfiles/.

The bus socket lives in DIR/run (mounted at /run/agile in every container), so that
clients on the host find the bus as for the native runtime: DIR/bus.address.
"""

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker  # untyped, and heavy: the CLI's other commands do without it

from services.bus import ADDRESS_FILE
from services.catalog import CATALOG, IMAGES
from services.compose import PROJECT, STACK_FILE, StackError, compose_command, environment
from services.runtime.supervisor import STATUS_FILE

CONTAINER_UID = 10001  # the `agile` user of every image


def missing_images(client: "docker.DockerClient", strategy: str) -> list[str]:
    from docker.errors import ImageNotFound

    missing = []
    for service in IMAGES:
        try:
            client.images.get(f"agile/{service}:{strategy}")
        except ImageNotFound:
            missing.append(service)
    return missing


def up(
    state_dir: Path,
    simulate: bool,
    strategy: str,
    project: str = PROJECT,
    registry: str = "",
    options: dict[str, list[str]] | None = None,
) -> str:
    """Bring the stack up (detached); the bus address. `registry` (host:port) is where
    its updates come from; `options`: each service's KEY=VALUE pairs."""
    from services.engine import connect

    client = connect(timeout=60, ping=False)
    if missing := missing_images(client, strategy):
        raise StackError(
            f"no {strategy} image of {', '.join(missing)}: build them with "
            + "; ".join(f"agile-gateway images build {m} --strategy {strategy}" for m in missing)
        )
    run = run_dir(state_dir)
    _own_volumes(client, project)
    proc = subprocess.run(
        [*compose_command(simulate, project), "up", "-d", "--remove-orphans"],
        env=environment(state_dir, strategy, options),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StackError(f"docker-compose up failed:\n{proc.stderr.strip()[-2000:]}")
    address = f"unix:path={run / 'bus.sock'}"
    (state_dir / ADDRESS_FILE).write_text(address + "\n")
    settings = {
        "project": project,
        "simulate": simulate,
        "strategy": strategy,
        "registry": registry,
        "options": options or {},
    }
    (state_dir / STACK_FILE).write_text(json.dumps(settings) + "\n")
    _runtime_state(state_dir, "running")
    return address


def run_dir(state_dir: Path) -> Path:
    """DIR/run (and its system/ for the simulated BlueZ's bus), made for the bus daemons,
    which run as `agile` in their containers; with the gateway bus's users and groups
    and its role groups' policy (services.busconfig), from the host's role groups now."""
    from services.access import role_groups
    from services.busconfig import (
        ACCOUNTS_DIR,
        ROLES_CONF,
        container_identities,
        existing_groups,
        render_roles,
    )

    run = state_dir / "run"
    for folder in (run, run / "system", run / ACCOUNTS_DIR):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, CONTAINER_UID, CONTAINER_UID)
        folder.chmod(0o755)
    groups = existing_groups(role_groups())
    passwd, group = container_identities(groups)
    for path, text in (
        (run / ACCOUNTS_DIR / "passwd", passwd),
        (run / ACCOUNTS_DIR / "group", group),
        (run / ROLES_CONF, render_roles(groups)),
    ):
        path.write_text(text)
        path.chmod(0o644)  # the bus daemon's user (`agile`) reads them
    return run


def _own_volumes(client: "docker.DockerClient", project: str) -> None:
    """Each service's state volume belongs to its user. A volume made before services
    ran as their own users (all as `agile`) is handed over, so that an upgrade finds
    its devices, records and queue; a new one takes its image folder's owner and is
    handed over too."""
    from docker.errors import NotFound

    for spec in CATALOG.values():
        if not spec.uid:
            continue
        try:
            volume = client.volumes.get(f"{project}_{spec.name}")
        except NotFound:
            continue
        root = Path(volume.attrs["Mountpoint"])
        try:
            if root.stat().st_uid == spec.uid:
                continue
            for folder, dirs, files in os.walk(root):
                for name in [folder, *(os.path.join(folder, x) for x in dirs + files)]:
                    os.lchown(name, spec.uid, CONTAINER_UID)
            root.chmod(0o2770)
        except OSError as exc:
            raise StackError(
                f"cannot hand volume {volume.name} to its service's user ({exc}); "
                "run agile-gateway up as root"
            ) from None


def _runtime_state(state_dir: Path, state: str) -> None:
    """runtime.json as the native runtime writes it, so that tools (agile-tui) find the
    stack's state folder and know its runtime; the services are the containers."""
    status = {"runtime": "containers", "state": state, "services": {}}
    (state_dir / STATUS_FILE).write_text(json.dumps(status) + "\n")


def down(state_dir: Path, simulate: bool, project: str = PROJECT) -> None:
    proc = subprocess.run(
        [*compose_command(simulate, project), "down"],
        env=environment(state_dir, "multistage"),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StackError(f"docker-compose down failed:\n{proc.stderr.strip()[-2000:]}")
    _runtime_state(state_dir, "stopped")


async def wait_for_names(address: str, names: list[str], timeout_s: float = 90.0) -> float:
    """Seconds until every name is owned on the bus; StackError after `timeout_s`."""
    from services.bus import connect, list_names

    began = time.monotonic()
    missing = list(names)
    while time.monotonic() - began < timeout_s:
        try:
            bus = await connect(address, timeout=2.0)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.5)
            continue
        try:
            while time.monotonic() - began < timeout_s:
                owned = set(await list_names(bus))
                missing = [n for n in names if n not in owned]
                if not missing:
                    return time.monotonic() - began
                await asyncio.sleep(0.5)
        finally:
            bus.disconnect()
    raise StackError(f"not on the bus after {timeout_s:g} s: {', '.join(missing)}")
