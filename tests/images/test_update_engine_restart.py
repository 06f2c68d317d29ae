"""The Docker engine restarted in the middle of an update of a running stack: the stack
comes back healthy on the old or the new version, never a mix that fails its health
check. A gateway engine of its own runs the bus and core (two services on one image: the
one image whose half-done switch is a mix), and is killed at a chosen point of an update
of core by delta, then started again."""

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from services import contract as c
from services.images.journal import FILE, Entry, Journal
from services.images.trust import TRUSTED_ROOT, Policy
from services.images.update import UpdateError, plan, service_containers, update
from services.updater.client import UpdaterClient
from services.updater.service import create
from testkit.gateway_stack import gateway_stack
from testkit.local_registry import LocalRegistry
from testkit.private_engine import PrivateEngine
from tests.helpers import eventually, healthy_by_the_engine
from tests.images.stack import publish_code_change, publish_signed

pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-restart"
RUNS = ("bus", "protocolmanager", "devicemanager")


@pytest.fixture(scope="module")
def core_versions(docker_client, stack_images, tmp_path_factory) -> Iterator[tuple]:
    """A registry of its own with core's image and a one-line change of it published
    (with a delta from the first): (registry, old image id, new image id)."""
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    try:
        old = docker_client.images.get("agile/core:multistage").id
        publish_signed(registry, "core")
        new = publish_code_change(docker_client, registry, "core", deltas=True)
        yield registry, old, new
    finally:
        registry.stop()


@dataclass
class RestartGateway:
    engine: PrivateEngine
    state: Path
    registry: str
    old: str
    new: str

    @property
    def trust(self) -> Policy:
        """The update service's own policy there (the root provisioned in its state)."""
        return Policy(self.state / TRUSTED_ROOT, self.state / "trust")

    def core(self) -> list:
        return service_containers(self.engine.client(), PROJECT, "core")


@contextlib.contextmanager
def restart_gateway(docker_client, core_versions, folder: Path, state: Path):  # type: ignore[no-untyped-def]
    """The bus and core as compose brings them up, on an engine of its own."""
    registry, old, new = core_versions
    (folder / "engine").mkdir()
    images = ("agile/bus:multistage", "agile/core:multistage")
    with gateway_stack(folder / "engine", state, PROJECT, images, RUNS, registry) as engine:
        gateway = RestartGateway(engine, state, registry.address, old, new)
        the_plan = plan(
            engine.client(), registry.address, "core", "multistage", trust=gateway.trust
        )
        assert the_plan.method == "delta"
        yield gateway


def crash_at(engine: PrivateEngine, event: str, nth: int) -> threading.Thread:
    """Kill the engine (SIGKILL, as a power cut) at the stack's nth container `event`."""
    events = engine.client().events(
        decode=True,
        filters={
            "type": "container",
            "event": event,
            "label": f"com.docker.compose.project={PROJECT}",
        },
    )  # subscribed now, before the update begins

    def watch() -> None:
        with contextlib.suppress(Exception):  # the stream ends with the engine
            for seen, _ in enumerate(events, 1):
                if seen == nth:
                    engine.crash()
                    return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


class CrashAtCommit(Journal):
    """The journal of an update that kills the engine the moment the new version has
    passed its health gate and said so on disk: before any old container is removed. An
    engine event cannot mark that point: the update's last calls outrun a watcher."""

    def __init__(self, path: Path, engine: PrivateEngine) -> None:
        super().__init__(path)
        self.engine = engine

    def write(self, entry: Entry) -> None:
        super().write(entry)
        if entry.committed:
            self.engine.crash()


