"""BLE through the gateway vs bleak alone, against the same virtual BlueZ, in one run.

    ./dev bench ble

1. Discovery: time from StartDiscovery to all N peripherals listed, N = 10 and 100:
   through ProtocolManager.Devices (adapter + bus) vs a bare BleakScanner.
2. Notifications: 20 devices x 10 Hz for 10 s: records/s reaching NewRecordSignal on
   the gateway bus (adapter) vs callbacks in a bare bleak client. "Lost" compares with
   what BlueZ itself sent in the same window, counted by a listener on the system bus.
Each measurement gets a fresh virtual BlueZ, so neither side finds devices cached.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from dbus_fast import Message
from dbus_fast.aio import MessageBus

from agile_tui.client.gateway import GatewayClient
from services import contract as c
from services.ble import gatt as g
from services.bus import call, connect, listen, name_has_owner
from services.busconfig import start_bus_daemon

ROOT = Path(__file__).resolve().parents[1]
BLE = c.protocol_bus_name("BLE")
TEMP_PROFILE = {c.GATT_SERVICE: g.ENVIRONMENTAL_SENSING, "GATT_CHARACTERSTICS": g.TEMPERATURE}


async def ble(bus: MessageBus, member: str, signature: str, *body: object) -> list[Any]:
    return await call(
        bus, BLE, c.protocol_path("BLE"), c.PROTOCOL_IFACE, member, signature, body, timeout=30
    )


def fleet_address(i: int) -> str:
    return f"C0:FF:EE:02:{i >> 8:02X}:{i & 0xFF:02X}"


class Stack:
    """A gateway bus, a system bus, the virtual BlueZ and the services, as processes."""

    def __init__(self, fleet: int, notify_hz: float) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="agile-bench-"))
        self.gw_proc, self.gw = start_bus_daemon(self.tmp / "gw")
        self.sys_proc, self.sys = start_bus_daemon(self.tmp / "sys", names=["org.bluez"])
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.sys  # for bleak in this process
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.sys}
        run = [sys.executable, "-m", "services.runtime.cli", "service"]
        common = ["--bus", self.gw, "--state-dir", str(self.tmp)]
        self.procs = [
            subprocess.Popen(
                [
                    *run,
                    "sim-bluez",
                    "--option",
                    f"fleet={fleet}",
                    "--option",
                    f"notify-hz={notify_hz}",
                    "--option",
                    "advert-interval=0.5",
                ],
                env=env,
                cwd=ROOT,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [*run, "protocolmanager", *common], cwd=ROOT, stderr=subprocess.DEVNULL
            ),
            subprocess.Popen([*run, "ble", *common], env=env, cwd=ROOT, stderr=subprocess.DEVNULL),
        ]

    async def wait(self) -> None:
        for address, name in (
            (self.sys, "org.bluez"),
            (self.gw, BLE),
            (self.gw, c.PROTOCOL_MANAGER_NAME),
        ):
            bus = await connect(address)
            try:
                while not await name_has_owner(bus, name):
                    await asyncio.sleep(0.05)
            finally:
                bus.disconnect()

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.wait(10)
        self.gw_proc.terminate()
        self.sys_proc.terminate()


async def discovery_through_gateway(stack: Stack, n: int) -> float:
    client = GatewayClient(stack.gw)
    await client.connect()
    try:
        began = time.perf_counter()
        await client.start_discovery()
        while sum(1 for d in await client.discovered() if d.protocol == BLE) < n:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
        await client.stop_discovery()
        return elapsed
    finally:
        client.close()


async def discovery_with_bleak(_stack: Stack, n: int) -> float:
    seen: set[str] = set()
    done = asyncio.Event()

    def found(device: BLEDevice, _adv: AdvertisementData) -> None:
        seen.add(device.address)
        if len(seen) >= n:
            done.set()

    scanner = BleakScanner(detection_callback=found)
    began = time.perf_counter()
    await scanner.start()
    await done.wait()
    elapsed = time.perf_counter() - began
    await scanner.stop()
    return elapsed


class Sniffer:
    """Counts GATT notifications BlueZ sends (PropertiesChanged of a characteristic's Value)."""

    def __init__(self) -> None:
        self.count = 0
        self.bus: MessageBus | None = None

    async def start(self, address: str) -> None:
        self.bus = await connect(address)

        def seen(msg: Message) -> None:
            if (
                msg.body
                and msg.body[0] == "org.bluez.GattCharacteristic1"
                and "Value" in msg.body[1]
            ):
                self.count += 1

        changed = ("org.freedesktop.DBus.Properties", "", "PropertiesChanged")
        await listen(self.bus, changed, seen, "org.bluez", any_path=True)

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()


async def window(seconds: float, sniffer: Sniffer, counter: Callable[[], int]) -> tuple[int, int]:
    """(sent by BlueZ, received) over the same `seconds`; the difference at the end is at
    most the records still in flight (a few milliseconds' worth)."""
    sent0, got0 = sniffer.count, counter()
    await asyncio.sleep(seconds)
    return sniffer.count - sent0, counter() - got0


async def notifications_through_gateway(
    stack: Stack, devices: int, seconds: float
) -> tuple[int, int]:
    bus = await connect(stack.gw)
    count = 0

    def got(_msg: Message) -> None:
        nonlocal count
        count += 1

    try:
        await listen(bus, c.NEW_RECORD_SIGNAL, got, c.PROTOCOL_NAME_PREFIX)
        for i in range(devices):
            await ble(bus, "Connect", "s", fleet_address(i))
            await ble(bus, "Subscribe", "sa{ss}", fleet_address(i), TEMP_PROFILE)
        sniffer = Sniffer()
        await sniffer.start(stack.sys)
        try:
            return await window(seconds, sniffer, lambda: count)
        finally:
            sniffer.stop()
    finally:
        for i in range(devices):
            await ble(bus, "Disconnect", "s", fleet_address(i))
        bus.disconnect()


async def notifications_with_bleak(stack: Stack, devices: int, seconds: float) -> tuple[int, int]:
    count = 0

    def got(_char: object, _data: bytearray) -> None:
        nonlocal count
        count += 1

    clients = []
    for i in range(devices):
        client = BleakClient(fleet_address(i))
        await client.connect()
        await client.start_notify(g.TEMPERATURE, got)
        clients.append(client)
    sniffer = Sniffer()
    await sniffer.start(stack.sys)
    try:
        return await window(seconds, sniffer, lambda: count)
    finally:
        sniffer.stop()
        for client in clients:
            await client.disconnect()


_T = TypeVar("_T")


async def measure(fleet: int, hz: float, work: Callable[[Stack], Awaitable[_T]]) -> _T:
    stack = Stack(fleet=fleet, notify_hz=hz)
    try:
        await stack.wait()
        return await work(stack)
    finally:
        stack.stop()


async def main(quick: bool) -> None:
    print("BLE benchmark: the gateway (bleak adapter + D-Bus) vs bleak alone, same virtual BlueZ")
    print("(each peripheral advertises every 0.5 s, first packet at a random phase)")
    print(f"\n{'discovery, all N listed':<34}{'gateway':>10}{'bleak':>10}{'ratio':>8}")
    for n in (3,) if quick else (10, 100):
        gateway = await measure(n, 10, partial(discovery_through_gateway, n=n))
        bare = await measure(n, 10, partial(discovery_with_bleak, n=n))
        print(f"{f'N = {n}':<34}{gateway:>9.2f}s{bare:>9.2f}s{gateway / bare:>8.2f}")
    devices, hz, seconds = (3, 10.0, 2.0) if quick else (20, 10.0, 10.0)

    async def via_gateway(stack: Stack) -> tuple[int, int]:
        await discovery_through_gateway(stack, devices)
        return await notifications_through_gateway(stack, devices, seconds)

    async def via_bleak(stack: Stack) -> tuple[int, int]:
        await discovery_with_bleak(stack, devices)  # bleak needs the devices in its cache
        return await notifications_with_bleak(stack, devices, seconds)

    g_sent, g_got = await measure(devices, hz, via_gateway)
    b_sent, b_got = await measure(devices, hz, via_bleak)
    print(
        f"\n{f'notifications, {devices} x {hz:g} Hz, {seconds:g} s':<34}{'gateway':>10}"
        f"{'bleak':>10}{'ratio':>8}"
    )
    print(
        f"{'records/s received':<34}{g_got / seconds:>10.1f}{b_got / seconds:>10.1f}"
        f"{g_got / b_got:>8.2f}"
    )
    print(f"{'sent by BlueZ in the window':<34}{g_sent:>10}{b_sent:>10}")
    print(f"{'lost':<34}{max(0, g_sent - g_got):>10}{max(0, b_sent - b_got):>10}")


if __name__ == "__main__":
    # --quick: the suite's size (tests/test_benchmarks.py), so that the benchmark keeps running.
    asyncio.run(main("--quick" in sys.argv[1:]))
