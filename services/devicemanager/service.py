"""The DeviceManager service: registrations, device types and the Device objects."""

import logging
from typing import Any

from dbus_fast import DBusError, Message
from dbus_fast.service import ServiceInterface, dbus_method

from services import contract as c
from services.bus import (
    DBUS_NAME,
    DBUS_PATH,
    add_match,
    call,
    list_names,
    match_rule,
    on_signal,
    watch_name_owners,
)
from services.devicemanager.device import Device
from services.devicemanager.store import Registration, RegistrationStore
from services.devicetypes import DeviceType, DeviceTypeRegistry
from services.service import BusService, ServiceConfig, spawn

log = logging.getLogger(__name__)


class DeviceManagerService(BusService):
    bus_names = (c.DEVICE_MANAGER_NAME, c.DEVICE_NAME)

    def __init__(self, config: ServiceConfig, registry: DeviceTypeRegistry | None = None) -> None:
        super().__init__(config)
        self.registry = registry or DeviceTypeRegistry.from_entry_points()
        self.store = RegistrationStore(config.state_dir / "devicemanager" / "devices.json")
        self.devices: dict[str, Device] = {}
        self.protocol_owners: dict[str, str] = {}  # unique name -> protocol bus name

    async def start(self) -> None:
        self.exports.export(c.DEVICE_MANAGER_PATH, DeviceManagerInterface(self))
        for reg in self.store.all():
            try:
                self._add_device(reg)
            except DBusError as exc:
                log.error("registration of %s not restored: %s", reg.definition.device_id, exc.text)
        log.info("%d registered devices restored", len(self.devices))
        await watch_name_owners(self.bus, self._name_owner_changed)
        iface, path, member = c.NEW_RECORD_SIGNAL
        on_signal(self.bus, iface, member, self._new_record, path=path)
        await add_match(
            self.bus, match_rule(type="signal", interface=iface, member=member, path=path)
        )
        for name in await list_names(self.bus):
            if name.startswith(c.PROTOCOL_NAME_PREFIX):
                try:
                    (owner,) = await call(
                        self.bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [name]
                    )
                    self.protocol_owners[owner] = name
                except DBusError:
                    pass  # it left in between; NameOwnerChanged tells us if it returns

    async def stop(self) -> None:
        self.store.close()

    # -- registrations --

    def _add_device(self, reg: Registration) -> Device:
        device = Device(self.bus, reg, self.registry.get(reg.device_type))
        self.exports.export(reg.definition.path, device.interface)
        self.devices[device.id] = device
        return device

    async def device_info(self, overview: c.DeviceOverview) -> dict[str, Any]:
        """What the protocol knows of the device, for matching types; {} if it cannot say."""
        try:
            (info,) = await call(
                self.bus,
                overview.protocol,
                c.protocol_path(c.protocol_short_name(overview.protocol)),
                c.PROTOCOL_IFACE,
                "DeviceInfo",
                "s",
                [overview.id],
                timeout=3,
            )
        except DBusError:
            return {}
        return {k: v.value for k, v in info.items()}

    async def matching(self, overview: c.DeviceOverview) -> list[str]:
        if not overview.protocol.startswith(c.PROTOCOL_NAME_PREFIX):
            raise c.InvalidArgs(f"not a protocol bus name: {overview.protocol!r}")
        return self.registry.matching(overview, await self.device_info(overview))

    async def register(self, overview: c.DeviceOverview, type_name: str) -> c.DeviceDefinition:
        if not overview.id or not overview.protocol.startswith(c.PROTOCOL_NAME_PREFIX):
            raise c.InvalidArgs(f"not a discovered device: {overview.to_wire()!r}")
        dev_id = overview.device_id
        if not c.valid_device_id(dev_id):
            raise c.InvalidArgs(f"address {overview.id!r} does not make a valid device id")
        if dev_id in self.devices:
            return self.devices[dev_id].definition
        if not type_name:
            matching = await self.matching(overview)
            if not matching:
                raise c.NoResult(f"no device type matches {overview.name!r} on {overview.protocol}")
            type_name = matching[0]
        device_type = self.registry.get(type_name)
        short = c.protocol_short_name(overview.protocol)
        if short not in device_type.protocols:
            raise c.InvalidArgs(
                f"device type {type_name} is for {', '.join(device_type.protocols)}, not {short}"
            )
        streams = device_type.streams()
        if device_type.discovers_components:
            streams = await self._discover_streams(overview, device_type)
        definition = c.DeviceDefinition(
            dev_id,
            overview.id,
            overview.name or device_type.description,
            device_type.description,
            overview.protocol,
            c.device_path(dev_id),
            streams,
        )
        reg = Registration(definition, type_name)
        self.store.put(reg)
        self._add_device(reg)
        log.info("registered %s (%s) as %s", dev_id, definition.name, type_name)
        return definition

    async def _discover_streams(
        self, overview: c.DeviceOverview, device_type: DeviceType
    ) -> tuple[c.DeviceComponent, ...]:
        path = c.protocol_path(c.protocol_short_name(overview.protocol))
        try:
            await call(
                self.bus,
                overview.protocol,
                path,
                c.PROTOCOL_IFACE,
                "Connect",
                "s",
                [overview.id],
                timeout=15,
            )
            (chars,) = await call(
                self.bus,
                overview.protocol,
                path,
                c.PROTOCOL_IFACE,
                "Characteristics",
                "s",
                [overview.id],
                timeout=15,
            )
        except DBusError as exc:
            raise c.NoResult(f"cannot learn the components of {overview.id}: {exc.text}") from None
        return device_type.components_from([(s, ch, list(f)) for s, ch, f in chars])

    def device(self, dev_id: str) -> Device:
        try:
            return self.devices[dev_id]
        except KeyError:
            raise c.DeviceNotFound(f"no registered device {dev_id!r}") from None

    async def delete(self, dev_id: str) -> None:
        device = self.device(dev_id)
        await device.stop()
        self.exports.unexport(device.definition.path)
        del self.devices[dev_id]
        self.store.delete(dev_id)
        log.info("deleted %s", dev_id)

    # -- bus events --

    def _name_owner_changed(self, name: str, old: str, new: str) -> None:
        if name.startswith(":") and not new:
            for device in list(self.devices.values()):
                if any(name in holders for holders in device.subscribers.values()):
                    spawn(device.drop_client(name))
        elif name.startswith(c.PROTOCOL_NAME_PREFIX):
            self.protocol_owners.pop(old, None)
            if new:
                self.protocol_owners[new] = name
                for device in self.devices.values():
                    if device.protocol == name and device.subscribers:
                        spawn(device.resubscribe())

    def _new_record(self, msg: Message) -> None:
        protocol = self.protocol_owners.get(msg.sender or "")
        if protocol is None or msg.signature != "aysa{ss}":
            return
        value, address, profile = msg.body
        device = self.devices.get(c.device_id(protocol, address))
        if device is not None and device.protocol == protocol:
            device.on_value(profile, bytes(value))


class DeviceManagerInterface(ServiceInterface):
    def __init__(self, manager: DeviceManagerService) -> None:
        super().__init__(c.DEVICE_MANAGER_IFACE)
        self.manager = manager

    @dbus_method()
    def Devices(self) -> c.DefinitionListWire:
        return [d.definition.to_wire() for d in self.manager.devices.values()]

    @dbus_method()
    async def Register(self, overview: c.OverviewWire, device_type: c.Str) -> c.DefinitionWire:
        definition = await self.manager.register(c.DeviceOverview.from_wire(overview), device_type)
        return definition.to_wire()

    @dbus_method()
    async def MatchingDeviceTypes(self, overview: c.OverviewWire) -> c.StrList:
        return await self.manager.matching(c.DeviceOverview.from_wire(overview))

    @dbus_method()
    def Read(self, dev_id: c.Str) -> c.DefinitionWire:
        return self.manager.device(dev_id).definition.to_wire()

    @dbus_method()
    async def Delete(self, dev_id: c.Str) -> None:
        await self.manager.delete(dev_id)


def create(config: ServiceConfig) -> DeviceManagerService:
    return DeviceManagerService(config)
