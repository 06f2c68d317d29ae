"""Fixtures that start real daemons on private addresses and clean up after themselves."""

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.bus import connect
from services.busconfig import start_bus_daemon
from testkit.docker_images import TEST_PROJECT, built, make_tiny_image
from testkit.gateway import Gateway, InProcess
from testkit.operator import reach, sshd  # noqa: F401 - fixtures for every test folder
from tests.roles import open_folder, role_groups_set, role_users  # noqa: F401 - the same

# What a test needs, read off the fixtures it uses (their closure): the markers cannot
# drift from what the test does. A test that starts a daemon by itself says so with
# its own marker. The rest are unit tests (`./dev test -m unit`).
NEEDS = {
    "ssh": ("sshd", "reach"),
    "docker": ("docker_client",),
    "gateway": ("gateway_factory",),
    "bus": ("bus_address", "system_bus"),
}


# The suite runs in parallel (`./dev test`: pytest-xdist, --dist loadgroup); tests that
# share what the machine has one of run one after another on one worker: the Docker
# engine's images and tags (and the users made for the role tests, which the stack
# tests use too), and the demo gateways the SSH tests count by their command lines.
SERIAL = {
    "engine": ("docker_client", "role_users"),
    "ssh": ("sshd", "reach"),
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for marker, names in NEEDS.items():
            if fixtures.intersection(names):
                item.add_marker(marker)
        if not any(item.get_closest_marker(m) for m in NEEDS):
            item.add_marker("unit")
        group = next((g for g, names in SERIAL.items() if fixtures.intersection(names)), None)
        if group and not item.get_closest_marker("xdist_group"):  # unless it has its own
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def bus_address(tmp_path: Path) -> Iterator[str]:
    """A fresh gateway bus (dbus-daemon with the gateway's policy) for one test."""
    proc, address = start_bus_daemon(tmp_path / "bus")
    yield address
    proc.terminate()
    proc.wait(5)


@pytest.fixture
async def client(bus_address: str):
    bus = await connect(bus_address)
    yield bus
    bus.disconnect()


@pytest.fixture
async def services(bus_address: str, tmp_path: Path):
    runner = InProcess(bus_address, tmp_path / "state")
    yield runner
    await runner.stop_all()


@pytest.fixture
def gateway_factory(tmp_path: Path):
    started: list[Gateway] = []

    def start(
        *options: str, state_dir: Path | None = None, extra: list[str] | None = None
    ) -> Gateway:
        gw = Gateway(state_dir or tmp_path / "gw", list(options), extra or [])
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


# --- Docker: the real engine that .ci/run starts ------------------------------------


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        pytest.fail(f"these tests need a running Docker engine (.ci/run starts dockerd): {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def hierarchy(docker_client) -> list[str]:
    """The base-image hierarchy, built once per test session (cached by recipe digest,
    so a machine that has it builds nothing)."""
    from buildhost.hierarchy import ensure_hierarchy

    return ensure_hierarchy(docker_client)


@pytest.fixture(scope="session")
def stack_images(docker_client, hierarchy) -> None:
    """The multi-stage image of every service of the stack."""
    from services.catalog import IMAGES

    for service in IMAGES:
        built(docker_client, service)


@pytest.fixture(scope="session")
def tiny_image(docker_client) -> str:
    return make_tiny_image(docker_client)


@pytest.fixture
def container_factory(docker_client, tiny_image):
    made = []

    def run(name: str, command: list[str] | None = None):
        container = docker_client.containers.run(
            tiny_image,
            command,
            name=f"{TEST_PROJECT}-{name}-{os.getpid()}",
            detach=True,
            network_mode="none",
            labels={"com.docker.compose.project": TEST_PROJECT},
        )
        made.append(container)
        return container

    yield run
    for container in made:
        with contextlib.suppress(Exception):
            container.remove(force=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts a size-limited tmpfs (e.g. "256k"): a real full disk, without filling the
    machine's."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
        )
        if result.returncode != 0:
            pytest.fail(f"mounting a tmpfs needs root (CI runs as root): {result.stderr.decode()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=True)
