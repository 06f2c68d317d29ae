"""The container stack (dockerfiles/compose.yaml + compose.sim.yaml) on the real engine."""

import json
import os
from pathlib import Path

import pytest
from dbus_fast.constants import NameFlag
from dbus_fast.errors import DBusError

from services import contract as c
from services.bus import connect
from services.catalog import CATALOG
from services.compose import docker_config
from services.contract import Role
from tests.helpers import THERMOMETER, dm
from tests.images.stack import cli, forget_volumes, stack_down, stack_up
from tests.roles import OBJECTS, calls_of, groups_of, mismatches
from tests.roles import probe as role_probe

PROBE = (Path(__file__).parents[1] / "bus_probe.py").read_text()
ROLE_PROBE = (Path(__file__).parents[1] / "role_probe.py").read_text()
KNOWN_BLOBS = """
import docker
from services.images.known_blobs import known_blobs
engine = docker.from_env()
ids = [image.id for image in engine.images.list()]
print("readable" if known_blobs(engine, ids) else "not readable")
"""

# Image builds (and the first debootstrap) take minutes, not the suite's default 120 s.
pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-stack"


@pytest.fixture
def stack(stack_images, open_folder: Path, role_users, role_groups_set):
    """The simulated stack, its role groups the test users' (tests/roles.py), in a
    folder other users can pass (to reach its bus socket)."""
    state = stack_up(open_folder / "state", PROJECT)
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
            images = str(Path(docker_client.info()["DockerRootDir"]) / "image")
            assert set(binds) == {
                str(stack / "run"),
                "/var/run/docker.sock",
                str(stack.resolve()),
                images,  # read-only: which layer blobs the engine knows
                docker_config(),  # read-only: the registries' credentials (docker login)
                "/etc/docker/certs.d",  # read-only: the registries' CAs the engine has
            }
            writable = {m["Destination"] for m in container.attrs["Mounts"] if m["RW"]}
            assert not writable & {"/root/.docker", "/etc/docker/certs.d"}
            code, out = container.exec_run(["python3", "-c", KNOWN_BLOBS])
            assert (code, out.strip()) == (0, b"readable"), out.decode()
            continue
        # The MQTT bridge is the one other with a network: to reach its broker.
        network = "bridge" if container.labels["com.docker.compose.service"] == "mqtt" else "none"
        assert host["NetworkMode"] == network, container.name
        service = container.labels["com.docker.compose.service"]
        # Each service its own user in the agile group; the bus daemons run as `agile`.
        user = f"{CATALOG[service].uid}:10001" if service in CATALOG else "agile"
        assert container.attrs["Config"]["User"] == user, container.name
        run = stack / "run"
        if service == "bus":  # its users and groups: the stack's and the role groups'
            accounts = [str(run / "accounts" / name) for name in ("passwd", "group")]
            assert sorted(binds) == sorted([str(run), *accounts]), container.name
        else:
            assert binds == [str(run)], container.name


DENIED = "org.freedesktop.DBus.Error.AccessDenied"


def probe(container, user: str, name: str) -> dict:
    """What the gateway bus lets `user` do, asked from inside `container` (tests/
    bus_probe.py): own `name`, eavesdrop, become a monitor."""
    code, out = container.exec_run(
        ["python3", "-c", PROBE, "unix:path=/run/agile/bus.sock", name], user=user
    )
    assert code == 0, out.decode()
    return json.loads(out.decode().splitlines()[-1])


async def test_each_service_owns_only_its_own_names_and_nobody_eavesdrops(stack, docker_client):
    """Bus least privilege in the stack: a process with storage's uid cannot own the
    DeviceManager's name nor eavesdrop nor monitor; the monitor role (`agile`, the bus
    daemon's user) may monitor; the operator (root on the host) may call, not own."""
    containers = {
        c.labels["com.docker.compose.service"]: c
        for c in docker_client.containers.list(
            filters={"label": f"com.docker.compose.project={PROJECT}"}
        )
    }
    storage_uid = f"{CATALOG['storage'].uid}:10001"
    as_storage = probe(containers["storage"], storage_uid, c.DEVICE_MANAGER_NAME)
    assert as_storage == {"own": DENIED, "eavesdropped": [], "monitor": DENIED}
    as_monitor = probe(containers["storage"], "10001:10001", c.DEVICE_MANAGER_NAME)
    assert as_monitor == {"own": DENIED, "eavesdropped": [], "monitor": "allowed"}

    bus = await connect(f"unix:path={stack / 'run' / 'bus.sock'}")
    try:
        with pytest.raises(DBusError) as err:
            await bus.request_name(c.DEVICE_MANAGER_NAME, NameFlag.DO_NOT_QUEUE)
        assert err.value.type == DENIED
        await dm(bus, "Devices")  # and calls it
    finally:
        bus.disconnect()


