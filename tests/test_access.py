"""Who may do what on the gateway, tried as each kind of user would: members of each
role group, a user in none, a service's own identity; every method of the roles table
called as each, on the native gateway (its bus policy refuses first) and on a bus whose
policy lets everything through (the services' own check alone). And the attacks of a
user who should not be believed: an impostor for a service's name, forged signals."""

import asyncio
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import dbus_fast
import pytest
from dbus_fast import DBusError
from dbus_fast.aio import MessageBus

from services import contract as c
from services.bus import call, connect, emit_signal
from services.catalog import CATALOG
from services.contract import Role
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.paths import ROOT
from services.protocolmanager.service import create as create_pm
from services.storage.service import create as create_storage
from testkit.gateway import InProcess
from tests.helpers import THERMOMETER, dm, eventually, pm
from tests.roles import (
    BUS_DENIED,
    OBJECTS,
    PROBE_PATH,
    PROBE_PYTHON,
    SERVICES,
    busctl_as,
    busctl_user,
    groups_of,
    mismatches,
    probe,
)


async def test_every_method_as_each_role_on_the_native_gateway(
    role_users, role_groups_set, gateway_factory, open_folder
) -> None:
    gw = gateway_factory(state_dir=open_folder / "gw")
    ifaces = list(OBJECTS)
    for role, user in role_users.items():
        said = await probe(gw.address, user.pw_uid, user.pw_gid, groups_of(user), ifaces)
        if role == Role.NONE:
            assert "connect" in said, f"a user in no role group connected: {said}"
            continue
        refusals = (BUS_DENIED, c.ACCESS_DENIED_ERROR)
        assert not mismatches(said["answers"], role, "", ifaces, refusals), role


PERMISSIVE_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture
async def open_bus_gateway(open_folder: Path, role_groups_set):
    """The core services on a bus that lets every call through, as a misconfigured one
    would: what they refuse, they refuse themselves."""
    socket = open_folder / "bus.sock"
    config = open_folder / "bus.conf"
    config.write_text(PERMISSIVE_BUS.format(socket=socket))
    daemon = subprocess.Popen(
        ["dbus-daemon", "--nofork", "--nopidfile", f"--config-file={config}"],
        stderr=subprocess.DEVNULL,
    )
    address = f"unix:path={socket}"
    try:
        await eventually(lambda: _connectable(address))
        runner = InProcess(address, open_folder / "state")
        await runner.start(create_pm(runner.config()))
        await runner.start(create_dummy(runner.config()))
        await runner.start(create_dm(runner.config()))
        await runner.start(create_storage(runner.config()))
        yield address
        await runner.stop_all()
    finally:
        daemon.terminate()
        daemon.wait(10)


async def _connectable(address: str) -> bool:
    bus = await connect(address)
    bus.disconnect()
    return True


@pytest.mark.parametrize("service", ["", *SERVICES])
async def test_every_method_as_each_role_is_checked_by_the_services(
    role_users, open_bus_gateway, service
) -> None:
    # What runs here: no runtime, no update service, no bridge.
    ifaces = [i for i in OBJECTS if i not in (c.RUNTIME_IFACE, c.UPDATER_IFACE, c.BRIDGE_IFACE)]
    identities: list[tuple[Role, int, int, list[int]]]
    if service:  # a service's own identity: its uid, no group
        identities = [(Role.VIEWER, CATALOG[service].uid, CATALOG[service].uid, [])]
    else:
        identities = [(r, u.pw_uid, u.pw_gid, groups_of(u)) for r, u in role_users.items()]
    for role, uid, gid, groups in identities:
        said = await probe(open_bus_gateway, uid, gid, groups, ifaces)
        refusals = (c.ACCESS_DENIED_ERROR,)
        wrong = mismatches(said["answers"], role, service, ifaces, refusals)
        assert not wrong, f"{role} {service}: {wrong}"


