"""The DeviceManager service: registrations, device types and the Device objects."""

import asyncio
import dataclasses
import json
import logging
from typing import Any

from dbus_fast import DBusError, Message
from dbus_fast.service import ServiceInterface, dbus_method

from services import contract as c
from services.access import require
from services.bus import (
    DBUS_NAME,
    DBUS_PATH,
    call,
    caller,
    list_names,
    listen,
    watch_name_owners,
)
from services.catalog import options_of
from services.contract_api import BATCH_ROLES
from services.devicemanager.device import Device, now_ms
from services.devicemanager.replay import ReplayBuffer
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
        opts = options_of("devicemanager", config.options)
        self.replay = ReplayBuffer(
            config.state_dir / "devicemanager" / "replay.db",
            opts["replay-records"],
            int(opts["replay-age"] * 1000),
            now_ms,
        )
        self.devices: dict[str, Device] = {}
        self.protocol_owners: dict[str, str] = {}  # unique name -> protocol bus name

    async def start(self) -> None:
        self.exports.export(c.DEVICE_MANAGER_PATH, DeviceManagerInterface(self))
        for reg in self.store.all():
            try:
                check_definition(reg.definition)
                c.check_count(len(self.devices), c.DEVICES_MAX, "registered devices")
                self._add_device(reg)
            except DBusError as exc:
                log.error(
                    "registration of %s not restored: %s", c.cut(reg.definition.device_id), exc.text
                )
        log.info("%d registered devices restored", len(self.devices))
        await watch_name_owners(self.bus, self._name_owner_changed)
        await listen(self.bus, c.NEW_RECORD_SIGNAL, self._new_record, c.PROTOCOL_NAME_PREFIX)
        for name in await list_names(self.bus):
            if name.startswith(c.PROTOCOL_NAME_PREFIX):
                try:
                    (owner,) = await call(
                        self.bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [name]
                    )
                    self.protocol_owners[owner] = name
                except DBusError:
                    pass  # it left in between; NameOwnerChanged tells us if it returns

    async def ready(self) -> None:
        # Durable subscriptions from before a restart: the streams are produced again
        # at once, whether their consumers are back yet or not.
        for device_id, component, consumer in self.replay.follows():
            device = self.devices.get(device_id)
            try:
                if device is None or not isinstance(consumer, str):
                    raise c.InvalidArgs("no such device")
                device.type.component(component)
                device.restore_follow(component, consumer)
            except DBusError as exc:
                log.error("a stored follow of %s/%s skipped: %s", device_id, component, exc.text)
        for device in self.devices.values():
            if device.subscribers:
                spawn(device.resubscribe())

    async def stop(self) -> None:
        self.store.close()
        self.replay.close()

    # -- registrations --

    def _add_device(self, reg: Registration) -> Device:
        device = Device(self.bus, reg, self.registry.get(reg.device_type), replay=self.replay)
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
        check_overview(overview)
        dev_id = overview.device_id
        if dev_id in self.devices:
            return self.devices[dev_id].definition
        c.check_count(len(self.devices), c.DEVICES_MAX, "registered devices")
        if not type_name:
            matching = await self.matching(overview)
            if not matching:
                raise c.NoResult(f"no device type matches {overview.name!r} on {overview.protocol}")
            type_name = matching[0]
        definition = await self._definition(overview, type_name)
        reg = Registration(definition, type_name)
        self.store.put(reg)
        self._add_device(reg)
        log.info("registered %s (%s) as %s", dev_id, definition.name, type_name)
        return definition

    async def _definition(self, overview: c.DeviceOverview, type_name: str) -> c.DeviceDefinition:
        """The definition of a device of that type: its components from the type, or
        learnt from the device for a generic type."""
        device_type = self.registry.get(type_name)
        short = c.protocol_short_name(overview.protocol)
        if short not in device_type.protocols:
            raise c.InvalidArgs(
                f"device type {type_name} is for {', '.join(device_type.protocols)}, not {short}"
            )
        streams = device_type.streams()
        if device_type.discovers_components:
            streams = await self._discover_streams(overview, device_type)
            if len(streams) > c.STREAMS_MAX:
                log.warning(
                    "%s has %d components; the first %d are kept",
                    overview.device_id,
                    len(streams),
                    c.STREAMS_MAX,
                )
                streams = streams[: c.STREAMS_MAX]
        dev_id = overview.device_id
        return c.DeviceDefinition(
            dev_id,
            overview.id,
            overview.name or device_type.description,
            device_type.description,
            overview.protocol,
            c.device_path(dev_id),
            streams,
        )

    async def update(self, dev_id: str, wanted: c.DeviceDefinition) -> None:
        """AGILE's Update: rename a registered device (`name`), or retype it (`description`
        naming another device type); its identity (id, address, protocol, path) stays."""
        device = self.device(dev_id)
        current = device.definition
        for field, value in (
            ("deviceId", wanted.device_id),
            ("address", wanted.address),
            ("protocol", wanted.protocol),
            ("path", wanted.path),
        ):
            if value and value != getattr(current, _FIELDS[field]):
                raise c.InvalidArgs(f"Update cannot change {field} of {dev_id} (is {value!r})")
        name = c.check_text(wanted.name.strip(), "a name", c.NAME_MAX, True) or current.name
        type_name = device.type_name
        if wanted.description and wanted.description != current.description:
            if wanted.description not in self.registry.names():
                raise c.InvalidArgs(
                    f"description {wanted.description!r} is neither {dev_id}'s nor a device "
                    f"type to retype it to ({', '.join(self.registry.names())})"
                )
            type_name = wanted.description
        if type_name == device.type_name:
            definition = dataclasses.replace(current, name=name)
            device.definition = definition
            self.store.put(Registration(definition, type_name))
            log.info("renamed %s to %s", dev_id, name)
            return
        if any(+holders for holders in device.subscribers.values()):
            held = ", ".join(k for k, v in device.subscribers.items() if +v)
            raise c.NoResult(f"{dev_id} has subscribers ({held}): unsubscribe before retyping")
        overview = c.DeviceOverview(current.address, current.protocol, name)
        definition = await self._definition(overview, type_name)
        await device.stop()
        self.exports.unexport(current.path)
        reg = Registration(definition, type_name)
        self.store.put(reg)
        self._add_device(reg)
        log.info("retyped %s (%s) as %s", dev_id, name, type_name)

    def find(self) -> str:
        """AGILE's Find: every registered device as JSON (AGILE documented it as returning
        all registered devices, and left the criteria undefined)."""
        return json.dumps(
            [
                {
                    "deviceId": d.id,
                    "address": d.address,
                    "name": d.definition.name,
                    "protocol": d.protocol,
                    "path": d.definition.path,
                    "type": d.type_name,
                    "streams": [{"id": s.id, "unit": s.unit} for s in d.definition.streams],
                }
                for d in self.devices.values()
            ]
        )

    async def batch(self, operation: str, arguments: str) -> None:
        """AGILE's Batch: one operation over a set of devices. `arguments` is a JSON object:
        "devices" (ids; default every registered device) and what the operation needs."""
        try:
            args = json.loads(arguments or "{}")
        except ValueError as exc:
            raise c.InvalidArgs(f"Batch arguments are not JSON: {exc}") from None
        if not isinstance(args, dict):
            raise c.InvalidArgs("Batch arguments are a JSON object")
        needs = BATCH_OPERATIONS.get(operation)
        if needs is None:
            raise c.InvalidArgs(
                f"no batch operation {operation!r} (operations: {', '.join(BATCH_OPERATIONS)})"
            )
        if operation in BATCH_ROLES:
            require(BATCH_ROLES[operation], f"Batch {operation}")
        missing = [k for k in needs if not isinstance(args.get(k), str)]
        if missing:
            raise c.InvalidArgs(f"batch {operation} needs {', '.join(missing)} (strings)")
        ids = args.get("devices", list(self.devices))
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise c.InvalidArgs('"devices" is a list of device ids')
        devices = [self.device(i) for i in ids]  # every id known, or nothing is done
        client = caller()
        failed = []
        for device in devices:
            try:
                if operation == "delete":
                    await self.delete(device.id)
                else:
                    await _apply(device, operation, args, client)
            except DBusError as exc:
                failed.append(f"{device.id}: {exc.text}")
        if failed:
            raise c.NoResult(
                f"batch {operation}: {len(failed)} of {len(devices)} failed: " + "; ".join(failed)
            )

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
        del self.devices[dev_id]  # at once: a Delete meanwhile finds no device (fuzzing did)
        try:
            await device.stop()
        finally:
            self.exports.unexport(device.definition.path)
            self.store.delete(dev_id)
            self.replay.forget(dev_id)
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


