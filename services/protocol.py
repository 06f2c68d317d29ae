"""The template every protocol adapter follows: `org.eclipse.agail.Protocol` on the bus.

An adapter implements `ProtocolAdapter` (the radio-specific part); `ProtocolInterface`
puts it on the bus with AGILE's method signatures, argument checks and signals;
`ProtocolService` runs it as a gateway service that registers itself with the
ProtocolManager.
"""

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from dbus_fast import DBusError, Variant
from dbus_fast.service import ServiceInterface, dbus_method, signal

from services import contract as c
from services.bus import call, emit_signal
from services.service import BusService, ServiceConfig, spawn

log = logging.getLogger(__name__)

DEFAULT_VISIBILITY_S = 60.0


@dataclass
class Sighting:
    overview: c.DeviceOverview
    last_seen: float


class ProtocolAdapter(ABC):
    """The radio-specific part of a protocol. Methods raise contract errors on failure.

    The adapter reports what it discovers through `seen()` and received values
    through `record()`; the interface turns them into AGILE's signals.
    """

    short_name: str = ""  # "BLE": bus name org.eclipse.agail.protocol.BLE
    display_name: str = ""  # "Bluetooth LE"
    driver: str = ""  # what drives the radio, e.g. "bleak 3.1.0"

    def __init__(
        self,
        visibility_s: float = DEFAULT_VISIBILITY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.visibility_s = visibility_s
        self.clock = clock
        self._sightings: dict[str, Sighting] = {}
        self.on_new_device: Callable[[c.DeviceOverview], None] = lambda o: None
        self.on_record: Callable[[str, dict[str, str], bytes], None] = lambda a, p, v: None
        # Called when status() changed (a radio plugged in), so the manager lists it anew.
        self.on_status_change: Callable[[], object] = lambda: None
        self.last_data = b""

    @property
    def bus_name(self) -> str:
        return c.protocol_bus_name(self.short_name)

    # -- bookkeeping shared by every adapter --

    def seen(self, address: str, name: str, status: str = c.DeviceAvailability.AVAILABLE) -> None:
        """A device was seen now; announce it if it is new or had dropped out of sight."""
        now = self.clock()
        overview = c.DeviceOverview(address, self.bus_name, name, status)
        old = self._sightings.get(address)
        self._sightings[address] = Sighting(overview, now)
        if old is None or now - old.last_seen > self.visibility_s:
            self.on_new_device(overview)

    def visible_devices(self) -> list[c.DeviceOverview]:
        now = self.clock()
        for address in [
            a for a, s in self._sightings.items() if now - s.last_seen > self.visibility_s
        ]:
            del self._sightings[address]
        return [s.overview for s in self._sightings.values()]

    def record(self, address: str, profile: dict[str, str], value: bytes) -> None:
        self.last_data = value
        self.on_record(address, profile, value)

    # -- what an adapter implements --

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open the radio."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close the radio."""

    def status(self) -> str:
        return c.ProtocolState.AVAILABLE

    @abstractmethod
    def discovery_state(self) -> c.DiscoveryState: ...

    @abstractmethod
    async def start_discovery(self) -> None: ...

    @abstractmethod
    async def stop_discovery(self) -> None: ...

    @abstractmethod
    async def connect(self, address: str) -> None: ...

    @abstractmethod
    async def disconnect(self, address: str) -> None: ...

    @abstractmethod
    def device_status(self, address: str) -> c.DeviceStatus: ...

    @abstractmethod
    async def read(self, address: str, profile: dict[str, str]) -> bytes: ...

    @abstractmethod
    async def write(self, address: str, profile: dict[str, str], value: bytes) -> None: ...

    @abstractmethod
    async def subscribe(self, address: str, profile: dict[str, str]) -> None: ...

    @abstractmethod
    async def unsubscribe(self, address: str, profile: dict[str, str]) -> None: ...

    async def notification_read(self, address: str, profile: dict[str, str]) -> bytes:
        """AGILE's NotificationRead: the next notified value; adapters may override."""
        return await self.read(address, profile)

    def device_info(self, address: str) -> dict[str, Variant]:
        """Addition to AGILE: what the radio knows of a device (signal, advertised data)."""
        return {}

    async def characteristics(self, address: str) -> list[tuple[str, str, list[str]]]:
        """Addition to AGILE: (service, characteristic, flags) of a connected device."""
        raise c.NoResult(f"{self.short_name} does not list characteristics")


def checked_address(value: str) -> str:
    if not value or len(value) > 128 or not value.isprintable():
        raise c.InvalidArgs(f"not a device address: {value!r}")
    return value


class ProtocolInterface(ServiceInterface):
    """`org.eclipse.agail.Protocol` for one adapter."""

    def __init__(self, adapter: ProtocolAdapter) -> None:
        super().__init__(c.PROTOCOL_IFACE)
        self.adapter = adapter

    @dbus_method()
    def Status(self) -> c.Str:
        return self.adapter.status()

    @dbus_method()
    def Driver(self) -> c.Str:
        return self.adapter.driver

    @dbus_method()
    def Name(self) -> c.Str:
        return self.adapter.display_name

    @dbus_method()
    def Data(self) -> c.Bytes:
        return self.adapter.last_data

    @dbus_method()
    def Devices(self) -> c.OverviewListWire:
        return [o.to_wire() for o in self.adapter.visible_devices()]

    @dbus_method()
    def DiscoveryStatus(self) -> c.Str:
        return self.adapter.discovery_state()

    @dbus_method()
    async def StartDiscovery(self) -> None:
        await self.adapter.start_discovery()

    @dbus_method()
    async def StopDiscovery(self) -> None:
        await self.adapter.stop_discovery()

    @dbus_method()
    async def Connect(self, address: c.Str) -> None:
        await self.adapter.connect(checked_address(address))

    @dbus_method()
    async def Disconnect(self, address: c.Str) -> None:
        await self.adapter.disconnect(checked_address(address))

    @dbus_method()
    def DeviceStatus(self, address: c.Str) -> c.StatusWire:
        return [self.adapter.device_status(checked_address(address))]

    @dbus_method()
    async def Read(self, address: c.Str, profile: c.Profile) -> c.Bytes:
        return await self.adapter.read(checked_address(address), profile)

    @dbus_method()
    async def NotificationRead(self, address: c.Str, profile: c.Profile) -> c.Bytes:
        return await self.adapter.notification_read(checked_address(address), profile)

    @dbus_method()
    async def Write(self, address: c.Str, profile: c.Profile, value: c.Bytes) -> None:
        await self.adapter.write(checked_address(address), profile, value)

    @dbus_method()
    async def Subscribe(self, address: c.Str, profile: c.Profile) -> None:
        await self.adapter.subscribe(checked_address(address), profile)

    @dbus_method()
    async def Unsubscribe(self, address: c.Str, profile: c.Profile) -> None:
        await self.adapter.unsubscribe(checked_address(address), profile)

    @dbus_method()
    def DeviceInfo(self, address: c.Str) -> c.VariantDict:
        return self.adapter.device_info(checked_address(address))

    @dbus_method()
    def DevicesInfo(self) -> c.InfoByAddress:
        """DeviceInfo of every visible device at once: one call per refresh, not per row."""
        result = {}
        for overview in self.adapter.visible_devices():
            try:
                result[overview.id] = self.adapter.device_info(overview.id)
            except DBusError:
                continue
        return result

    @dbus_method()
    async def Characteristics(self, address: c.Str) -> c.CharacteristicListWire:
        return [list(x) for x in await self.adapter.characteristics(checked_address(address))]

    @signal()
    def NewRecordSignal(self) -> c.NewRecordWire:
        """Declared for introspection; sent from AGILE's path (contract)."""
        raise NotImplementedError


class ProtocolService(BusService):
    """Runs an adapter on the gateway bus and registers it with the ProtocolManager."""

    def __init__(self, config: ServiceConfig, adapter: ProtocolAdapter) -> None:
        super().__init__(config)
        self.adapter = adapter
        self.bus_names = (adapter.bus_name,)

    async def start(self) -> None:
        self.adapter.on_new_device = self._announce
        self.adapter.on_record = self._emit_record
        self.adapter.on_status_change = lambda: spawn(self.ready())  # listed anew
        await self.adapter.start()
        # An adapter may add methods of its own (ZigBee's PermitJoin) by a subclass.
        interface = getattr(self.adapter, "interface_class", ProtocolInterface)
        self.exports.export(c.protocol_path(self.adapter.short_name), interface(self.adapter))

    async def stop(self) -> None:
        await self.adapter.stop()

    async def ready(self) -> None:
        # The ProtocolManager also finds protocols by name when it (re)starts,
        # so a failure to register here is not fatal.
        try:
            await call(
                self.bus,
                c.PROTOCOL_MANAGER_NAME,
                c.PROTOCOL_MANAGER_PATH,
                c.PROTOCOL_MANAGER_IFACE,
                "Add",
                "s",
                [self.adapter.bus_name],
            )
        except DBusError as exc:
            log.info("not registered with the ProtocolManager yet (%s); it will find us", exc.text)

    def _announce(self, overview: c.DeviceOverview) -> None:
        emit_signal(
            self.bus, c.FOUND_NEW_DEVICE_SIGNAL, c.DeviceOverview.SIGNATURE, [overview.to_wire()]
        )

    def _emit_record(self, address: str, profile: dict[str, str], value: bytes) -> None:
        emit_signal(self.bus, c.NEW_RECORD_SIGNAL, "aysa{ss}", [value, address, profile])