async def test_calls_and_refusals_are_audited_with_who_and_how_they_ended(
    role_users, open_bus_gateway
) -> None:
    viewer = role_users[Role.VIEWER]
    said = await probe(
        open_bus_gateway, viewer.pw_uid, viewer.pw_gid, groups_of(viewer), [c.DEVICE_MANAGER_IFACE]
    )
    assert said["answers"][f"{c.DEVICE_MANAGER_IFACE}.Delete"] == c.ACCESS_DENIED_ERROR
    bus = await connect(open_bus_gateway)
    try:
        await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
        with pytest.raises(DBusError):
            await dm(bus, "Delete", "s", "dummyNOPE")
        (wire,) = await access(bus, "Audit", "d", 0.0)
        entries = [c.AuditEntry.from_wire(e) for e in wire]
        refused = [e for e in entries if e.call == "DeviceManager.Delete" and e.uid != 0]
        assert refused[-1].user == "agtest-v" and refused[-1].uid == viewer.pw_uid
        assert refused[-1].outcome == "refused: needs admin"
        ok = [e for e in entries if e.call == "DeviceManager.Register"]
        assert (
            ok[-1].outcome == "ok" and ok[-1].user == "root" and THERMOMETER.id in ok[-1].arguments
        )
        failed = [e for e in entries if e.call == "DeviceManager.Delete" and e.uid == 0]
        assert failed[-1].outcome.startswith(c.DEVICE_NOT_FOUND_ERROR)
        assert not [e for e in entries if e.call == "DeviceManager.Devices"]  # a viewer's
        (who,) = await access(bus, "WhoAmI")
        assert c.CallerInfo.from_wire(who) == c.CallerInfo("root", 0, Role.ADMIN)
    finally:
        bus.disconnect()


async def access(bus: MessageBus, member: str, signature: str = "", *body: object) -> list[Any]:
    return await call(
        bus, c.DEVICE_MANAGER_NAME, c.ACCESS_PATH, c.ACCESS_IFACE, member, signature, list(body)
    )


async def test_nobody_else_owns_or_queues_for_a_gateway_name(
    role_users, role_groups_set, gateway_factory, open_folder
) -> None:
    """A client queued for Storage's name would take it over at the service's restart."""
    gw = gateway_factory(state_dir=open_folder / "gw")
    admin = role_users[Role.ADMIN]  # even an admin of the gateway: names are services'

    listed = busctl_user(admin, gw.address, "list", "--acquired").stdout
    assert c.STORAGE_NAME in listed  # connected, and sees it
    for flags in ("0", "4"):  # queue, or take it at once
        done = busctl_user(
            admin,
            gw.address,
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "RequestName",
            "su",
            c.STORAGE_NAME,
            flags,
        )
        assert done.returncode != 0 and "Access denied" in done.stderr, done


async def test_forged_signals_are_not_believed(open_bus_gateway) -> None:
    """Anybody on the bus (here a bus that lets anybody send anything) can send any
    signal; services and agile-tui's client take each only from the owner of the name
    that emits it: no forged device, record, "disk full" or "update succeeded"."""
    from agile_tui.client.gateway import GatewayClient

    forger = await connect(open_bus_gateway)
    tui = GatewayClient(open_bus_gateway)
    await tui.connect()
    heard: dict[str, list[object]] = {"record": [], "storage": [], "updater": []}
    await tui.on_record(heard["record"].append)
    await tui.on_storage_status(lambda paused, why: heard["storage"].append(why))
    await tui.on_updater(heard["updater"].append)
    bus = tui.bus
    assert bus is not None
    try:
        fake = c.DeviceOverview("66:66:66:66:66:66", c.protocol_bus_name("Dummy"), "Fake")
        emit_signal(forger, c.FOUND_NEW_DEVICE_SIGNAL, "(ssss)", [fake.to_wire()])
        forged = c.RecordObject(THERMOMETER.device_id, "temperature", "999.9", "°C", "", 1)
        emit_signal(
            forger, c.NEW_SUBSCRIBE_VALUE_SIGNAL, c.RecordObject.SIGNATURE, [forged.to_wire()]
        )
        emit_signal(forger, c.STORAGE_WRITE_STATUS_SIGNAL, "bs", [True, "disk full"])
        forger.send(
            dbus_fast.Message.new_signal(
                c.UPDATER_PATH, c.UPDATER_IFACE, "Ended", "sss", ["op1", "succeeded", "done"]
            )
        )
        # The forger's signals reached the daemon before this answer, and everything
        # genuine below comes after them.
        await call(
            forger, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId"
        )
        await pm(bus, "StartDiscovery")
        (found,) = await eventually(lambda: _some_devices(bus))
        await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
        await call(
            bus,
            c.DEVICE_NAME,
            c.device_path(THERMOMETER.device_id),
            c.DEVICE_IFACE,
            "Subscribe",
            "s",
            ["temperature"],
        )
        await eventually(lambda: _true(heard["record"]))
        assert "Fake" not in [d[2] for d in found]
        assert forged not in heard["record"]
        assert heard["storage"] == [] and heard["updater"] == []
    finally:
        forger.disconnect()
        tui.close()


