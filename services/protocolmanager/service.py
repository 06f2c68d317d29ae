"""The ProtocolManager service.

Protocols register themselves with Add when they start; the manager also finds
every `org.eclipse.agail.protocol.*` name already on the bus when it starts, and
drops a protocol as soon as its name vanishes, so a crashed adapter leaves no
ghost. Discovery is fanned out to all protocols at once, each under a timeout,
so one stuck radio cannot block the others.
"""

import asyncio
import contextlib
import logging

from dbus_fast import DBusError, Message, Variant
from dbus_fast._private.marshaller import Marshaller
from dbus_fast.service import ServiceInterface, dbus_method, signal
from dbus_fast.validators import is_bus_name_valid

from services import contract as c
from services.access import current_caller
from services.bus import DBUS_NAME, DBUS_PATH, call, caller, list_names, listen, watch_name_owners
from services.catalog import options_of
from services.contract import Role
from services.protocolmanager.discovered import DiscoveredDevices
from services.service import BusService, ServiceConfig, spawn

log = logging.getLogger(__name__)


class ProtocolManagerService(BusService):
    bus_names = (c.PROTOCOL_MANAGER_NAME,)

    def __init__(
        self,
        config: ServiceConfig,
        device_ttl_s: float = 60.0,
        fanout_timeout_s: float = 3.0,
        poll_interval_s: float = 5.0,
    ) -> None:
        super().__init__(config)
        self.protocols: dict[str, c.ProtocolOverview] = {}
        self.fanout_failed: set[str] = set()
        self.discovering = False
        self.discovered = DiscoveredDevices(ttl_s=device_ttl_s)
        self.fanout_timeout_s = fanout_timeout_s
        self.poll_interval_s = poll_interval_s
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.exports.export(c.PROTOCOL_MANAGER_PATH, ProtocolManagerInterface(self))
        await watch_name_owners(
            self.bus, self._name_owner_changed, arg0namespace=c.PROTOCOL_NAME_PREFIX.rstrip(".")
        )
        await listen(
            self.bus, c.FOUND_NEW_DEVICE_SIGNAL, self._found_new_device, c.PROTOCOL_NAME_PREFIX
        )

    async def ready(self) -> None:
        for name in await list_names(self.bus):
            if name.startswith(c.PROTOCOL_NAME_PREFIX):
                with contextlib.suppress(DBusError):
                    await self.add(name)
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()

    # -- protocols --

    async def _call(
        self,
        protocol: str,
        member: str,
        signature: str = "",
        body: list[object] | None = None,
        timeout: float | None = None,
    ) -> list:
        return await call(
            self.bus,
            protocol,
            c.protocol_path(c.protocol_short_name(protocol)),
            c.PROTOCOL_IFACE,
            member,
            signature,
            body or [],
            timeout=timeout or self.fanout_timeout_s,
        )

    async def add(self, bus_name: str) -> None:
        if not bus_name.startswith(c.PROTOCOL_NAME_PREFIX) or not is_bus_name_valid(bus_name):
            raise c.InvalidArgs(
                f"a protocol's bus name is {c.PROTOCOL_NAME_PREFIX}<Name>, not {bus_name!r}"
            )
        try:
            (name,) = await self._call(bus_name, "Name")
            (status,) = await self._call(bus_name, "Status")
        except DBusError as exc:
            raise c.NoResult(f"protocol {bus_name} does not answer: {exc.text}") from None
        known = bus_name in self.protocols
        self.protocols[bus_name] = c.ProtocolOverview(
            c.protocol_short_name(bus_name), name, bus_name, c.overview_status(status)
        )
        if not known:
            log.info("protocol %s (%s) registered", bus_name, name)
            if self.discovering:
                spawn(self._fanout("StartDiscovery", [bus_name]))

    async def owner(self, bus_name: str) -> str:
        """The unique name owning `bus_name` now ("" if none)."""
        try:
            (owner,) = await call(
                self.bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [bus_name]
            )
        except DBusError:
            return ""
        return str(owner)

    def remove(self, bus_name: str) -> None:
        if self.protocols.pop(bus_name, None) is None:
            raise c.NoResult(f"protocol {bus_name} is not registered")
        self.fanout_failed.discard(bus_name)
        self.discovered.drop_protocol(bus_name)
        log.info("protocol %s removed", bus_name)

    def _name_owner_changed(self, name: str, _old: str, new: str) -> None:
        if not new and name in self.protocols:
            log.warning("protocol %s left the bus; dropped", name)
            self.remove(name)
        elif new and name.startswith(c.PROTOCOL_NAME_PREFIX) and name not in self.protocols:
            # A restarted adapter normally calls Add itself; this covers one that does not.
            spawn(self._add_quietly(name))

    async def _add_quietly(self, name: str) -> None:
        await asyncio.sleep(0.2)  # give it time to export before we call it
        with contextlib.suppress(DBusError):
            await self.add(name)

    # -- discovery --

    async def _fanout(self, member: str, protocols: list[str] | None = None) -> None:
        targets = list(self.protocols) if protocols is None else protocols
        results = await asyncio.gather(
            *(self._call(p, member) for p in targets), return_exceptions=True
        )
        for protocol, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "%s on %s failed: %s", member, protocol, getattr(result, "text", result)
                )
                self.fanout_failed.add(protocol)
            else:
                self.fanout_failed.discard(protocol)

    async def start_discovery(self) -> None:
        self.discovering = True
        await self._fanout("StartDiscovery")

    async def stop_discovery(self) -> None:
        self.discovering = False
        await self._fanout("StopDiscovery")

    async def discovery_status(self) -> list[c.DiscoveryStatus]:
        protocols = list(self.protocols)
        states = await asyncio.gather(
            *(self._call(p, "DiscoveryStatus") for p in protocols), return_exceptions=True
        )
        result = []
        for protocol, state in zip(protocols, states, strict=True):
            if isinstance(state, BaseException) or (
                protocol in self.fanout_failed and state[0] != c.DiscoveryState.RUNNING
            ):
                status = c.DiscoveryState.FAILURE
            else:
                status = state[0]
            result.append(c.DiscoveryStatus(protocol, status))
        return result

    def _found_new_device(self, msg: Message) -> None:
        try:
            overview = c.DeviceOverview.from_wire(msg.body[0] if msg.body else None)
        except DBusError:
            return  # not a (ssss): not a sighting
        # A protocol speaks for itself only: BLE cannot announce ZigBee devices.
        if overview.protocol in self.protocols and self.bus.owners.owns(
            msg.sender or "", overview.protocol
        ):
            self.discovered.seen(overview)

    async def _poll(self) -> None:
        """Refresh what each protocol still sees, so entries expire once it stops seeing them."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.refresh()

    async def refresh(self) -> None:
        protocols = list(self.protocols)
        answers = await asyncio.gather(
            *(self._call(p, "Devices") for p in protocols), return_exceptions=True
        )
        for protocol, answer in zip(protocols, answers, strict=True):
            if isinstance(answer, BaseException):
                continue
            for wire in answer[0]:
                try:
                    overview = c.DeviceOverview.from_wire(wire)
                except DBusError:
                    log.warning("malformed device from %s skipped: %r", protocol, wire)
                    continue
                if overview.protocol == protocol:
                    self.discovered.seen(overview)
        for gone in self.discovered.expire():
            log.info(
                "%s %s not seen for %g s; dropped", gone.protocol, gone.id, self.discovered.ttl_s
            )

    async def devices_info(self) -> dict[str, dict[str, Variant]]:
        """Every protocol's DevicesInfo at once (concurrently, each within the fan-out
        timeout), by device id; a protocol that cannot say is left out."""
        protocols = list(self.protocols)
        answers = await asyncio.gather(
            *(self._call(p, "DevicesInfo") for p in protocols), return_exceptions=True
        )
        merged: dict[str, dict[str, Variant]] = {}
        room = c.BUS_MESSAGE_MAX // 2  # each protocol's answer fits; all of them together too
        for protocol, answer in zip(protocols, answers, strict=True):
            if isinstance(answer, BaseException):
                continue
            for address, props in answer[0].items():
                room -= len(address) + len(Marshaller("a{sv}", [props]).marshall()) + 16
                if room < 0 or len(merged) >= c.DISCOVERED_MAX:
                    log.warning("DevicesInfo: more than fits one answer; the rest left out")
                    return merged
                merged[c.device_id(protocol, address)] = props
        return merged


class ProtocolManagerInterface(ServiceInterface):
    def __init__(self, manager: ProtocolManagerService) -> None:
        super().__init__(c.PROTOCOL_MANAGER_IFACE)
        self.manager = manager

    @dbus_method()
    def Devices(self) -> c.OverviewListWire:
        return [o.to_wire() for o in self.manager.discovered.devices()]

    @dbus_method()
    async def DevicesInfo(self) -> c.InfoByAddress:
        """Addition: what every protocol knows of its devices, by device id."""
        return await self.manager.devices_info()

    @dbus_method()
    def Protocols(self) -> c.ProtocolListWire:
        return [p.to_wire() for p in self.manager.protocols.values()]

    @dbus_method()
    async def DiscoveryStatus(self) -> c.DiscoveryListWire:
        return [s.to_wire() for s in await self.manager.discovery_status()]

    @dbus_method()
    async def StartDiscovery(self) -> None:
        await self.manager.start_discovery()

    @dbus_method()
    async def StopDiscovery(self) -> None:
        await self.manager.stop_discovery()

    @dbus_method()
    async def Add(self, protocol: c.Str) -> None:
        who = current_caller()
        if who is not None and who.role < Role.ADMIN:  # a protocol's own identity
            owner = await self.manager.owner(protocol)
            if owner != caller():
                raise c.AccessDenied(
                    f"{who.service or who.user} may add only its own protocol, not {protocol!r}"
                )
        await self.manager.add(protocol)

    @dbus_method()
    def Remove(self, protocol: c.Str) -> None:
        self.manager.remove(protocol)

    @signal()
    def FoundNewDeviceSignal(self) -> c.OverviewWire:
        """Declared for introspection; protocols send it from AGILE's path (contract)."""
        raise NotImplementedError


def create(config: ServiceConfig) -> ProtocolManagerService:
    opts = options_of("protocolmanager", config.options)
    return ProtocolManagerService(
        config,
        device_ttl_s=opts["device-ttl"],
        fanout_timeout_s=opts["fanout-timeout"],
        poll_interval_s=opts["poll-interval"],
    )
