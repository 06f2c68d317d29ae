"""The gateway bus lets each service own only its own names."""

import getpass
import json
import subprocess
import sys
from pathlib import Path

import pytest
from dbus_fast.constants import NameFlag, RequestNameReply
from dbus_fast.errors import DBusError

from services import contract as c
from services.bus import connect
from services.busconfig import start_bus_daemon


async def own(address: str, name: str) -> bool:
    bus = await connect(address)
    try:
        reply = await bus.request_name(name, NameFlag.DO_NOT_QUEUE)
        return reply == RequestNameReply.PRIMARY_OWNER
    except DBusError as exc:
        assert exc.type == "org.freedesktop.DBus.Error.AccessDenied"
        return False
    finally:
        bus.disconnect()


@pytest.mark.parametrize(
    "name, allowed",
    [
        ("org.eclipse.agail.ProtocolManager", True),
        ("org.eclipse.agail.DeviceManager", True),
        ("org.eclipse.agail.protocol.BLE", True),
        ("org.eclipse.agail.protocol.ThirdParty", True),
        ("org.example.Intruder", False),
        ("org.bluez", False),
    ],
)
async def test_native_bus_allows_only_gateway_names(
    bus_address: str, name: str, allowed: bool
) -> None:
    assert await own(bus_address, name) is allowed


@pytest.mark.bus
async def test_per_user_policy_limits_a_service_to_its_own_names(tmp_path: Path) -> None:
    me = getpass.getuser()
    proc, address = start_bus_daemon(tmp_path, service_users={"devicemanager": me})
    try:
        assert await own(address, "org.eclipse.agail.DeviceManager")
        assert await own(address, "org.eclipse.agail.Device")
        assert not await own(address, "org.eclipse.agail.ProtocolManager")
        assert not await own(address, "org.eclipse.agail.protocol.BLE")
    finally:
        proc.terminate()
        proc.wait(5)


def test_nobody_eavesdrops_on_the_native_bus(bus_address: str) -> None:
    """One user runs everything natively, so the policy cannot tell services apart
    (README, Reliability); it still lets nobody eavesdrop with a match rule."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "bus_probe.py"), bus_address, c.STORAGE_NAME],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["eavesdropped"] == []
