"""The container stack (dockerfiles/compose.yaml + compose.sim.yaml) on the real engine."""

import json
from pathlib import Path

import pytest

from tests.images.conftest import cli

# Image builds (and the first debootstrap) take minutes, not the suite's default 120 s.
pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-stack"


@pytest.fixture
def stack(stack_images, tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    up = cli("up", "--containers", "--simulate", "--project", PROJECT, "--state-dir", str(state))
    try:
        assert up.returncode == 0, up.stderr
        yield state
    finally:
        down = cli(
            "down", "--containers", "--simulate", "--project", PROJECT, "--state-dir", str(state)
        )
        assert down.returncode == 0, down.stderr


def test_the_simulated_stack_comes_up_and_status_sees_every_service(stack, docker_client):
    status = cli("status", "--state-dir", str(stack), "--json")
    report = json.loads(status.stdout)
    assert report["bus"] == "reachable"
    running = {s["name"] for s in report["services"] if s["state"] == "running"}
    assert running == {"protocolmanager", "devicemanager", "storage", "dummy", "ble", "zigbee"}
    containers = docker_client.containers.list(
        filters={"label": f"com.docker.compose.project={PROJECT}"}
    )
    assert len(containers) == 9
    for container in containers:
        host = container.attrs["HostConfig"]
        assert not host["Privileged"] and host["CapDrop"] == ["ALL"], container.name
        assert host["ReadonlyRootfs"] and host["NetworkMode"] == "none", container.name
        assert container.attrs["Config"]["User"] == "agile", container.name
        assert not host.get("Devices"), container.name  # no radios in the simulated stack
        binds = [m["Source"] for m in container.attrs["Mounts"] if m["Type"] == "bind"]
        assert binds == [str(stack / "run")], container.name


def test_a_missing_image_is_said_with_the_command_that_builds_it(tmp_path):
    out = cli(
        "up",
        "--containers",
        "--strategy",
        "nonesuch",
        "--project",
        PROJECT,
        "--state-dir",
        str(tmp_path),
    )
    assert out.returncode == 1
    assert "agile-gateway images build bus --strategy nonesuch" in out.stderr
