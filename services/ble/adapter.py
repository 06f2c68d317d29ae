"""`org.eclipse.agail.protocol.BLE` on bleak.

bleak talks to BlueZ on the system bus: the real one on a gateway, the virtual
one when DBUS_SYSTEM_BUS_ADDRESS points at it. Connections go through
bleak-retry-connector, which knows BlueZ's transient failures (slots, stale
connections, "le-connection-abort-by-local") and retries them sensibly; this
adapter adds what it does not: reconnecting with backoff while someone holds a
subscription, and restoring the notifications afterwards.
"""

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field

from bleak import BleakClient, BleakScanner, BlueZScannerArgs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection
from dbus_fast import BusType, DBusError, Message, Variant
from dbus_fast.aio import MessageBus

from services import contract as c
from services.bus import loss_noted
from services.protocol import ProtocolAdapter
from services.service import spawn

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"


def normalize_uuid(value: str) -> str:
    """`2a6e`, `0x2A6E` or a full UUID -> the lower-case 128-bit form BlueZ uses."""
    text = value.strip().lower().removeprefix("0x")
    if len(text) in (4, 8) and all(ch in "0123456789abcdef" for ch in text):
        return f"{int(text, 16):08x}-0000-1000-8000-00805f9b34fb"
    if len(text) == 36 and text.count("-") == 4:
        return text
    raise c.InvalidArgs(f"not a GATT UUID: {value!r}")


def profile_uuids(profile: dict[str, str]) -> tuple[str, str]:
    service = profile.get(c.GATT_SERVICE)
    char = next((profile[k] for k in c.GATT_CHARACTERISTIC_KEYS if k in profile), None)
    if not service or not char:
        raise c.InvalidArgs(
            f"a BLE profile needs {c.GATT_SERVICE} and "
            f"{c.GATT_CHARACTERISTIC_KEYS[0]}; got {sorted(profile)}"
        )
    return normalize_uuid(service), normalize_uuid(char)


@dataclass
class Advert:
    name: str
    rssi: int
    service_uuids: list[str]
    manufacturer_data: dict[int, bytes]
    last_seen: float


@dataclass
class Peer:
    """What the adapter keeps per device it has connected to."""

    address: str
    client: BleakClient | None = None
    # characteristic (service, char) -> the profile the subscriber used
    subscriptions: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    last_values: dict[tuple[str, str], bytes] = field(default_factory=dict)
    reconnector: asyncio.Task[None] | None = None
    wanted: bool = False  # the operator asked for a connection
    # Two clients asking at once (say the MQTT bridge and agile-tui after a restart)
    # make one connection: the second waits for the first and finds it made.
    connecting: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    @property
    def gatt(self) -> BleakClient:
        """The connection, where the caller saw `connected`."""
        assert self.client is not None
        return self.client


FIND_S = 5.0  # how long a scan looks for an address not yet seen
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


