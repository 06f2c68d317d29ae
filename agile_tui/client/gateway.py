"""A typed client of the gateway bus: what the TUI asks of the services, nothing else.
Whatever fails is a BusError: a D-Bus error by its name, or the connection gone."""

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NamedTuple

from dbus_fast import DBusError, Message, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import AuthError

from agile_tui.client.errors import BusError
from services import contract as c
from services.bus import call, connect, listen
from services.updater.client import UpdaterClient


class UpdaterEvent(NamedTuple):
    """A signal of the update service: its member and body (the operation's id first)."""

    member: str
    body: list[Any]


ZIGBEE = c.protocol_bus_name("ZB")
NO_SERVICE = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
)
# Settings of a stream's recording policy, by their D-Bus type.
POLICY_TYPES = {"record": "b", "interval_ms": "x", "retention_ms": "x", "encrypt": "b"}


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except DBusError as exc:
        raise BusError(exc.text, exc.type) from None
    except (OSError, EOFError, TimeoutError, AuthError) as exc:  # the connection's end
        raise BusError(str(exc) or type(exc).__name__) from None


class _Updater(UpdaterClient):
    """The update service's calls, their failures BusErrors."""

    async def _call(self, member: str, signature: str = "", *body: Any) -> list[Any]:
        with _translated():
            return await super()._call(member, signature, *body)