def check_overview(overview: c.DeviceOverview) -> None:
    """A device to register, as a client gives it: every field within its limit."""
    if not overview.protocol.startswith(c.PROTOCOL_NAME_PREFIX) or not c.valid_device_id(
        c.protocol_short_name(overview.protocol)
    ):
        raise c.InvalidArgs(f"not a protocol bus name: {c.cut(overview.protocol)!r}")
    c.check_text(overview.id, "an address", c.ADDRESS_MAX)
    if "/" in overview.id or not c.valid_device_id(overview.device_id):
        raise c.InvalidArgs(f"address {c.cut(overview.id)!r} does not make a valid device id")
    c.check_text(overview.name, "a name", c.NAME_MAX, allow_empty=True)


def check_definition(definition: c.DeviceDefinition) -> None:
    """A registration as stored: what an older version or a hand edit left must be
    within today's limits, or it is not restored."""
    check_overview(c.DeviceOverview(definition.address, definition.protocol, definition.name))
    if definition.device_id != c.device_id(definition.protocol, definition.address):
        raise c.InvalidArgs(f"id {c.cut(definition.device_id)!r} is not its address's")
    if definition.path != c.device_path(definition.device_id):
        raise c.InvalidArgs(f"path {c.cut(definition.path)!r} is not its id's")
    if len(definition.streams) > c.STREAMS_MAX:
        raise c.InvalidArgs(f"{len(definition.streams)} components (at most {c.STREAMS_MAX})")
    for stream in definition.streams:
        c.check_component_id(stream.id)
        c.check_text(stream.unit, "a unit", c.UNIT_MAX, allow_empty=True)
    c.check_text(definition.description, "a description", c.NAME_MAX, allow_empty=True)