class BLEAdapter(ProtocolAdapter):
    short_name = "BLE"
    display_name = "Bluetooth LE"

    def __init__(
        self,
        adapter: str | None = None,
        reconnect_max_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        visibility_s: float = 60.0,
    ) -> None:
        super().__init__(visibility_s=visibility_s)
        from importlib.metadata import version

        self.driver = f"bleak {version('bleak')}"
        self.hci = adapter
        self.reconnect_max_s = reconnect_max_s
        self.connect_timeout_s = connect_timeout_s
        self.scanner: BleakScanner | None = None
        self.ble_devices: dict[str, BLEDevice] = {}
        self.adverts: dict[str, Advert] = {}
        self.peers: dict[str, Peer] = {}
        self.system_bus: MessageBus | None = None
        self.bluez_present = True
        self._discovery_wanted = False  # restart scanning when BlueZ comes back
        # One scan for addresses at a time (a second one's StopDiscovery would end the
        # first's discovery session under it: "No discovery started"), for every address
        # sought when it starts: callers waiting for it share the next scan.
        self._finding = asyncio.Lock()
        self._sought: set[str] = set()
        self.scans = 0  # scans started
        self._missed: dict[str, tuple[int, float]] = {}  # address: (scan, when) it was missed

    # -- life cycle and BlueZ coming and going --

    async def start(self) -> None:
        try:
            self.system_bus = loss_noted(await MessageBus(bus_type=BusType.SYSTEM).connect())
        except (OSError, DBusError) as exc:
            log.error("no system bus (%s); BLE calls will fail until it exists", exc)
            return
        self.system_bus.add_message_handler(self._bluez_owner_changed)
        await self.system_bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[f"type='signal',member='NameOwnerChanged',arg0='{BLUEZ}'"],
            )
        )

    async def stop(self) -> None:
        await self.stop_discovery()
        for peer in self.peers.values():
            if peer.reconnector:
                peer.reconnector.cancel()
            if peer.client is not None:
                with contextlib.suppress(Exception):
                    await peer.client.disconnect()
        if self.system_bus:
            self.system_bus.disconnect()

    def _bluez_owner_changed(self, msg: Message) -> None:
        if msg.member != "NameOwnerChanged" or not msg.body or msg.body[0] != BLUEZ:
            return
        _, _old, new = msg.body
        if not new:
            log.warning("BlueZ left the system bus; waiting for it to come back")
            self.bluez_present = False
            spawn(self._forget_bluez())
        else:
            log.info("BlueZ is (back) on the system bus")
            self.bluez_present = True
            spawn(self._bluez_back())

    async def _forget_bluez(self) -> None:
        """BlueZ died without saying goodbye: bleak's cached object tree is stale."""
        from bleak.backends.bluezdbus.manager import get_global_bluez_manager

        manager = await get_global_bluez_manager()
        # bleak resets its cache and reports every device disconnected when its bus
        # closes, and opens a fresh one on next use; there is no public call for it.
        bus = getattr(manager, "_bus", None)
        if bus is not None:
            bus.disconnect()
        self.scanner = None

    async def _bluez_back(self) -> None:
        await asyncio.sleep(0.2)  # let it export its adapter
        if self._discovery_wanted:
            with contextlib.suppress(DBusError, c.NoResult):
                await self.start_discovery()
        for peer in self.peers.values():
            if (peer.subscriptions or peer.wanted) and not peer.connected:
                self._reconnect_later(peer)

    # -- discovery --

    def discovery_state(self) -> c.DiscoveryState:
        return c.DiscoveryState.RUNNING if self.scanner else c.DiscoveryState.NONE

    async def start_discovery(self) -> None:
        self._discovery_wanted = True
        if self.scanner:
            return
        bluez: BlueZScannerArgs = {"adapter": self.hci} if self.hci else {}
        scanner = BleakScanner(detection_callback=self._advertisement, bluez=bluez)
        try:
            await scanner.start()
        except (BleakError, DBusError, OSError) as exc:
            raise c.NoResult(f"BLE discovery cannot start: {exc}") from None
        self.scanner = scanner

    async def stop_discovery(self) -> None:
        self._discovery_wanted = False
        scanner, self.scanner = self.scanner, None
        if scanner:
            with contextlib.suppress(BleakError, DBusError, OSError):
                await scanner.stop()

    def _advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        try:
            name = adv.local_name or device.name or ""
            if not isinstance(name, str) or not isinstance(adv.rssi, int):
                raise ValueError(f"name {name!r}, rssi {adv.rssi!r}")
            manufacturer = {int(k): bytes(v) for k, v in adv.manufacturer_data.items()}
            uuids = [normalize_uuid(u) for u in adv.service_uuids]
        except (ValueError, TypeError, c.InvalidArgs) as exc:
            log.warning("malformed advertisement from %s skipped: %s", device.address, exc)
            return
        self.ble_devices[device.address] = device
        self.adverts[device.address] = Advert(name, adv.rssi, uuids, manufacturer, time.time())
        peer = self.peers.get(device.address)
        status = (
            c.DeviceAvailability.CONNECTED
            if peer and peer.connected
            else c.DeviceAvailability.AVAILABLE
        )
        self.seen(device.address, name, status)

    # -- connections --

    def _peer(self, address: str) -> Peer:
        return self.peers.setdefault(address, Peer(address))

    async def _find(self, address: str) -> BLEDevice:
        if (device := self.ble_devices.get(address)) is not None:
            return device
        if not MAC_RE.match(address):
            raise c.InvalidArgs(f"not a BLE address: {address[:40]!r} (XX:XX:XX:XX:XX:XX)")
        self._sought.add(address)
        asked = self.scans
        async with self._finding:
            if (device := self.ble_devices.get(address)) is None and not self._missed_since(
                address, asked
            ):
                self._sought.add(address)  # (a scan that failed took it along)
                await self._scan_for_sought()
                device = self.ble_devices.get(address)
            if device is None:
                raise c.DeviceNotFound(f"no BLE device {address} in range")
            return device

    def _missed_since(self, address: str, asked: int) -> bool:
        """Whether a scan since `asked` missed the address, or one in the last FIND_S:
        callers after the same absent address share one scan's answer."""
        scan, at = self._missed.get(address, (0, 0.0))
        return scan > asked or time.monotonic() - at < FIND_S

    async def _scan_for_sought(self) -> None:
        """Scan until every address sought is seen, FIND_S at most; those seen go to
        `ble_devices`, those not to `_missed`."""
        self.scans += 1
        left = {a.upper(): a for a in self._sought}
        self._sought.clear()
        seen_all = asyncio.Event()

        def detected(device: BLEDevice, _adv: AdvertisementData) -> None:
            if (address := left.pop(device.address.upper(), None)) is not None:
                self.ble_devices[address] = device
                if not left:
                    seen_all.set()

        try:
            async with BleakScanner(detection_callback=detected):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(seen_all.wait(), FIND_S)
        except (BleakError, DBusError, OSError) as exc:
            raise c.NoResult(f"BLE unavailable: {exc}") from None
        now = time.monotonic()
        self._missed = {a: m for a, m in self._missed.items() if now - m[1] < FIND_S}
        self._missed.update((address, (self.scans, now)) for address in left.values())

    async def _connect(self, peer: Peer) -> None:
        async with peer.connecting:
            if not peer.connected:
                await self._connect_now(peer)

    async def _connect_now(self, peer: Peer) -> None:
        device = await self._find(peer.address)
        try:
            peer.client = await asyncio.wait_for(
                establish_connection(
                    BleakClient,
                    device,
                    device.name or peer.address,
                    disconnected_callback=lambda _client: self._disconnected(peer),
                    max_attempts=2,
                ),
                self.connect_timeout_s,
            )
        except (BleakError, DBusError, OSError, TimeoutError) as exc:
            peer.client = None
            raise c.NoResult(
                f"cannot connect to {peer.address}: {exc or type(exc).__name__}"
            ) from None
        if peer.address in self.adverts:
            self.seen(peer.address, self.adverts[peer.address].name, c.DeviceAvailability.CONNECTED)

    async def connect(self, address: str) -> None:
        peer = self._peer(address)
        peer.wanted = True
        await self._connect(peer)

    async def disconnect(self, address: str) -> None:
        peer = self.peers.get(address)
        if peer is None:
            raise c.DeviceNotFound(f"no BLE connection to {address}")
        peer.wanted = False
        peer.subscriptions.clear()
        if peer.reconnector:
            peer.reconnector.cancel()
            peer.reconnector = None
        client, peer.client = peer.client, None
        if client is not None:
            with contextlib.suppress(BleakError, DBusError, OSError):
                await client.disconnect()

    def device_status(self, address: str) -> c.DeviceStatus:
        peer = self.peers.get(address)
        if peer is None and address not in self.adverts:
            raise c.DeviceNotFound(f"no BLE device {address}")
        return c.DeviceStatus.CONNECTED if peer and peer.connected else c.DeviceStatus.DISCONNECTED

    def _disconnected(self, peer: Peer) -> None:
        log.info("%s disconnected", peer.address)
        if peer.address in self.adverts:
            self.seen(peer.address, self.adverts[peer.address].name)
        if peer.subscriptions or peer.wanted:
            self._reconnect_later(peer)

    def _reconnect_later(self, peer: Peer) -> None:
        if peer.reconnector is None or peer.reconnector.done():
            peer.reconnector = asyncio.create_task(self._reconnect(peer))

    async def _reconnect(self, peer: Peer) -> None:
        """Reconnect with exponential backoff while someone needs the device."""
        delay = 1.0
        while (peer.subscriptions or peer.wanted) and not peer.connected:
            await asyncio.sleep(delay)
            try:
                await self._connect(peer)
            except (c.NoResult, c.DeviceNotFound) as exc:
                log.info(
                    "%s: reconnect failed (%s); next try in %.0f s",
                    peer.address,
                    exc.text,
                    min(delay * 2, self.reconnect_max_s),
                )
                delay = min(delay * 2, self.reconnect_max_s)
                continue
            for (service, char), profile in list(peer.subscriptions.items()):
                try:
                    await self._start_notify(peer, service, char, profile)
                except (c.NoResult, c.InvalidArgs) as exc:
                    log.warning(
                        "%s: notification on %s not restored: %s", peer.address, char, exc.text
                    )
            log.info(
                "%s reconnected; %d subscriptions restored", peer.address, len(peer.subscriptions)
            )

    # -- GATT --

    def _characteristic(
        self, address: str, profile: dict[str, str]
    ) -> tuple[Peer, BleakGATTCharacteristic, tuple[str, str]]:
        key = profile_uuids(profile)
        peer = self.peers.get(address)
        if peer is None or not peer.connected:
            if address not in self.adverts and peer is None:
                raise c.DeviceNotFound(f"no BLE device {address}")
            raise c.NoResult(f"BLE device {address} is not connected")
        service = peer.gatt.services.get_service(key[0])
        if service is None:
            raise c.NoResult(f"{address} has no GATT service {key[0]}")
        char = service.get_characteristic(key[1])
        if char is None:
            raise c.NoResult(f"{address} has no characteristic {key[1]} in {key[0]}")
        return peer, char, key

    async def read(self, address: str, profile: dict[str, str]) -> bytes:
        peer, char, _ = self._characteristic(address, profile)
        try:
            return bytes(await peer.gatt.read_gatt_char(char))
        except (BleakError, DBusError) as exc:
            raise c.NoResult(f"read of {char.uuid} on {address} failed: {exc}") from None

    async def write(self, address: str, profile: dict[str, str], value: bytes) -> None:
        peer, char, _ = self._characteristic(address, profile)
        response = "write" in char.properties
        try:
            await peer.gatt.write_gatt_char(char, value, response=response)
        except (BleakError, DBusError) as exc:
            raise c.NoResult(f"write of {char.uuid} on {address} failed: {exc}") from None

    async def _start_notify(
        self, peer: Peer, service: str, char_uuid: str, profile: dict[str, str]
    ) -> None:
        _, char, key = self._characteristic(peer.address, profile)

        def notified(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            peer.last_values[key] = bytes(data)
            self.record(peer.address, profile, bytes(data))

        try:
            await peer.gatt.start_notify(char, notified)
        except (BleakError, DBusError) as exc:
            raise c.NoResult(
                f"notifications of {char.uuid} on {peer.address} failed: {exc}"
            ) from None

    async def subscribe(self, address: str, profile: dict[str, str]) -> None:
        peer, _char, key = self._characteristic(address, profile)
        if key in peer.subscriptions:
            return
        await self._start_notify(peer, key[0], key[1], profile)
        peer.subscriptions[key] = dict(profile)

    async def unsubscribe(self, address: str, profile: dict[str, str]) -> None:
        key = profile_uuids(profile)
        peer = self.peers.get(address)
        if peer is None or peer.subscriptions.pop(key, None) is None:
            raise c.NoResult(f"{address}: not subscribed to {key[1]}")
        if peer.connected:
            _, char, _ = self._characteristic(address, profile)
            with contextlib.suppress(BleakError, DBusError):
                await peer.gatt.stop_notify(char)

    def device_info(self, address: str) -> dict[str, Variant]:
        adv = self.adverts.get(address)
        if adv is None:
            raise c.DeviceNotFound(f"no BLE advertisement from {address}")
        return {
            "Name": Variant("s", adv.name),
            "RSSI": Variant("n", adv.rssi),
            "ServiceUUIDs": Variant("as", adv.service_uuids),
            "ManufacturerIds": Variant("aq", sorted(adv.manufacturer_data)),
            "LastSeen": Variant("x", int(adv.last_seen * 1000)),
        }

    async def characteristics(self, address: str) -> list[tuple[str, str, list[str]]]:
        peer = self.peers.get(address)
        if peer is None or not peer.connected:
            raise c.NoResult(f"BLE device {address} is not connected")
        assert peer.client is not None
        return [
            (service.uuid, char.uuid, list(char.properties))
            for service in peer.client.services
            for char in service.characteristics
        ]

    async def notification_read(self, address: str, profile: dict[str, str]) -> bytes:
        key = profile_uuids(profile)
        peer = self.peers.get(address)
        if peer is not None and key in peer.last_values:
            return peer.last_values[key]
        return await self.read(address, profile)
