"""The container stack (services/dockerfiles/compose.yaml + compose.sim.yaml) on the real engine."""

import json
from pathlib import Path

import pytest

from tests.images.conftest import cli, stack_down, stack_up

# Image builds (and the first debootstrap) take minutes, not the suite's default 120 s.
pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-stack"


@pytest.fixture
def stack(stack_images, tmp_path: Path):
    state = stack_up(tmp_path / "state", PROJECT)
    yield state
    stack_down(state, PROJECT)


def test_the_simulated_stack_comes_up_and_status_sees_every_service(stack, docker_client):
    status = cli("status", "--state-dir", str(stack), "--json")
    report = json.loads(status.stdout)
    assert report["bus"] == "reachable"
    running = {s["name"] for s in report["services"] if s["state"] == "running"}
    assert running == {
        "protocolmanager",
        "devicemanager",
        "storage",
        "dummy",
        "ble",
        "zigbee",
        "mqtt",
        "updater",
    }
    containers = docker_client.containers.list(
        filters={"label": f"com.docker.compose.project={PROJECT}"}
    )
    assert len(containers) == 11
    for container in containers:
        host = container.attrs["HostConfig"]
        assert not host["Privileged"] and host["CapDrop"] == ["ALL"], container.name
        assert host["ReadonlyRootfs"], container.name
        assert not host.get("Devices"), container.name  # no radios in the simulated stack
        binds = [m["Source"] for m in container.attrs["Mounts"] if m["Type"] == "bind"]
        if container.labels["com.docker.compose.service"] == "updater":
            # The one privileged piece: the engine, the registry's network, the settings.
            assert host["NetworkMode"] == "host" and container.attrs["Config"]["User"] == "root"
            assert set(binds) == {str(stack / "run"), "/var/run/docker.sock", str(stack.resolve())}
            continue
        # The MQTT bridge is the one other with a network: to reach its broker.
        network = "bridge" if container.labels["com.docker.compose.service"] == "mqtt" else "none"
        assert host["NetworkMode"] == network, container.name
        assert container.attrs["Config"]["User"] == "agile", container.name
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


async def test_agile_tui_survives_the_bus_container_being_replaced(stack, docker_client):
    """An update of the bus replaces its container: every service and agile-tui join the
    new bus on their own, and the live chart's stream is subscribed again."""
    from services.images.update import switch
    from tests.tui import states

    app = states.make_app((stack / "bus.address").read_text().strip(), stack)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.devices_shown(pilot)
        await pilot.press("d")
        await states.until(
            pilot, lambda: states.ENV_SENSOR in states.table(pilot, "discovered").rows
        )
        states.select_row(pilot, "discovered", states.ENV_SENSOR)
        await pilot.press("p")
        await states.on_screen(pilot, "PairModal")
        await pilot.press("enter", "enter")  # the proposed type and name
        await states.until(pilot, lambda: states.rows(pilot, "registered") == 1)
        await pilot.press("3")
        await states.until(pilot, lambda: pilot.app.screen.query_one("#streams").option_count >= 1)
        await pilot.press("space")
        data = app.screen
        await states.until(pilot, lambda: data.point_count() >= 1)

        before = app.session.gateway.bus
        switch(docker_client, PROJECT, "bus", "agile/bus:multistage").keep()
        # A new connection (the old one may be lost and replaced between two looks).
        await states.until(
            pilot,
            lambda: app.session.gateway.bus not in (None, before) and app.bus_state == "connected",
            timeout=120,
        )
        after = data.point_count()
        await states.until(pilot, lambda: data.point_count() > after, timeout=120)