def cut_off_update(gw: RestartGateway, event: str, nth: int) -> None:
    """`event` "commit" cuts at the health gate's pass; a container event at its nth."""
    committing = event == "commit"
    journal = CrashAtCommit(gw.state / FILE, gw.engine) if committing else Journal(gw.state / FILE)
    watcher = None if committing else crash_at(gw.engine, event, nth)
    with pytest.raises((UpdateError, docker.errors.DockerException, OSError)):
        update(
            gw.engine.client(),
            gw.state,
            gw.registry,
            "core",
            say=lambda _line: None,
            window_s=120,
            journal=journal,
            trust=gw.trust,
        )
    if watcher is not None:
        watcher.join(30)
    assert journal.read() is not None  # it was cut off past its start
    gw.engine.start()


def assert_one_version(gw: RestartGateway, image: str) -> None:
    """Both core services on `image` under their own names, healthy; nothing set aside;
    the stack's tag on it; the journal gone."""
    client = gw.engine.client()
    running = gw.core()
    assert sorted(c.name for c in running) == [
        f"{PROJECT}_devicemanager_1",
        f"{PROJECT}_protocolmanager_1",
    ]
    assert {c.attrs["Image"] for c in running} == {image}
    healthy_by_the_engine(client, running)  # its own verdict too, not the gate's alone
    assert client.images.get("agile/core:multistage").id == image
    assert not (gw.state / FILE).exists()


CUTS = {
    # point of the cut: (container event, its nth occurrence, the version that stays)
    "one of core's two services switched": ("start", 1, "old"),
    "both switched, in the health window": ("start", 2, "old"),
    "healthy, the old containers not yet removed": ("commit", 0, "new"),
}


@pytest.mark.parametrize("cut", list(CUTS))
async def test_an_update_cut_off_by_the_engine_is_finished_when_the_updater_starts(
    docker_client, core_versions, services, client, tmp_path, cut
) -> None:
    """The engine killed at `cut`, started again: the update service, starting (as its
    container does with the engine), finds the journal and brings core back to one
    version: the old one before the health gate, the new one after it."""
    event, nth, stays = CUTS[cut]
    with restart_gateway(docker_client, core_versions, tmp_path, services.state_dir) as gw:
        await asyncio.to_thread(cut_off_update, gw, event, nth)
        config = services.config(docker=f"unix://{gw.engine.socket}", window="120")
        await services.start(create(config))
        calls = UpdaterClient(client)

        async def ended() -> c.Operation | None:
            op = await calls.current()
            return op if op.kind == "recover" and op.state != c.OperationState.RUNNING else None

        op = await eventually(ended, timeout=300, interval=0.5)
        expected = c.OperationState.SUCCEEDED if stays == "new" else c.OperationState.ROLLED_BACK
        assert op.state == expected, op.lines
        await asyncio.to_thread(assert_one_version, gw, gw.new if stays == "new" else gw.old)


async def test_an_update_the_engine_cut_off_is_undone_once_the_engine_is_back(
    docker_client, core_versions, services, client, tmp_path
) -> None:
    """The update service survives the engine's restart (a native one, or an engine with
    live-restore): its update fails in the middle of the switch, it waits for the engine
    and goes back to the old version; the operation says it was rolled back."""
    with restart_gateway(docker_client, core_versions, tmp_path, services.state_dir) as gw:
        config = services.config(docker=f"unix://{gw.engine.socket}", window="120")
        await services.start(create(config))
        calls = UpdaterClient(client)
        watcher = crash_at(gw.engine, "start", 1)
        op_id = await calls.update(["core"], gw.registry, 120)

        async def crashed() -> bool:
            return not watcher.is_alive()

        await eventually(crashed, timeout=300, interval=0.2)
        await asyncio.to_thread(gw.engine.start)

        async def ended() -> c.Operation | None:
            op = await calls.current()
            return op if op.state != c.OperationState.RUNNING else None

        op = await eventually(ended, timeout=300, interval=0.5)
        assert op.id == op_id and op.state == c.OperationState.ROLLED_BACK, op.lines
        assert any("the update was cut off" in line for line in op.lines), op.lines
        await asyncio.to_thread(assert_one_version, gw, gw.old)
