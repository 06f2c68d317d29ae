"""ZigBee through the gateway vs zigpy alone, on the same virtual radio, in one run.

    ./dev bench zigbee

1. Joining: time from permit-join to N devices joined and interviewed (N = 10, 50):
   through the gateway (Protocol.PermitJoin, then Protocol.Devices polled over the
   bus until all N are listed) vs a bare zigpy application (permit, then zigpy's
   device_initialized events). Devices join 50 ms apart on the simulated air, the
   same for both.
2. Reports: 50 devices x 1 report/s for WINDOW s: reports reaching NewRecordSignal
   on the gateway bus (counted by a listener in another process) vs zigpy's
   attribute_report callbacks, each against the reports the radio sent.
"""

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import zigpy.device
from dbus_fast import Message

from services import contract as c
from services.bus import call, connect, listen, name_has_owner
from services.busconfig import start_bus_daemon
from services.devicetypes.zigbee import zcl
from services.protocol import ProtocolService
from services.service import ServiceConfig
from services.zigbee.adapter import ZigBeeAdapter
from services.zigbee.sim.devices import climate_sensor
from services.zigbee.sim.radio import SIM_CONFIG, VirtualRadio

ROOT = Path(__file__).resolve().parents[1]
ZB = c.protocol_bus_name("ZB")
TEMPERATURE = zcl(0x0402, 0x0000)
WINDOW = 10.0


def fleet(n: int, report_s: float = 1.0) -> list:
    return [climate_sensor(0x300 + i, report_interval_s=report_s) for i in range(n)]


def zigpy_config(folder: Path, devices: list) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "device": {"path": "virtual"},
        "database_path": str(folder / "zigbee.db"),
        "network": {"channel": 15},
        "ota": {"enabled": False},
        "topology_scan_enabled": False,
        SIM_CONFIG: {"nvram": str(folder / "nvram.json"), "devices": devices},
    }


async def zigpy_alone(n: int) -> tuple[float, float, int, int]:
    """(join s, reports/s, reports received, reports sent) for bare zigpy."""
    config = zigpy_config(Path(tempfile.mkdtemp()), fleet(n))
    app = cast(VirtualRadio, await VirtualRadio.new(config, auto_form=True))  # zigpy says its base
    interviewed = set()
    done = asyncio.Event()

    class Listener:
        def device_initialized(self, device: zigpy.device.Device) -> None:
            if device.nwk != 0:
                interviewed.add(device.ieee)
                if len(interviewed) >= n:
                    done.set()

    app.add_listener(Listener())
    began = time.perf_counter()
    await app.permit(254)
    await done.wait()
    join_s = time.perf_counter() - began
    received = 0

    def count(_event: object) -> None:
        nonlocal received
        received += 1

    clusters = [
        cast(zigpy.device.Device, app.devices[ieee]).endpoints[1].in_clusters[0x0402]
        for ieee in interviewed
    ]
    for cluster in clusters:
        cluster.on_event("attribute_report", count)
        await cluster.bind()
        await cluster.configure_reporting(0x0000, 1, 300, 1)
    app.reports_sent.clear()
    received = 0
    await asyncio.sleep(WINDOW)
    for dev in app.air.values():
        dev.reporting.clear()
    sent = sum(app.reports_sent.values())
    await asyncio.sleep(0.5)
    await app.shutdown()
    return join_s, received / WINDOW, received, sent


