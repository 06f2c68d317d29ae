"""The native runtime as a real process tree: start-up, crash recovery, status, shutdown."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services import contract as c
from services.bus import connect
from services.paths import ROOT
from tests.helpers import THERMOMETER, device, dm, eventually

DUMMY = c.protocol_bus_name("Dummy")


def busctl_protocols(address: str) -> str:
    return subprocess.run(
        [
            "busctl",
            f"--address={address}",
            "call",
            c.PROTOCOL_MANAGER_NAME,
            c.PROTOCOL_MANAGER_PATH,
            c.PROTOCOL_MANAGER_IFACE,
            "Protocols",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()


def service_pid(gw, name: str) -> int | None:
    status = json.loads((gw.state_dir / "runtime.json").read_text())
    return status["services"][name]["pid"]


async def test_gateway_comes_up_and_lists_protocols(gateway_factory) -> None:
    gw = gateway_factory()

    async def all_three() -> str:
        # Up means every service owns its names; each protocol then adds itself to the
        # ProtocolManager, which a loaded machine may not have seen yet.
        listed = busctl_protocols(gw.address)
        return listed if listed.startswith("a(ssss) 3 ") else ""

    listed = await eventually(all_three, timeout=30)  # in the order they registered:
    for entry in (
        f'"Dummy" "Dummy" "{DUMMY}" "Available"',
        f'"BLE" "Bluetooth LE" "{c.protocol_bus_name("BLE")}" "Available"',
        f'"ZB" "ZigBee" "{c.protocol_bus_name("ZB")}" "Available"',
    ):
        assert entry in listed
    for name in ("protocolmanager", "devicemanager", "storage", "dummy", "sim-bluez", "ble"):
        assert (gw.state_dir / "logs" / f"{name}.log").exists()


def test_status_command_lists_running_services(gateway_factory) -> None:
    gw = gateway_factory()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.runtime.cli",
            "status",
            "--state-dir",
            str(gw.state_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["bus"] == "reachable"
    states = {
        s["name"]: (s["state"], s["pid"] == service_pid(gw, s["name"])) for s in report["services"]
    }
    assert states == {
        "protocolmanager": ("running", True),
        "devicemanager": ("running", True),
        "storage": ("running", True),
        "dummy": ("running", True),
        "sim-bluez": ("running", True),
        "ble": ("running", True),
        "zigbee": ("running", True),
        "mqtt": ("running", True),
        "updater": ("running", True),
    }


def test_status_without_a_gateway_says_so(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AGILE_BUS_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", "status", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 2
    assert "no gateway bus" in proc.stderr and "bus.address" in proc.stderr


async def test_killed_services_restart_and_keep_registrations(gateway_factory) -> None:
    gw = gateway_factory()
    bus = await connect(gw.address)
    try:
        await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
        dev_id = THERMOMETER.device_id
        killed = ("dummy", "devicemanager", "protocolmanager")
        for name in killed:
            old = service_pid(gw, name)
            os.kill(old, signal.SIGKILL)
            await eventually(lambda n=name, o=old: _restarted(gw, n, o), timeout=60)
        # the protocol registered itself again, the device is still there and works
        await eventually(lambda: _has_dummy(gw.address), timeout=60)
        (devices,) = await eventually(lambda: dm(bus, "Devices"), timeout=60)
        assert [d[0] for d in devices] == [dev_id]
        record = await eventually(lambda: device(bus, dev_id, "Read", "s", "temperature"))
        assert record[0][3] == "°C"
        status = json.loads((gw.state_dir / "runtime.json").read_text())
        assert {n: s["restarts"] for n, s in status["services"].items()} == {
            n: int(n in killed) for n in status["services"]
        }
    finally:
        bus.disconnect()


async def _restarted(gw, name: str, old_pid: int) -> bool:
    pid = service_pid(gw, name)
    return pid is not None and pid != old_pid


async def _has_dummy(address: str) -> bool:
    return DUMMY in await asyncio.to_thread(busctl_protocols, address)


async def test_bus_daemon_killed_everything_comes_back(gateway_factory) -> None:
    gw = gateway_factory()
    daemon = subprocess.run(
        ["pgrep", "-f", f"config-file={gw.state_dir}/bus.conf"], capture_output=True, text=True
    ).stdout.split()
    assert len(daemon) == 1
    os.kill(int(daemon[0]), signal.SIGKILL)
    await eventually(lambda: _has_dummy(gw.address), timeout=60)


def test_sigterm_stops_every_process(gateway_factory) -> None:
    gw = gateway_factory()
    pids = [
        service_pid(gw, n)
        for n in ("protocolmanager", "devicemanager", "dummy", "sim-bluez", "ble")
    ]
    assert gw.stop() == 0
    for pid in pids:
        assert pid is not None
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"  # gone or a zombie
    assert not (gw.state_dir / "bus.address").exists()
    status = json.loads((gw.state_dir / "runtime.json").read_text())
    assert status["state"] == "stopped"
    assert {s["state"] for s in status["services"].values()} == {"stopped"}


def _left(state_dir: Path) -> list[str]:
    """The processes that still run for this gateway (their command lines name its folder)."""
    found = subprocess.run(["pgrep", "-af", str(state_dir)], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


async def _nothing_left(state_dir: Path) -> bool:
    return not _left(state_dir)


async def test_sigkill_of_up_leaves_nothing_behind_and_up_again_recovers(
    gateway_factory,
) -> None:
    gw = gateway_factory()
    gw.proc.kill()
    gw.proc.wait(10)
    try:
        await eventually(lambda: _nothing_left(gw.state_dir), timeout=30)
    except AssertionError:
        left = "\n".join(_left(gw.state_dir))
        pytest.fail(f"still running after the supervisor's SIGKILL:\n{left}")
    again = gateway_factory(state_dir=gw.state_dir)
    await eventually(lambda: _has_dummy(again.address), timeout=60)


async def test_a_stop_during_start_up_stops_everything(tmp_path: Path) -> None:
    from services.runtime.launch import up_command

    state_dir = tmp_path / "gw"
    proc = subprocess.Popen(
        up_command(state_dir, [], []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        # The bus is up and the services are starting: not all of them own their names.
        async def bus_up() -> bool:
            return (state_dir / "bus.address").exists()

        await eventually(bus_up, timeout=60, interval=0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        await eventually(lambda: _nothing_left(state_dir), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_a_service_whose_stop_hangs_still_exits(
    bus_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its supervisor killed nobody kills a stopping service: it bounds its own stop."""
    import services.service as service_module
    from services.service import BusService
    from services.serviceconfig import ServiceConfig

    class Stuck(BusService):
        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            await asyncio.Event().wait()  # what a stop waiting on a gone peer does

    monkeypatch.setattr(service_module, "STOP_GRACE_S", 0.2)
    stop = asyncio.Event()
    stop.set()
    stuck = Stuck(ServiceConfig(bus_address, tmp_path, simulate=True))
    assert await asyncio.wait_for(stuck.run(stop), 30) == 0