_FIELDS = {"deviceId": "device_id", "address": "address", "protocol": "protocol", "path": "path"}

# Batch operations and the arguments each needs besides "devices".
BATCH_OPERATIONS: dict[str, tuple[str, ...]] = {
    "connect": (),
    "disconnect": (),
    "subscribe": ("component",),
    "unsubscribe": ("component",),
    "write": ("component", "value"),
    "execute": ("command",),
    "delete": (),
}


async def _apply(device: Device, operation: str, args: dict[str, Any], client: str) -> None:
    if operation == "connect":
        await device.connect()
    elif operation == "disconnect":
        await device.disconnect()
    elif operation == "subscribe":
        await device.subscribe(args["component"], client)
    elif operation == "unsubscribe":
        await device.unsubscribe(args["component"], client)
    elif operation == "write":
        await device.write(args["component"], args["value"])
    elif operation == "execute":
        await device.execute(args["command"])


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

    @dbus_method()
    async def DevicesStatus(self) -> c.StatusByDevice:
        """Addition: every registered device's status at once (asked concurrently)."""
        devices = list(self.manager.devices.values())
        statuses = await asyncio.gather(*(d.status() for d in devices))
        return {d.id: [s] for d, s in zip(devices, statuses, strict=True)}

    @dbus_method()
    def Find(self) -> c.Str:
        return self.manager.find()

    @dbus_method()
    async def Update(self, dev_id: c.Str, definition: c.DefinitionWire) -> None:
        await self.manager.update(dev_id, c.DeviceDefinition.from_wire(definition))

    @dbus_method()
    async def Batch(self, operation: c.Str, arguments: c.Str) -> None:
        await self.manager.batch(operation, arguments)


def create(config: ServiceConfig) -> DeviceManagerService:
    return DeviceManagerService(config)
