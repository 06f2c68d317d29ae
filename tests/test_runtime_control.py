"""The native runtime's supervisor on the bus (start, stop, restart a service; never a
signal to a pid read from a file), and its size-bounded service logs."""

import json
from pathlib import Path

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.bus import call, connect
from services.runtime.logfile import RotatingLog
from tests.helpers import agile_gateway, eventually, protocol, storage


def test_a_log_is_rotated_at_its_size_and_keeps_so_many_files(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "x.log", max_bytes=100, backups=2)
    for i in range(30):
        log.write(f"line {i:02d} {'.' * 20}\n".encode())  # 29 bytes a line
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["x.log", "x.log.1", "x.log.2"]  # the oldest were dropped
    assert all((tmp_path / f).stat().st_size <= 100 for f in files)
    assert (tmp_path / "x.log").read_text().splitlines()[-1].startswith("line 29")
    first = (tmp_path / "x.log.2").read_text().splitlines()[0]
    assert first.startswith("line 21")  # whole lines, in order across the files


def state_of(gw, name: str) -> dict:  # type: ignore[no-untyped-def]
    return json.loads((gw.state_dir / "runtime.json").read_text())["services"][name]


async def runtime(bus, member: str, name: str) -> None:  # type: ignore[no-untyped-def]
    await call(bus, c.RUNTIME_NAME, c.RUNTIME_PATH, c.RUNTIME_IFACE, member, "s", [name])


async def test_services_are_stopped_started_and_restarted_through_the_bus(gateway_factory):
    gw = gateway_factory()
    bus = await connect(gw.address)
    try:
        old = state_of(gw, "storage")["pid"]
        await runtime(bus, "Stop", "storage")

        async def stopped() -> bool:
            return state_of(gw, "storage")["state"] == "stopped"

        await eventually(stopped)
        with pytest.raises(DBusError) as err:  # held: not restarted as after a crash
            await storage(bus, "Stats")
        assert err.value.type == "org.freedesktop.DBus.Error.ServiceUnknown"
        with pytest.raises(DBusError) as err:
            await runtime(bus, "Stop", "storage")
        assert err.value.type == c.NO_RESULT_ERROR

        await runtime(bus, "Start", "storage")
        (stats,) = await eventually(lambda: storage(bus, "Stats"))
        assert stats["error"].value == ""
        assert state_of(gw, "storage")["pid"] not in (None, old)

        before = state_of(gw, "zigbee")["pid"]
        await runtime(bus, "Restart", "zigbee")

        async def restarted() -> bool:
            return state_of(gw, "zigbee")["pid"] not in (None, before) and bool(
                await protocol(bus, "ZB", "Status")
            )

        await eventually(restarted)
        assert state_of(gw, "zigbee")["restarts"] == 0  # asked for: not counted as a crash
        with pytest.raises(DBusError) as err:
            await runtime(bus, "Restart", "nope")
        assert err.value.type == c.INVALID_ARGS_ERROR and "storage" in err.value.text
    finally:
        bus.disconnect()


async def test_the_cli_asks_the_supervisor(gateway_factory) -> None:
    gw = gateway_factory()
    done = agile_gateway("ctl", "stop", "dummy", "--state-dir", str(gw.state_dir))
    assert done.returncode == 0, done.stderr

    async def stopped() -> bool:
        return state_of(gw, "dummy")["state"] == "stopped"

    await eventually(stopped)


async def test_service_logs_stay_within_their_size(gateway_factory) -> None:
    gw = gateway_factory(extra=["--log-max-bytes", "1000", "--log-files", "2"])
    bus = await connect(gw.address)
    try:
        for seconds in range(60):  # each says "joining permitted for N s" in its log
            await protocol(bus, "ZB", "PermitJoin", "u", seconds + 1)
    finally:
        bus.disconnect()
    logs = gw.state_dir / "logs"

    async def all_written() -> bool:  # the supervisor copies the output as it comes
        return "joining permitted for 60 s" in (logs / "zigbee.log").read_text()

    await eventually(all_written)
    assert (logs / "zigbee.log.2").exists() and not (logs / "zigbee.log.3").exists()
    for name in ("zigbee.log", "zigbee.log.1", "zigbee.log.2"):
        assert (logs / name).stat().st_size <= 1000