async def _some_devices(bus: MessageBus) -> list[Any]:
    (found,) = await pm(bus, "Devices")
    assert found
    return [found]


async def _true(items: list[object]) -> bool:
    assert items
    return True


def test_readme_has_the_roles_table() -> None:
    import re

    from services.contract_api import roles_table
    from services.paths import ROOT

    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- roles -->\n(.*?)\n<!-- /roles -->", readme, re.S)
    assert found, "README.md has no <!-- roles --> table"
    assert found.group(1) == roles_table(), "regenerate it: agile-gateway roles"


def test_every_method_a_service_exports_has_a_role() -> None:
    """A method added without a role would be refused to everybody (the gate lets
    through only what the table names): the table and the interfaces agree."""
    from services.access import AccessInterface
    from services.bridge.service import BridgeInterface
    from services.contract_api import methods
    from services.devicemanager.device import DeviceInterface
    from services.devicemanager.service import DeviceManagerInterface
    from services.protocol import ProtocolInterface
    from services.protocolmanager.service import ProtocolManagerInterface
    from services.runtime.supervisor import RuntimeInterface
    from services.storage.service import StorageInterface
    from services.updater.service import UpdaterInterface
    from services.zigbee.adapter import ZigBeeInterface

    interfaces = {
        AccessInterface: c.ACCESS_IFACE,
        BridgeInterface: c.BRIDGE_IFACE,
        DeviceInterface: c.DEVICE_IFACE,
        DeviceManagerInterface: c.DEVICE_MANAGER_IFACE,
        ProtocolInterface: c.PROTOCOL_IFACE,
        ZigBeeInterface: c.PROTOCOL_IFACE,
        ProtocolManagerInterface: c.PROTOCOL_MANAGER_IFACE,
        RuntimeInterface: c.RUNTIME_IFACE,
        StorageInterface: c.STORAGE_IFACE,
        UpdaterInterface: c.UPDATER_IFACE,
    }
    table = methods()
    exported: dict[str, set[str]] = {}
    for cls, iface in interfaces.items():
        for klass in cls.__mro__:
            for value in vars(klass).values():
                method = getattr(value, "__dict__", {}).get("__DBUS_METHOD")
                if method is not None:
                    exported.setdefault(iface, set()).add(method.name)
    assert {i: set(m) for i, m in table.items()} == exported