def test_state_volumes_of_an_earlier_version_are_handed_to_each_services_user(
    stack_images, docker_client, tmp_path: Path
):
    """Before, every service ran as `agile` (10001), its volume owned by it, mode 0750:
    `up` hands each volume to its service's user, so an upgrade keeps its state."""
    project = "agiletest-upgrade"
    forget_volumes(project)
    labels = {"com.docker.compose.project": project, "com.docker.compose.volume": "storage"}
    volume = docker_client.volumes.create(f"{project}_storage", labels=labels)
    root = Path(volume.attrs["Mountpoint"])
    (root / "storage").mkdir()
    kept = root / "storage" / "policies.json"
    kept.write_text("{}")
    for path in (root, root / "storage", kept):
        os.chown(path, 10001, 999)
    root.chmod(0o750)
    state = tmp_path / "state"
    state.mkdir()
    up = cli("up", "--containers", "--simulate", "--project", project, "--state-dir", str(state))
    try:
        assert up.returncode == 0, up.stderr  # Storage came up on it
        uid = CATALOG["storage"].uid
        assert {p.stat().st_uid for p in (root, root / "storage", kept)} == {uid}
        assert kept.read_text() == "{}"
    finally:
        stack_down(state, project)


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
        await states.until(pilot, lambda: states.data_points(pilot) >= 1)

        before = app.session.gateway.bus
        switch(docker_client, PROJECT, "bus", "agile/bus:multistage").keep()
        # A new connection (the old one may be lost and replaced between two looks).
        await states.until(
            pilot,
            lambda: app.session.gateway.bus not in (None, before) and app.bus_state == "connected",
            timeout=120,
        )
        after = states.data_points(pilot)
        await states.until(pilot, lambda: states.data_points(pilot) > after, timeout=120)


async def test_every_method_as_each_role_and_each_service_on_the_stack(
    stack, role_users, docker_client
):
    """The access matrix on the container stack: members of each role group (on the
    host), a user in none, and each service's own uid (from inside a container), every
    method of the roles table; the bus policy refuses first, the services check too."""
    ifaces = [i for i in OBJECTS if i != c.RUNTIME_IFACE]  # the stack has no runtime
    refusals = (DENIED, c.ACCESS_DENIED_ERROR)
    address = f"unix:path={stack / 'run' / 'bus.sock'}"
    for role, user in role_users.items():
        said = await role_probe(address, user.pw_uid, user.pw_gid, groups_of(user), ifaces)
        if role == Role.NONE:
            assert "connect" in said, f"a user in no role group connected: {said}"
            continue
        wrong = mismatches(said["answers"], role, "", ifaces, refusals)
        assert not wrong, f"{role}: {wrong}"
    (storage,) = docker_client.containers.list(
        filters={
            "label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=storage"]
        }
    )
    for service in ("protocolmanager", "devicemanager", "storage", "mqtt", "dummy"):
        code, out = storage.exec_run(
            [
                "python3",
                "-c",
                ROLE_PROBE,
                "unix:path=/run/agile/bus.sock",
                json.dumps(calls_of(ifaces)),
            ],
            user=f"{CATALOG[service].uid}:10001",
        )
        assert code == 0, out.decode()
        said = json.loads(out.decode().splitlines()[-1])
        wrong = mismatches(said["answers"], Role.VIEWER, service, ifaces, refusals)
        assert not wrong, f"{service}: {wrong}"


async def test_what_an_admin_does_is_in_every_services_audit_log(stack):
    """Every service keeps its audit log where it can write: the update service, whose
    state folder is the stack's (read-only), in its volume."""
    from services.audit import gather
    from services.updater.client import UpdaterClient

    bus = await connect(f"unix:path={stack / 'run' / 'bus.sock'}")
    try:
        assert await UpdaterClient(bus).cancel() is False  # nothing runs: nothing to cancel
        await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
        entries, problems = await gather(bus)
    finally:
        bus.disconnect()
    assert problems == []
    done = {(e.service, e.call, e.outcome) for e in entries if e.user == "root"}
    assert ("updater", "Updater.Cancel", "ok") in done
    assert ("devicemanager", "DeviceManager.Register", "ok") in done