async def through_gateway(n: int) -> tuple[float, float, int, int]:
    """The ZB service on a private gateway bus; a listener process counts NewRecordSignal."""
    tmp = Path(tempfile.mkdtemp(prefix="agile-bench-zb-"))
    daemon, address = start_bus_daemon(tmp / "bus")
    adapter = ZigBeeAdapter(tmp, sim={"devices": fleet(n)})
    service = ProtocolService(ServiceConfig(address, tmp, simulate=True), adapter)
    stop = asyncio.Event()
    task = asyncio.ensure_future(service.run(stop))
    client = await connect(address)
    try:
        while not await name_has_owner(client, ZB):
            await asyncio.sleep(0.05)
        path = c.protocol_path("ZB")

        async def zb(member: str, signature: str = "", *body: object) -> list[Any]:
            return await call(
                client, ZB, path, c.PROTOCOL_IFACE, member, signature, body, timeout=30
            )

        began = time.perf_counter()
        await zb("PermitJoin", "u", 254)
        while len((await zb("Devices"))[0]) < n:
            await asyncio.sleep(0.02)
        join_s = time.perf_counter() - began

        listener = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.zigbee", "--listen", address],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        loop = asyncio.get_running_loop()
        assert listener.stdin is not None and listener.stdout is not None
        await loop.run_in_executor(None, listener.stdout.readline)  # its match rule is in place
        for overview in (await zb("Devices"))[0]:
            await zb("Subscribe", "sa{ss}", overview[0], TEMPERATURE)
        # Hold the devices' reports while the listener and the radio's counter start
        # from zero, so that both count the same window.
        radio = cast(VirtualRadio, adapter.app)  # the service was started on it
        held = {ieee: dict(dev.reporting) for ieee, dev in radio.air.items()}
        for dev in radio.air.values():
            dev.reporting.clear()
        await asyncio.sleep(0.5)
        listener.stdin.write("start\n")
        listener.stdin.flush()
        await loop.run_in_executor(None, listener.stdout.readline)
        radio.reports_sent.clear()
        for ieee, reporting in held.items():
            radio.air[ieee].reporting.update(reporting)
        await asyncio.sleep(WINDOW)
        for dev in radio.air.values():
            dev.reporting.clear()
        sent = sum(radio.reports_sent.values())
        out, _ = await loop.run_in_executor(None, listener.communicate, "stop\n")
        received = json.loads(out)["received"]
        return join_s, received / WINDOW, received, sent
    finally:
        client.disconnect()
        stop.set()
        await task
        daemon.terminate()


async def count_records(address: str) -> None:
    """Counts NewRecordSignal between a "start" and a "stop" line on stdin."""
    bus = await connect(address)
    received = 0

    def got(_msg: Message) -> None:
        nonlocal received
        received += 1

    await listen(bus, c.NEW_RECORD_SIGNAL, got, c.PROTOCOL_NAME_PREFIX)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    received = 0
    print("started", flush=True)
    # The stop line is written after the last report left the radio; what is in
    # flight then is given half a second to arrive.
    await loop.run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(0.5)
    print(json.dumps({"received": received}))


async def main(quick: bool) -> None:
    global WINDOW
    if quick:  # the suite's size (tests/test_benchmarks.py), so that it keeps running
        WINDOW = 2.0
    print(f"Virtual radio; devices join 50 ms apart; reports every 1 s; window {WINDOW:g} s\n")
    rows = []
    for n in (3,) if quick else (10, 50):
        alone = await zigpy_alone(n)
        gateway = await through_gateway(n)
        rows.append((n, gateway, alone))
    print(f"{'':<28}{'gateway':>12}{'zigpy alone':>14}{'ratio':>8}")
    for n, gateway, alone in rows:
        label = f"join+interview, N={n}"
        ratio = gateway[0] / alone[0]
        print(f"{label:<28}{gateway[0]:>11.2f}s{alone[0]:>13.2f}s{ratio:>8.2f}")
    for n, gateway, alone in rows:
        label = f"reports/s, {n} devices x 1/s"
        print(f"{label:<28}{gateway[1]:>12.1f}{alone[1]:>14.1f}{gateway[1] / alone[1]:>8.2f}")
    for n, gateway, alone in rows:
        print(
            f"{f'lost, {n} devices':<28}{gateway[3] - gateway[2]:>6} of {gateway[3]:<4}"
            f"{alone[3] - alone[2]:>8} of {alone[3]:<4}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--listen":
        asyncio.run(count_records(sys.argv[2]))
    else:
        asyncio.run(main("--quick" in sys.argv[1:]))