class GatewayClient:
    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.bus: MessageBus | None = None
        self.calls = 0  # bus calls made, for what a refresh costs

    @property
    def connected(self) -> bool:
        return self.bus is not None and self.bus.connected

    async def connect(self) -> None:
        with _translated():
            self.bus = await connect(self.address)

    async def until_closed(self) -> None:
        """Until the connection ends, however it ends."""
        if self.bus is not None:
            with contextlib.suppress(Exception):  # it says how it ended: it ended
                await self.bus.wait_for_disconnect()

    def _bus(self) -> MessageBus:
        if self.bus is None:
            raise BusError("not connected to the gateway bus")
        return self.bus

    def close(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None

    async def _call(
        self, dest: str, path: str, iface: str, member: str, signature: str = "", *body: Any
    ) -> list[Any]:
        bus = self._bus()
        self.calls += 1
        with _translated():
            return await call(
                bus, dest, path, iface, member, signature, body, timeout=self.timeout_s
            )

    async def _pm(self, member: str, signature: str = "", *body: Any) -> list[Any]:
        return await self._call(
            c.PROTOCOL_MANAGER_NAME,
            c.PROTOCOL_MANAGER_PATH,
            c.PROTOCOL_MANAGER_IFACE,
            member,
            signature,
            *body,
        )

    async def _dm(self, member: str, signature: str = "", *body: Any) -> list[Any]:
        return await self._call(
            c.DEVICE_MANAGER_NAME,
            c.DEVICE_MANAGER_PATH,
            c.DEVICE_MANAGER_IFACE,
            member,
            signature,
            *body,
        )

    async def _device(self, dev_id: str, member: str, signature: str = "", *body: Any) -> list[Any]:
        return await self._call(
            c.DEVICE_NAME, c.device_path(dev_id), c.DEVICE_IFACE, member, signature, *body
        )

    # -- protocols and discovery --

    async def discovered(self) -> list[c.DeviceOverview]:
        (wire,) = await self._pm("Devices")
        return [c.DeviceOverview.from_wire(d) for d in wire]

    async def devices_info(self, protocol: str) -> dict[str, dict[str, Any]]:
        """Protocol.DevicesInfo: address -> what the radio knows (RSSI, last seen, ...)."""
        (info,) = await self._call(
            protocol,
            c.protocol_path(c.protocol_short_name(protocol)),
            c.PROTOCOL_IFACE,
            "DevicesInfo",
        )
        return {address: {k: v.value for k, v in props.items()} for address, props in info.items()}

    async def all_devices_info(self) -> dict[str, dict[str, Any]]:
        """ProtocolManager.DevicesInfo: device id -> what its radio knows, in one call."""
        (info,) = await self._pm("DevicesInfo")
        return {dev_id: {k: v.value for k, v in props.items()} for dev_id, props in info.items()}

    async def devices_status(self) -> dict[str, str]:
        """DeviceManager.DevicesStatus: every registered device's status, in one call."""
        (statuses,) = await self._dm("DevicesStatus")
        return {dev_id: status[0] for dev_id, status in statuses.items()}

    async def discovery_status(self) -> list[c.DiscoveryStatus]:
        (wire,) = await self._pm("DiscoveryStatus")
        return [c.DiscoveryStatus.from_wire(s) for s in wire]

    async def start_discovery(self) -> None:
        await self._pm("StartDiscovery")

    async def stop_discovery(self) -> None:
        await self._pm("StopDiscovery")

    # -- registered devices --

    async def registered(self) -> list[c.DeviceDefinition]:
        (wire,) = await self._dm("Devices")
        return [c.DeviceDefinition.from_wire(d) for d in wire]

    async def matching_types(self, overview: c.DeviceOverview) -> list[str]:
        (names,) = await self._dm("MatchingDeviceTypes", "(ssss)", overview.to_wire())
        return names

    async def register(self, overview: c.DeviceOverview, type_name: str) -> c.DeviceDefinition:
        (wire,) = await self._dm("Register", "(ssss)s", overview.to_wire(), type_name)
        return c.DeviceDefinition.from_wire(wire)

    async def delete(self, dev_id: str) -> None:
        await self._dm("Delete", "s", dev_id)

    async def device_status(self, dev_id: str) -> str:
        ((status,),) = await self._device(dev_id, "Status")
        return status

    async def connect_device(self, dev_id: str) -> None:
        await self._device(dev_id, "Connect")

    async def disconnect_device(self, dev_id: str) -> None:
        await self._device(dev_id, "Disconnect")

    async def read(self, dev_id: str, component: str) -> c.RecordObject:
        (wire,) = await self._device(dev_id, "Read", "s", component)
        return c.RecordObject.from_wire(wire)

    async def write(self, dev_id: str, component: str, payload: str) -> None:
        await self._device(dev_id, "Write", "ss", component, payload)

    async def firmware(self, dev_id: str) -> c.FirmwareStatus:
        (info,) = await self._device(dev_id, "Firmware")
        return c.FirmwareStatus.from_info(info)

    async def update_firmware(self, dev_id: str) -> None:
        await self._device(dev_id, "Update")

    async def commands(self, dev_id: str) -> list[str]:
        (names,) = await self._device(dev_id, "Commands")
        return names

    async def execute(self, dev_id: str, command: str) -> None:
        await self._device(dev_id, "Execute", "s", command)

    async def subscribe(self, dev_id: str, component: str) -> None:
        await self._device(dev_id, "Subscribe", "s", component)

    async def unsubscribe(self, dev_id: str, component: str) -> None:
        await self._device(dev_id, "Unsubscribe", "s", component)

    # -- ZigBee permit-join and network backups (additions of the ZB protocol) --

    async def _zigbee(self, member: str, signature: str = "", *body: Any) -> list[Any]:
        return await self._call(
            ZIGBEE, c.protocol_path("ZB"), c.PROTOCOL_IFACE, member, signature, *body
        )

    async def permit_join(self, seconds: int) -> None:
        await self._zigbee("PermitJoin", "u", seconds)

    async def permit_join_remaining(self) -> int:
        (remaining,) = await self._zigbee("PermitJoinRemaining")
        return int(remaining)

    async def zigbee_backups(self) -> list[c.ZigBeeBackup]:
        (wire,) = await self._zigbee("Backups")
        return [c.ZigBeeBackup.from_wire(b) for b in wire]

    async def take_zigbee_backup(self) -> c.ZigBeeBackup:
        (wire,) = await self._zigbee("TakeBackup")
        return c.ZigBeeBackup.from_wire(wire)

    # -- who the gateway takes this user for --

    async def who_am_i(self) -> c.CallerInfo | None:
        """The role the gateway gives this connection's user; None from a gateway that
        does not say (one older than roles: its own checks answer then)."""
        try:
            (wire,) = await self._call(
                c.DEVICE_MANAGER_NAME, c.ACCESS_PATH, c.ACCESS_IFACE, "WhoAmI"
            )
        except BusError as exc:
            if exc.lost:
                raise
            return None
        return c.CallerInfo.from_wire(wire)

    async def audit(self, since: float = 0.0) -> tuple[list[c.AuditEntry], list[str]]:
        """What operators and admins did, from every service (admins only)."""
        from services.audit import gather

        bus = self._bus()
        with _translated():
            return await gather(bus, since)

    # -- the native runtime's supervisor --

    async def runtime(self, action: str, service: str) -> None:
        """Start, Stop or Restart one service of a native gateway."""
        await self._call(c.RUNTIME_NAME, c.RUNTIME_PATH, c.RUNTIME_IFACE, action, "s", service)

    # -- storage --

    async def _storage(self, member: str, signature: str = "", *body: Any) -> list[Any]:
        return await self._call(
            c.STORAGE_NAME, c.STORAGE_PATH, c.STORAGE_IFACE, member, signature, *body
        )

    async def history(
        self, dev_id: str, component: str, since_ms: int, until_ms: int, max_points: int
    ) -> list[c.RecordObject]:
        (wire,) = await self._storage(
            "Query", "ssxxu", dev_id, component, since_ms, until_ms, max_points
        )
        return [c.RecordObject.from_wire(r) for r in wire]

    async def storage_stats(self) -> dict[str, Any] | None:
        """Storage's figures (written, paused, error...); None without a Storage."""
        return await _figures(self._storage("Stats"))

    async def policies(self) -> dict[tuple[str, str], dict[str, Any]]:
        (wire,) = await self._storage("Policies")
        return {(dev, comp): {k: v.value for k, v in p.items()} for dev, comp, p in wire}

    async def set_policy(
        self, dev_id: str, component: str, changes: dict[str, bool | int]
    ) -> dict[str, Any]:
        """`changes`: some of POLICY_TYPES' settings."""
        wire = {key: Variant(POLICY_TYPES[key], value) for key, value in changes.items()}
        (policy,) = await self._storage("SetPolicy", "ssa{sv}", dev_id, component, wire)
        return {k: v.value for k, v in policy.items()}

    # -- the MQTT bridge --

    async def _bridge(self, member: str, signature: str = "", *body: Any) -> list[Any]:
        return await self._call(
            c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, member, signature, *body
        )

    async def bridge_status(self) -> dict[str, Any] | None:
        """The bridge's state (connected, queued, dropped, error...); None without one."""
        return await _figures(self._bridge("Status"))

    async def bridged(self) -> dict[str, bool]:
        (wire,) = await self._bridge("Bridged")
        return dict(wire)

    async def set_bridged(self, dev_id: str, on: bool) -> None:
        await self._bridge("SetBridged", "sb", dev_id, on)

    # -- signals --

    async def _listen(
        self, triple: tuple[str, str, str], callback: Callable[[Message], None], sender: str
    ) -> None:
        """Signals from the current owner of `sender` only: a forged record, banner or
        device from another client of the bus is not shown."""
        bus = self._bus()
        with _translated():
            await listen(bus, triple, callback, sender)

    async def on_new_device(self, callback: Callable[[c.DeviceOverview], None]) -> None:
        await self._listen(
            c.FOUND_NEW_DEVICE_SIGNAL,
            lambda m: callback(c.DeviceOverview.from_wire(m.body[0])),
            c.PROTOCOL_NAME_PREFIX,
        )

    async def on_record(self, callback: Callable[[c.RecordObject], None]) -> None:
        await self._listen(
            c.NEW_SUBSCRIBE_VALUE_SIGNAL,
            lambda m: callback(c.RecordObject.from_wire(m.body[0])),
            c.DEVICE_NAME,
        )

    async def on_storage_status(self, callback: Callable[[bool, str], None]) -> None:
        """Storage's writes failing (True, why) or succeeding again (False, "")."""
        await self._listen(
            c.STORAGE_WRITE_STATUS_SIGNAL, lambda m: callback(*m.body), c.STORAGE_NAME
        )

    # -- the update service --

    @property
    def updater(self) -> UpdaterClient:
        return _Updater(self._bus())

    async def on_updater(self, callback: Callable[[UpdaterEvent], None]) -> None:
        """The update service's Started, Log, Progress and Ended signals."""
        with _translated():
            await self.updater.watch(lambda member, body: callback(UpdaterEvent(member, body)))


async def _figures(asking: Awaitable[list[Any]]) -> dict[str, Any] | None:
    """An optional service's a{sv} answer as plain values; None when it is not there."""
    try:
        (wire,) = await asking
    except BusError as exc:
        if exc.name in NO_SERVICE:
            return None
        raise
    return {k: v.value for k, v in wire.items()}
