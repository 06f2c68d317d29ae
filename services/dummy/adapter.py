"""`org.eclipse.agail.protocol.Dummy`: a protocol whose devices exist only in software.

As in AGILE, it "discovers" a few devices, answers reads and emits records while
subscribed. Values are deterministic functions of time so tests can check them.
"""

import asyncio
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services import contract as c
from services.protocol import ProtocolAdapter


@dataclass
class SimDevice:
    address: str
    name: str
    kind: str  # "thermometer" | "switch"
    connected: bool = False
    state: int = 0  # the switch
    streams: dict[str, asyncio.Task[None]] = field(default_factory=dict)


def simulated_devices(thermometers: int, switches: int) -> dict[str, SimDevice]:
    devices = {}
    for i in range(thermometers + switches):
        address = ":".join(f"{b:02X}" for b in (0xD0, 0, 0, 0, 0, i + 1))
        if i < thermometers:
            dev = SimDevice(address, f"Dummy Thermometer {i + 1}", "thermometer")
        else:
            dev = SimDevice(address, f"Dummy Switch {i - thermometers + 1}", "switch")
        devices[address] = dev
    return devices


class DummyAdapter(ProtocolAdapter):
    display_name = "Dummy"
    driver = "agile-gateway simulated devices"

    def __init__(
        self,
        short_name: str = "Dummy",
        thermometers: int = 2,
        switches: int = 1,
        record_interval_s: float = 1.0,
        announce_interval_s: float = 1.0,
        discovery_delay_s: float = 0.0,
        visibility_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(visibility_s=visibility_s)
        self.short_name = short_name
        self.display_name = short_name
        self.devices = simulated_devices(thermometers, switches)
        self.record_interval_s = record_interval_s
        self.announce_interval_s = announce_interval_s
        self.discovery_delay_s = discovery_delay_s
        self.value_clock = clock
        self._discovery: asyncio.Task[None] | None = None

    # -- discovery --

    def discovery_state(self) -> c.DiscoveryState:
        running = self._discovery is not None and not self._discovery.done()
        return c.DiscoveryState.RUNNING if running else c.DiscoveryState.NONE

    async def start_discovery(self) -> None:
        if self.discovery_delay_s:
            # Simulates a radio that is slow to answer (fan-out timeout tests).
            await asyncio.sleep(self.discovery_delay_s)
        if self.discovery_state() is c.DiscoveryState.NONE:
            self._discovery = asyncio.create_task(self._announce())

    async def stop_discovery(self) -> None:
        if self._discovery:
            self._discovery.cancel()
            self._discovery = None

    async def _announce(self) -> None:
        while True:
            for dev in self.devices.values():
                status = (
                    c.DeviceAvailability.CONNECTED
                    if dev.connected
                    else c.DeviceAvailability.AVAILABLE
                )
                self.seen(dev.address, dev.name, status)
            await asyncio.sleep(self.announce_interval_s)

    # -- devices --

    def _device(self, address: str) -> SimDevice:
        try:
            return self.devices[address]
        except KeyError:
            raise c.DeviceNotFound(f"no Dummy device at {address}") from None

    def _connected(self, address: str) -> SimDevice:
        dev = self._device(address)
        if not dev.connected:
            raise c.NoResult(f"Dummy device {address} is not connected")
        return dev

    async def connect(self, address: str) -> None:
        self._device(address).connected = True

    async def disconnect(self, address: str) -> None:
        dev = self._device(address)
        dev.connected = False
        for task in dev.streams.values():
            task.cancel()
        dev.streams.clear()

    def device_status(self, address: str) -> c.DeviceStatus:
        dev = self._device(address)
        return c.DeviceStatus.CONNECTED if dev.connected else c.DeviceStatus.DISCONNECTED

    def _component(self, dev: SimDevice, profile: dict[str, str]) -> str:
        component = profile.get("component", "")
        valid = ("temperature", "humidity") if dev.kind == "thermometer" else ("state",)
        if component not in valid:
            raise c.NoResult(
                f"{dev.name} has no component {component!r} "
                f"(profile key 'component' takes {', '.join(valid)})"
            )
        return component

    def value(self, dev: SimDevice, component: str) -> bytes:
        """The current raw value: slow sine waves, different per device."""
        t = self.value_clock()
        phase = int(dev.address[-2:], 16)
        if component == "temperature":
            return struct.pack("<h", round(2150 + 300 * math.sin(t / 60 + phase)))
        if component == "humidity":
            return struct.pack("<H", round(4500 + 1000 * math.sin(t / 90 + phase)))
        return bytes([dev.state])

    async def read(self, address: str, profile: dict[str, str]) -> bytes:
        dev = self._connected(address)
        return self.value(dev, self._component(dev, profile))

    async def write(self, address: str, profile: dict[str, str], value: bytes) -> None:
        dev = self._connected(address)
        if self._component(dev, profile) != "state":
            raise c.NoResult(f"{dev.name}: {profile.get('component')} is read-only")
        if len(value) != 1:
            raise c.InvalidArgs(f"a switch state is one byte, got {len(value)}")
        dev.state = 1 if value[0] else 0
        if "state" in dev.streams:
            self.record(address, {"component": "state"}, bytes([dev.state]))

    async def subscribe(self, address: str, profile: dict[str, str]) -> None:
        dev = self._connected(address)
        component = self._component(dev, profile)
        if component not in dev.streams:
            dev.streams[component] = asyncio.create_task(self._stream(dev, component))

    async def unsubscribe(self, address: str, profile: dict[str, str]) -> None:
        dev = self._device(address)
        task = dev.streams.pop(self._component(dev, profile), None)
        if task:
            task.cancel()

    async def _stream(self, dev: SimDevice, component: str) -> None:
        while True:
            self.record(dev.address, {"component": component}, self.value(dev, component))
            await asyncio.sleep(self.record_interval_s)

    async def stop(self) -> None:
        await self.stop_discovery()
        for dev in self.devices.values():
            for task in dev.streams.values():
                task.cancel()
