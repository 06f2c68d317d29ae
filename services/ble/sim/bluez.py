"""A virtual BlueZ: `org.bluez` on a private bus, faithful to BlueZ's documented D-Bus API.

Adapter1, Device1, GattService1, GattCharacteristic1 and GattDescriptor1 with
their documented property types, the ObjectManager at `/` (InterfacesAdded and
InterfacesRemoved are sent from `/`, as BlueZ does), and the life cycles that
clients depend on: devices appear while discovering and send RSSI updates,
temporary devices are removed some time after they were last seen, Connect sets
Connected, exports the GATT tree, then sets ServicesResolved; Disconnect (or
leaving range) does the reverse.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

from dbus_fast import DBusError, Message, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import BusType, PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from services.ble.sim.peripherals import SimCharacteristic, SimPeripheral, SimService
from services.bus import request_names

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
OM_IFACE = "org.freedesktop.DBus.ObjectManager"

Str = Annotated[str, DBusSignature("s")]
StrList = Annotated[list[str], DBusSignature("as")]
Bool = Annotated[bool, DBusSignature("b")]
UInt32 = Annotated[int, DBusSignature("u")]
UInt16 = Annotated[int, DBusSignature("q")]
Int16 = Annotated[int, DBusSignature("n")]
Path = Annotated[str, DBusSignature("o")]
PathList = Annotated[list[str], DBusSignature("ao")]
Bytes = Annotated[bytes, DBusSignature("ay")]
Options = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
ManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
ServiceData = Annotated[dict[str, Variant], DBusSignature("a{sv}")]


def bluez_error(name: str, text: str) -> DBusError:
    return DBusError(f"org.bluez.Error.{name}", text)


class RootObjectManagerBus(MessageBus):
    """BlueZ sends InterfacesAdded/Removed from `/`; dbus-fast would send them from the object."""

    def _emit_interface_added(self, path: str, interface: ServiceInterface) -> None:
        if self._disconnected:
            return

        def send(iface: ServiceInterface, props: Any, _user: Any, err: Exception | None) -> None:
            if err is not None:
                log.error("properties of %s at %s unavailable: %s", iface.name, path, err)
            self.send(
                Message.new_signal(
                    "/",
                    OM_IFACE,
                    "InterfacesAdded",
                    "oa{sa{sv}}",
                    [path, {iface.name: props or {}}],
                )
            )

        ServiceInterface._get_all_property_values(interface, send)

    def _emit_interface_removed(self, path: str, removed_interfaces: list[str]) -> None:
        if self._disconnected:
            return
        self.send(
            Message.new_signal(
                "/", OM_IFACE, "InterfacesRemoved", "oas", [path, removed_interfaces]
            )
        )


# -- org.bluez.Adapter1 ------------------------------------------------------------------


class Adapter1(ServiceInterface):
    def __init__(self, bluez: "VirtualBlueZ", address: str, alias: str) -> None:
        super().__init__("org.bluez.Adapter1")
        self.bluez = bluez
        self._address = address
        self._alias = alias
        self._powered = True
        self._discoverable = False
        self._discoverable_timeout = 180
        self._pairable = True
        self._pairable_timeout = 0
        self.discovering = False
        self.discovery_filter: dict[str, Any] = {}

    @dbus_method()
    def StartDiscovery(self) -> None:
        if not self._powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        if not self.discovering:
            self.discovering = True
            self.emit_properties_changed({"Discovering": True})
            self.bluez.discovery_changed()

    @dbus_method()
    def StopDiscovery(self) -> None:
        if not self.discovering:
            raise bluez_error("Failed", "No discovery started")
        self.discovering = False
        self.emit_properties_changed({"Discovering": False})
        self.bluez.discovery_changed()

    @dbus_method()
    def SetDiscoveryFilter(self, properties: Options) -> None:
        allowed = {
            "UUIDs",
            "RSSI",
            "Pathloss",
            "Transport",
            "DuplicateData",
            "Discoverable",
            "Pattern",
        }
        unknown = set(properties) - allowed
        if unknown:
            raise bluez_error("InvalidArguments", f"unknown filter keys {sorted(unknown)}")
        transport = properties.get("Transport")
        if transport is not None and transport.value not in ("auto", "bredr", "le"):
            raise bluez_error("InvalidArguments", "Transport is auto, bredr or le")
        self.discovery_filter = {k: v.value for k, v in properties.items()}

    @dbus_method()
    def GetDiscoveryFilters(self) -> StrList:
        return [
            "UUIDs",
            "RSSI",
            "Pathloss",
            "Transport",
            "DuplicateData",
            "Discoverable",
            "Pattern",
        ]

    @dbus_method()
    def RemoveDevice(self, device: Path) -> None:
        if not self.bluez.remove_device(device):
            raise bluez_error("DoesNotExist", f"no device {device}")

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> Str:
        return self._address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> Str:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> Str:
        return "agile-virtual"

    @dbus_property()
    def Alias(self) -> Str:
        return self._alias

    @Alias.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def Alias(self, value: Str) -> None:
        self._alias = value

    @dbus_property(access=PropertyAccess.READ)
    def Class(self) -> UInt32:
        return 0x000000

    @dbus_property()
    def Powered(self) -> Bool:
        return self._powered

    @Powered.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def Powered(self, value: Bool) -> None:
        self._powered = value
        if not value and self.discovering:
            self.discovering = False
            self.emit_properties_changed({"Discovering": False})
            self.bluez.discovery_changed()

    @dbus_property(access=PropertyAccess.READ)
    def PowerState(self) -> Str:
        return "on" if self._powered else "off"

    @dbus_property()
    def Discoverable(self) -> Bool:
        return self._discoverable

    @Discoverable.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def Discoverable(self, value: Bool) -> None:
        self._discoverable = value

    @dbus_property()
    def DiscoverableTimeout(self) -> UInt32:
        return self._discoverable_timeout

    @DiscoverableTimeout.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def DiscoverableTimeout(self, value: UInt32) -> None:
        self._discoverable_timeout = value

    @dbus_property()
    def Pairable(self) -> Bool:
        return self._pairable

    @Pairable.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def Pairable(self, value: Bool) -> None:
        self._pairable = value

    @dbus_property()
    def PairableTimeout(self) -> UInt32:
        return self._pairable_timeout

    @PairableTimeout.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def PairableTimeout(self, value: UInt32) -> None:
        self._pairable_timeout = value

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> Bool:
        return self.discovering

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> StrList:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def Modalias(self) -> Str:
        return "usb:v1D6Bp0246d0540"

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> StrList:
        return ["central", "peripheral"]


# -- org.bluez.Device1 -------------------------------------------------------------------


class Device1(ServiceInterface):
    def __init__(self, bluez: "VirtualBlueZ", path: str, peripheral: SimPeripheral) -> None:
        super().__init__("org.bluez.Device1")
        self.bluez = bluez
        self.path = path
        self.peripheral = peripheral
        self.alias = peripheral.name
        self.rssi = peripheral.rssi
        self.connected = False
        self.services_resolved = False
        self.trusted = False
        self.paired = False
        self.blocked = False
        self.last_seen = time.monotonic()
        self.gatt: list[tuple[str, ServiceInterface]] = []

    @dbus_method()
    async def Connect(self) -> None:
        await self.bluez.connect(self)

    @dbus_method()
    async def Disconnect(self) -> None:
        self.bluez.disconnect(self)

    @dbus_method()
    async def ConnectProfile(self, uuid: Str) -> None:
        if uuid not in self._uuids():
            raise bluez_error("DoesNotExist", f"profile {uuid} not supported")
        await self.bluez.connect(self)

    @dbus_method()
    def DisconnectProfile(self, uuid: Str) -> None:
        if uuid not in self._uuids():
            raise bluez_error("DoesNotExist", f"profile {uuid} not supported")
        self.bluez.disconnect(self)

    @dbus_method()
    async def Pair(self) -> None:
        if self.paired:
            raise bluez_error("AlreadyExists", "Already Paired")
        if not self.peripheral.connectable:
            raise bluez_error("AuthenticationFailed", "Authentication Failed")
        await self.bluez.connect(self)
        self.paired = True
        self.emit_properties_changed({"Paired": True, "Bonded": True})

    @dbus_method()
    def CancelPairing(self) -> None:
        raise bluez_error("DoesNotExist", "No pairing in progress")

    def _uuids(self) -> list[str]:
        # Before services are resolved BlueZ knows only what was advertised.
        uuids = set(self.peripheral.advertised_uuids)
        if self.services_resolved:
            uuids |= {s.uuid for s in self.peripheral.services}
        return sorted(uuids)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> Str:
        return self.peripheral.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> Str:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> Str:
        return self.peripheral.name

    @dbus_property()
    def Alias(self) -> Str:
        return self.alias

    @Alias.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def Alias(self, value: Str) -> None:
        self.alias = value or self.peripheral.name

    @dbus_property(access=PropertyAccess.READ)
    def Appearance(self) -> UInt16:
        return self.peripheral.appearance

    @dbus_property(access=PropertyAccess.READ)
    def Icon(self) -> Str:
        return "input-gaming" if self.peripheral.appearance == 0x0340 else ""

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> StrList:
        return self._uuids()

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> Bool:
        return self.paired

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> Bool:
        return self.paired

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> Bool:
        return self.connected

    @dbus_property()
    def Trusted(self) -> Bool:
        return self.trusted

    @Trusted.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def Trusted(self, value: Bool) -> None:
        self.trusted = value

    @dbus_property()
    def Blocked(self) -> Bool:
        return self.blocked

    @Blocked.setter  # type: ignore[no-redef]  # dbus-fast's setter: the same name
    def Blocked(self, value: Bool) -> None:
        self.blocked = value
        if value and self.connected:
            self.bluez.disconnect(self)

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> Bool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> Path:
        return self.bluez.adapter_path

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> Int16:
        return self.rssi

    @dbus_property(access=PropertyAccess.READ)
    def TxPower(self) -> Int16:
        return self.peripheral.tx_power

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> ManufacturerData:
        return {k: Variant("ay", v) for k, v in self.peripheral.manufacturer_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> ServiceData:
        return {k: Variant("ay", v) for k, v in self.peripheral.service_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> Bool:
        return self.services_resolved


# -- GATT ----------------------------------------------------------------------------------


class GattService1(ServiceInterface):
    def __init__(self, service: SimService, device_path: str, handle: int) -> None:
        super().__init__("org.bluez.GattService1")
        self.service = service
        self.device_path = device_path
        self.handle = handle

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> Str:
        return self.service.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> Bool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> Path:
        return self.device_path

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> PathList:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def Handle(self) -> UInt16:
        return self.handle


class GattCharacteristic1(ServiceInterface):
    def __init__(
        self, char: SimCharacteristic, service_path: str, handle: int, clock: Callable[[], float]
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.char = char
        self.service_path = service_path
        self.handle = handle
        self.clock = clock
        self.notifier: asyncio.Task[None] | None = None

    def current(self) -> bytes:
        return self.char.read(self.clock()) if self.char.read else self.char.value

    @dbus_method()
    def ReadValue(self, options: Options) -> Bytes:
        if "read" not in self.char.flags:
            raise bluez_error("NotPermitted", "Read not permitted")
        offset = int(options["offset"].value) if "offset" in options else 0
        value = self.current()
        if offset > len(value):
            raise bluez_error("InvalidOffset", "Invalid offset")
        return value[offset:]

    @dbus_method()
    def WriteValue(self, value: Bytes, options: Options) -> None:
        kind = options["type"].value if "type" in options else "request"
        wanted = "write-without-response" if kind == "command" else "write"
        if wanted not in self.char.flags and "write" not in self.char.flags:
            raise bluez_error("NotPermitted", "Write not permitted")
        if not value:
            raise bluez_error("InvalidValueLength", "Invalid value length")
        self.char.value = bytes(value)

    @dbus_method()
    def StartNotify(self) -> None:
        if "notify" not in self.char.flags and "indicate" not in self.char.flags:
            raise bluez_error("NotSupported", "Operation is not supported")
        if self.notifier is None:
            self.notifier = asyncio.create_task(self._notify())
            self.emit_properties_changed({"Notifying": True})

    @dbus_method()
    def StopNotify(self) -> None:
        if self.notifier is None:
            raise bluez_error("Failed", "No notify session started")
        self.stop_notifying()
        self.emit_properties_changed({"Notifying": False})

    def stop_notifying(self) -> None:
        if self.notifier is not None:
            self.notifier.cancel()
            self.notifier = None

    async def _notify(self) -> None:
        period = 1.0 / max(0.01, self.char.notify_hz)
        while True:
            self.emit_properties_changed({"Value": self.current()})
            await asyncio.sleep(period)

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> Str:
        return self.char.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> Path:
        return self.service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> Bytes:
        return self.char.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> Bool:
        return self.notifier is not None

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> StrList:
        return list(self.char.flags)

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> UInt16:
        return 247

    @dbus_property(access=PropertyAccess.READ)
    def Handle(self) -> UInt16:
        return self.handle


class GattDescriptor1(ServiceInterface):
    """The Client Characteristic Configuration descriptor of a notifying characteristic."""

    def __init__(self, uuid: str, char: GattCharacteristic1, char_path: str, handle: int) -> None:
        super().__init__("org.bluez.GattDescriptor1")
        self.uuid = uuid
        self.char = char
        self.char_path = char_path
        self.handle = handle

    def _value(self) -> bytes:
        return b"\x01\x00" if self.char.notifier is not None else b"\x00\x00"

    @dbus_method()
    def ReadValue(self, options: Options) -> Bytes:
        return self._value()

    @dbus_method()
    def WriteValue(self, value: Bytes, options: Options) -> None:
        # BlueZ reserves the CCCD for StartNotify/StopNotify.
        raise bluez_error("NotPermitted", "Write not permitted")

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> Str:
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Characteristic(self) -> Path:
        return self.char_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> Bytes:
        return self._value()

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> StrList:
        return ["read"]

    @dbus_property(access=PropertyAccess.READ)
    def Handle(self) -> UInt16:
        return self.handle


# -- the whole radio ------------------------------------------------------------------------


def device_path(adapter_path: str, address: str) -> str:
    return f"{adapter_path}/dev_{address.replace(':', '_')}"


class VirtualBlueZ:
    """One adapter (hci0) and a population of peripherals, on the bus it is given."""

    def __init__(
        self,
        peripherals: list[SimPeripheral],
        adapter: str = "hci0",
        advert_interval_s: float = 0.5,
        temporary_timeout_s: float = 30.0,
        connect_delay_s: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.peripherals = {p.address: p for p in peripherals}
        self.adapter_path = f"/org/bluez/{adapter}"
        self.advert_interval_s = advert_interval_s
        self.temporary_timeout_s = temporary_timeout_s
        self.connect_delay_s = connect_delay_s
        self.clock = clock
        self.devices: dict[str, Device1] = {}
        self._next_advert: dict[str, float] = {}
        self.bus: MessageBus
        self.adapter = Adapter1(self, "00:AA:01:00:00:01", "agile-virtual")
        self._ticker: asyncio.Task[None] | None = None

    async def start(self, bus_address: str | None = None) -> None:
        self.bus = await RootObjectManagerBus(
            bus_address=bus_address, bus_type=BusType.SYSTEM
        ).connect()
        self.bus.export(self.adapter_path, self.adapter)
        await request_names(self.bus, [BLUEZ])
        self._ticker = asyncio.create_task(self._tick())
        log.info(
            "virtual BlueZ with %d peripherals on %s",
            len(self.peripherals),
            bus_address or "the system bus",
        )

    async def stop(self) -> None:
        """Unexport everything first: clients cache the tree and must see it go."""
        if self._ticker:
            self._ticker.cancel()
        for dev in list(self.devices.values()):
            self.disconnect(dev)
            self._remove(dev)
        self.bus.unexport(self.adapter_path)
        await asyncio.sleep(0.05)  # let the signals leave before the connection closes
        self.bus.disconnect()

    # -- discovery --

    def _visible(self, p: SimPeripheral) -> bool:
        uuids = self.adapter.discovery_filter.get("UUIDs") or []
        if uuids and not set(uuids) & set(p.advertised_uuids):
            return False
        threshold = self.adapter.discovery_filter.get("RSSI")
        return threshold is None or p.rssi >= threshold

    def discovery_changed(self) -> None:
        if self.adapter.discovering:
            # Each peripheral advertises on its own schedule: the first packet of
            # each arrives somewhere within one advertising interval.
            now = time.monotonic()
            for p in self.peripherals.values():
                self._next_advert[p.address] = now + p.rng.uniform(0, self.advert_interval_s)

    def _advertise(self, t: float) -> None:
        now = time.monotonic()
        for p in self.peripherals.values():
            if now < self._next_advert.get(p.address, 0) or not (
                p.in_range(t) and self._visible(p)
            ):
                continue
            self._next_advert[p.address] = now + self.advert_interval_s * p.rng.uniform(0.9, 1.1)
            dev = self.devices.get(p.address)
            if dev is None:
                dev = Device1(self, device_path(self.adapter_path, p.address), p)
                dev.rssi = p.rssi_at()
                self.devices[p.address] = dev
                self.bus.export(dev.path, dev)
            else:
                # Advertisements reach clients only as property changes.
                dev.rssi = p.rssi_at()
                changed: dict[str, Any] = {"RSSI": dev.rssi}
                if p.manufacturer_data:
                    changed["ManufacturerData"] = {
                        k: Variant("ay", v) for k, v in p.manufacturer_data.items()
                    }
                dev.emit_properties_changed(changed)
            dev.last_seen = now

    async def _tick(self) -> None:
        while True:
            t = self.clock()
            if self.adapter.discovering:
                self._advertise(t)
            now = time.monotonic()
            for dev in list(self.devices.values()):
                if not dev.peripheral.in_range(t):
                    if dev.connected:
                        log.info("%s went out of range", dev.peripheral.address)
                        self.disconnect(dev)
                    if not (dev.paired or dev.trusted) and now - dev.last_seen > min(
                        self.temporary_timeout_s, 5.0
                    ):
                        self._remove(dev)
                elif (
                    not (dev.connected or dev.paired or dev.trusted)
                    and now - dev.last_seen > self.temporary_timeout_s
                ):
                    self._remove(dev)  # a temporary device nobody has seen for a while
            await asyncio.sleep(0.05)

    def _remove(self, dev: Device1) -> None:
        if self.devices.pop(dev.peripheral.address, None) is not None:
            self.bus.unexport(dev.path)

    def remove_device(self, path: str) -> bool:
        dev = next((d for d in self.devices.values() if d.path == path), None)
        if dev is None:
            return False
        self.disconnect(dev)
        self._remove(dev)
        return True

    # -- connections --

    async def connect(self, dev: Device1) -> None:
        if dev.connected:
            return
        await asyncio.sleep(self.connect_delay_s)
        p = dev.peripheral
        if dev.blocked:
            raise bluez_error("Failed", "Operation not permitted")
        if not p.in_range(self.clock()):
            raise bluez_error("Failed", "le-connection-abort-by-local")
        if not p.connectable:
            raise bluez_error("Failed", "le-connection-abort-by-remote")
        dev.connected = True
        dev.last_seen = time.monotonic()
        dev.emit_properties_changed({"Connected": True})
        # The reply to Connect goes out first; services resolve right after, as in BlueZ.
        asyncio.get_running_loop().call_soon(self._resolve_services, dev)

    def _resolve_services(self, dev: Device1) -> None:
        if not dev.connected or dev.gatt:
            return
        handle = 0x000A
        for service in dev.peripheral.services:
            s_path = f"{dev.path}/service{handle:04x}"
            s_iface = GattService1(service, dev.path, handle)
            dev.gatt.append((s_path, s_iface))
            handle += 1
            for char in service.characteristics:
                c_path = f"{s_path}/char{handle:04x}"
                c_iface = GattCharacteristic1(char, s_path, handle, self.clock)
                dev.gatt.append((c_path, c_iface))
                handle += 2  # declaration + value handles
                if "notify" in char.flags or "indicate" in char.flags:
                    d_path = f"{c_path}/desc{handle:04x}"
                    dev.gatt.append(
                        (
                            d_path,
                            GattDescriptor1(
                                "00002902-0000-1000-8000-00805f9b34fb", c_iface, c_path, handle
                            ),
                        )
                    )
                    handle += 1
        for path, iface in dev.gatt:
            self.bus.export(path, iface)
        dev.services_resolved = True
        dev.emit_properties_changed({"ServicesResolved": True, "UUIDs": dev._uuids()})

    def disconnect(self, dev: Device1) -> None:
        if not dev.connected:
            return
        if dev.services_resolved:
            dev.services_resolved = False
            dev.emit_properties_changed({"ServicesResolved": False})
        for path, iface in reversed(dev.gatt):
            if isinstance(iface, GattCharacteristic1):
                iface.stop_notifying()
            self.bus.unexport(path)
        dev.gatt.clear()
        dev.connected = False
        dev.emit_properties_changed({"Connected": False})
