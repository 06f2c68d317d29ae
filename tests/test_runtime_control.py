"""The native runtime's supervisor on the bus (start, stop, restart a service; never a
signal to a pid read from a file), and its size-bounded service logs."""

import json
import os
import signal
from pathlib import Path

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.bus import call, connect
from services.runtime.logfile import RotatingLog
from tests.helpers import agile_gateway, dm, eventually, fill_up, protocol, storage


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


def test_a_log_on_a_full_disk_drops_and_counts_lines_then_says_so(tmpfs) -> None:
    disk = tmpfs("64k")
    ballast = fill_up(disk)
    log = RotatingLog(disk / "x.log", max_bytes=1 << 20, backups=2)
    for i in range(5):
        log.write(f"line {i}\n".encode())  # no page left for the file: each dropped
    assert log.dropped == 5 and "No space left" in log.failing
    ballast.unlink()
    log.write(b"back\n")
    assert (disk / "x.log").read_text() == "[5 log lines dropped: No space left on device]\nback\n"
    assert log.dropped == 0


async def test_a_full_log_disk_keeps_every_service_supervised(
    gateway_factory, tmp_path, tmpfs
) -> None:
    """The logs on a disk that fills up: services are still restarted after a crash and
    on request, lines are dropped and counted, and said once space returns."""
    disk = tmpfs("512k")
    state = tmp_path / "gw"
    state.mkdir()
    (state / "logs").symlink_to(disk)
    gw = gateway_factory(state_dir=state)
    ballast = fill_up(disk)
    bus = await connect(gw.address)
    try:
        for _ in range(2):
            before = state_of(gw, "devicemanager")["pid"]
            await runtime(bus, "Restart", "devicemanager")

            async def back(before: int = before) -> bool:
                pid = state_of(gw, "devicemanager")["pid"]
                return pid not in (None, before) and await dm(bus, "Devices") == [[]]

            await eventually(back)
        with pytest.raises(DBusError) as err:  # the process itself is checked
            await runtime(bus, "Start", "devicemanager")
        assert "running already" in err.value.text
        before = state_of(gw, "storage")["pid"]
        os.kill(before, signal.SIGKILL)

        async def restarted() -> bool:
            pid = state_of(gw, "storage")["pid"]
            return pid not in (None, before) and bool(await storage(bus, "Stats"))

        await eventually(restarted)
        assert state_of(gw, "storage")["restarts"] == 1
        for seconds in range(300):  # a log line each: more than the last page holds
            await protocol(bus, "ZB", "PermitJoin", "u", seconds % 200 + 1)
        ballast.unlink()
        await protocol(bus, "ZB", "PermitJoin", "u", 254)

        async def said() -> bool:
            text = (disk / "zigbee.log").read_text()
            return "log lines dropped: No space left on device]" in text and "254 s" in text

        await eventually(said)
    finally:
        bus.disconnect()