async def test_the_audit_command_gathers_every_service_for_admins_only(
    role_users, role_groups_set, gateway_factory, open_folder
) -> None:
    gw = gateway_factory(state_dir=open_folder / "gw")
    operator = role_users[Role.OPERATOR]
    # Let through by the bus (an operator's method), refused by the service (a delete).
    batch = busctl_user(
        operator,
        gw.address,
        "call",
        c.DEVICE_MANAGER_NAME,
        c.DEVICE_MANAGER_PATH,
        c.DEVICE_MANAGER_IFACE,
        "Batch",
        "ss",
        "delete",
        "{}",
    )
    assert batch.returncode != 0 and "Batch delete needs the admin role" in batch.stderr

    def audit(user: pwd.struct_passwd | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                PROBE_PYTHON,
                "-m",
                "services.runtime.cli",
                "audit",
                "--since",
                "1h",
                "--bus",
                gw.address,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": PROBE_PATH},
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=groups_of(user) if user else None,
        )

    done = audit(None)  # root: an admin
    assert done.returncode == 0, done.stderr
    assert (
        f"agtest-o (uid {operator.pw_uid}) devicemanager: DeviceManager.Batch('delete', '{{}}') "
        f"-> {c.ACCESS_DENIED_ERROR}: Batch delete needs the admin role"
    ) in done.stdout
    # The services' own calls (protocols adding themselves, storage following) are not.
    assert "ProtocolManager.Add" not in done.stdout and "Device.Follow" not in done.stdout
    done = audit(operator)
    assert done.returncode == 1 and "Access.Audit needs the admin role" in done.stderr, done


async def test_a_rollout_where_the_ssh_user_is_only_an_operator_changes_nothing(
    role_users, role_groups_set, gateway_factory, open_folder, tmp_path
) -> None:
    """Reached over SSH as a member of agile-operator: the fleet says so, and a rollout
    stops before its canary, the gateway's update service never asked."""
    import dataclasses

    from fleet.rollout import Rollout, State
    from fleet.status import Member
    from services.updater.client import UpdaterClient
    from testkit.operator import private_sshd, reacher

    gw = gateway_factory(state_dir=open_folder / "gw")
    operator = role_users[Role.OPERATOR]
    with private_sshd(open_folder) as sshd:
        keys = sshd[1].parent  # sshd reads the key it accepts as the user logging in
        keys.chmod(0o755)
        (keys / "authorized_keys").chmod(0o644)
        gateway = dataclasses.replace(
            reacher(sshd, tmp_path)("shed", gw.state_dir), ssh=f"{operator.pw_name}@127.0.0.1"
        )
        member = Member(gateway, timeout_s=30)
        try:
            status = await member.poll()
            assert status.reachable and status.role == "operator", status
        finally:
            await member.drop()
        rollout = Rollout([Member(gateway, timeout_s=30)], "storage")
        try:
            assert not await rollout.run()
        finally:
            await rollout.close()
    step = rollout.steps["shed"]
    assert step.state == State.FAILED
    assert step.message == "updates need the admin role there; agtest-o has the operator role"
    bus = await connect(gw.address)
    try:
        assert await UpdaterClient(bus).current() == c.Operation()  # nothing was started
        (wire,) = await call(
            bus, c.UPDATER_NAME, c.ACCESS_PATH, c.ACCESS_IFACE, "Audit", "d", [0.0]
        )
        assert not wire  # not even a refused call reached it
    finally:
        bus.disconnect()


async def test_a_protocol_adds_only_itself(role_users, open_bus_gateway) -> None:
    """Adding a protocol is an admin's; a protocol's own identity may add its own name
    (as adapters do when they start), no other."""
    dummy = CATALOG["dummy"].uid

    def add(name: str) -> subprocess.CompletedProcess[str]:
        return busctl_as(
            dummy,
            dummy,
            [],
            open_bus_gateway,
            "call",
            c.PROTOCOL_MANAGER_NAME,
            c.PROTOCOL_MANAGER_PATH,
            c.PROTOCOL_MANAGER_IFACE,
            "Add",
            "s",
            name,
        )

    done = await asyncio.to_thread(add, c.protocol_bus_name("BLE"))  # the services run here
    assert done.returncode != 0 and "may add only its own protocol" in done.stderr, done
    done = await asyncio.to_thread(
        add, c.protocol_bus_name("Dummy")
    )  # owned by the Dummy of this test's process
    assert done.returncode != 0 and "may add only its own protocol" in done.stderr, done
