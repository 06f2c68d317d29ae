"""A registered device: `org.eclipse.agail.Device` at /org/eclipse/agail/Device/<deviceId>.

The device talks to its protocol only on demand (a read, a write, the first
subscriber), so restoring hundreds of registrations at start-up costs no radio
traffic. Subscriptions are counted per client: a component stays subscribed at
the protocol while any client holds it, and a client that leaves the bus
releases what it held.
"""

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from dbus_fast import DBusError
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, dbus_method, signal

from services import contract as c
from services.bus import DBUS_NAME, DBUS_PATH, call, caller, emit_signal
from services.devicemanager.replay import ReplayBuffer, ReplayUnavailable
from services.devicemanager.store import Registration
from services.devicetypes import Component, DeviceType

log = logging.getLogger(__name__)

_UNREACHABLE = {
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Timeout",
}


FOLLOW = "follow:"  # a durable holder's prefix: unique names start with ':'


def now_ms() -> int:
    return int(time.time() * 1000)


async def _check_owner(bus: MessageBus, consumer: str) -> None:
    """A consumer is named by a bus name its caller owns: nobody follows for another."""
    if not consumer or consumer.startswith(":") or len(consumer) > c.CONSUMER_MAX:
        raise c.InvalidArgs(
            f"a consumer is a well-known bus name the caller owns, not {c.cut(consumer)!r}"
        )
    try:
        (owner,) = await call(bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [consumer])
    except DBusError:
        owner = ""
    if owner != caller():
        raise c.InvalidArgs(f"the caller does not own {c.cut(consumer)!r}")


class Device:
    def __init__(
        self,
        bus: MessageBus,
        reg: Registration,
        device_type: DeviceType,
        call_timeout_s: float = 10.0,
        clock_ms: Callable[[], int] = now_ms,
        replay: ReplayBuffer | None = None,
    ) -> None:
        self.bus = bus
        self.definition = reg.definition
        self.type_name = reg.device_type
        self.type = device_type
        self.call_timeout_s = call_timeout_s
        self.clock_ms = clock_ms
        self.last_seen_ms = 0
        self.last: dict[str, c.RecordObject] = {}
        self.latest: c.RecordObject | None = None  # of any component
        # component -> holder -> holds; a holder is a client's unique name (AGILE's
        # Subscribe, gone with its connection) or FOLLOW + a consumer's name (Follow).
        self.subscribers: dict[str, Counter[str]] = {}
        self.replay = replay
        # Subscribes, releases and resubscribes one at a time: two clients subscribing at
        # once would otherwise both find no holders and both ask the protocol.
        self._subscribing = asyncio.Lock()
        self.interface = DeviceInterface(self)

    @property
    def id(self) -> str:
        return self.definition.device_id

    @property
    def address(self) -> str:
        return self.definition.address

    @property
    def protocol(self) -> str:
        return self.definition.protocol

    async def _protocol(self, member: str, signature: str = "", *args: Any) -> list[Any]:
        body = [self.address, *args]
        try:
            return await call(
                self.bus,
                self.protocol,
                c.protocol_path(c.protocol_short_name(self.protocol)),
                c.PROTOCOL_IFACE,
                member,
                "s" + signature,
                body,
                timeout=self.call_timeout_s,
            )
        except DBusError as exc:
            if exc.type in _UNREACHABLE:
                raise c.ProtocolUnavailable(
                    f"{self.id}: protocol {self.protocol} is not reachable ({exc.text})"
                ) from None
            raise

    # -- status and connection --

    async def status(self) -> str:
        try:
            (status,) = (await self._protocol("DeviceStatus"))[0]
            return status
        except c.ProtocolUnavailable:
            return c.DeviceStatus.ERROR
        except DBusError:
            return c.DeviceStatus.DISCONNECTED

    async def connect(self) -> None:
        await self._protocol("Connect")
        self.last_seen_ms = self.clock_ms()
        for profile, value in self.type.setup:
            await self._protocol("Write", "a{ss}ay", profile, value)

    async def disconnect(self) -> None:
        await self._protocol("Disconnect")

    # -- firmware (where the protocol updates it: ZigBee's OTA) --

    async def _firmware_call(self, member: str) -> list[Any]:
        try:
            return await self._protocol(member)
        except DBusError as exc:
            if exc.type == "org.freedesktop.DBus.Error.UnknownMethod":
                raise c.NoResult(
                    f"{self.id}: {c.protocol_short_name(self.protocol)} devices have no "
                    "firmware updates here"
                ) from None
            raise

    async def firmware(self) -> dict[str, Any]:
        (info,) = await self._firmware_call("Firmware")
        return dict(info)

    async def update_firmware(self) -> None:
        await self._firmware_call("UpdateFirmware")

    async def firmware_version(self) -> str:
        """From what the radio says of the device (no image is looked up for it)."""
        (info,) = await self._protocol("DeviceInfo")
        version = info.get("FirmwareVersion")
        return f"0x{version.value:08x}" if version is not None and version.value else ""

    async def _ensure_connected(self) -> None:
        if await self.status() != c.DeviceStatus.CONNECTED:
            await self.connect()

    # -- values --

    def _record(self, comp: Component, raw: bytes) -> c.RecordObject:
        try:
            value = comp.decode(raw)
        except (ValueError, IndexError, TypeError) as exc:
            raise c.NoResult(
                f"{self.id}/{comp.id}: undecodable value {c.cut(raw.hex())}: {exc}"
            ) from None
        if len(value.encode(errors="replace")) > c.RECORD_VALUE_MAX:
            raise c.NoResult(
                f"{self.id}/{comp.id}: a value of {len(value.encode(errors='replace')):,} bytes "
                f"(at most {c.RECORD_VALUE_MAX:,}): {c.cut(value)}"
            )
        stamp = self.clock_ms()
        self.last_seen_ms = stamp
        record = c.RecordObject(self.id, comp.id, value, comp.unit, comp.format, stamp)
        self.last[comp.id] = self.latest = record
        return record

    async def read(self, component_id: str) -> c.RecordObject:
        comp = self.type.component(component_id)
        if not comp.readable:
            raise c.NoResult(f"{self.id}/{component_id} cannot be read")
        await self._ensure_connected()
        (raw,) = await self._protocol("Read", "a{ss}", comp.profile)
        return self._record(comp, bytes(raw))

    async def read_all(self) -> list[c.RecordObject]:
        components = [self.type.component(s.id) for s in self.definition.streams]
        return [await self.read(comp.id) for comp in components if comp.readable]

    async def write(self, component_id: str, payload: str) -> None:
        comp = self.type.component(component_id)
        if comp.encode is None:
            raise c.NoResult(f"{self.id}/{component_id} cannot be written")
        raw = comp.encode(payload)
        await self._ensure_connected()
        await self._protocol("Write", "a{ss}ay", comp.profile, raw)
        self.last_seen_ms = self.clock_ms()

    async def execute(self, command_id: str) -> None:
        for component_id, payload in self.type.command(command_id).writes:
            await self.write(component_id, payload)

    def data(self) -> c.RecordObject:
        """AGILE's Data: the most recent value of any component."""
        if self.latest is None:
            raise c.NoResult(f"{self.id} has no value yet")
        return self.latest

    def configuration(self) -> str:
        """AGILE's Configuration (key-value, as JSON): the device type it is driven by,
        its commands, which components can be written and subscribed to (additions), and
        which components are subscribed by how many clients."""
        components = [self.type.component(s.id) for s in self.definition.streams]
        return json.dumps(
            {
                "deviceType": self.type_name,
                "commands": [cmd.id for cmd in self.type.commands],
                "writable": [k.id for k in components if k.encode is not None],
                "subscribable": [k.id for k in components if k.subscribable],
                "subscribed": {k: sum(v.values()) for k, v in self.subscribers.items() if +v},
                "private": sorted(
                    k.id for k in components if (self.id, k.id) in self.replay_private()
                ),
            }
        )

    def replay_private(self) -> set[tuple[str, str]]:
        return self.replay.private if self.replay is not None else set()

    def set_private(self, component_id: str, private: bool) -> None:
        """A stream whose records are never written in clear (Storage encrypts it): kept
        for replay in memory only, and said in Configuration so that the bridge's spool
        carries them in memory too."""
        self.type.component(component_id)
        if self.replay is None:
            raise c.NoResult("this device manager keeps no replay buffer")
        self.replay.set_private((self.id, component_id), private)
        log.info("%s/%s private: %s", self.id, component_id, private)

    def last_update(self, component_id: str) -> c.RecordObject:
        self.type.component(component_id)
        try:
            return self.last[component_id]
        except KeyError:
            raise c.NoResult(f"{self.id}/{component_id} has no value yet") from None

    # -- subscriptions --

    async def subscribe(self, component_id: str, client: str) -> None:
        comp = self.type.component(component_id)
        if not comp.subscribable:
            raise c.NoResult(f"{self.id}/{component_id} cannot be subscribed to")
        async with self._subscribing:
            holders = self.subscribers.setdefault(component_id, Counter())
            if not +holders:
                await self._ensure_connected()
                await self._protocol("Subscribe", "a{ss}", comp.profile)
            holders[client] += 1

    async def follow(self, component_id: str, consumer: str, on: bool) -> None:
        """A durable subscription of `consumer` (a bus name): the stream is produced,
        numbered and kept for replay while the consumer is away, until it unfollows."""
        if self.replay is None:
            raise c.NoResult("this device manager keeps no replay buffer")
        holder = FOLLOW + consumer
        holders = self.subscribers.get(component_id, Counter())
        if on and not holders[holder]:
            followers = sum(1 for h in +holders if h.startswith(FOLLOW))
            c.check_count(followers, c.FOLLOWERS_MAX, f"followers of {self.id}/{component_id}")
            await self.subscribe(component_id, holder)
        elif not on and holders[holder]:
            await self.unsubscribe(component_id, holder)
        self.replay.set_follow((self.id, component_id), consumer, on)

    def restore_follow(self, component_id: str, consumer: str) -> None:
        """A durable subscription kept from before a restart (see `resubscribe`)."""
        holders = self.subscribers.setdefault(component_id, Counter())
        followers = sum(1 for h in +holders if h.startswith(FOLLOW))
        if not consumer or len(consumer) > c.CONSUMER_MAX:
            raise c.InvalidArgs(f"not a consumer: {c.cut(str(consumer))!r}")
        c.check_count(followers, c.FOLLOWERS_MAX, f"followers of {self.id}/{component_id}")
        holders[FOLLOW + consumer] = 1

    async def unsubscribe(self, component_id: str, client: str) -> None:
        self.type.component(component_id)
        async with self._subscribing:
            holders = self.subscribers.get(component_id, Counter())
            if holders[client] <= 0:
                raise c.NoResult(f"{client} is not subscribed to {self.id}/{component_id}")
            holders[client] -= 1
            if not +holders:
                await self._release(component_id)

    async def _release(self, component_id: str) -> None:
        self.subscribers.pop(component_id, None)
        profile = self.type.component(component_id).profile
        if any(
            +holders and self.type.component(other).profile == profile
            for other, holders in self.subscribers.items()
        ):
            return  # another component still needs this characteristic
        try:
            await self._protocol("Unsubscribe", "a{ss}", profile)
        except DBusError as exc:
            # The count is already zero here; the protocol stopping on its own is fine.
            log.info(
                "%s/%s: unsubscribe at the protocol failed: %s", self.id, component_id, exc.text
            )

    async def drop_client(self, client: str) -> None:
        async with self._subscribing:
            for component_id, holders in list(self.subscribers.items()):
                if holders.pop(client, 0):
                    log.info(
                        "%s left the bus; released its hold on %s/%s",
                        client,
                        self.id,
                        component_id,
                    )
                    if not +holders:
                        await self._release(component_id)

    async def resubscribe(self) -> None:
        """The protocol restarted and forgot our subscriptions: ask again."""
        async with self._subscribing:
            for component_id in [k for k, v in self.subscribers.items() if +v]:
                try:
                    await self._ensure_connected()
                    await self._protocol(
                        "Subscribe", "a{ss}", self.type.component(component_id).profile
                    )
                    log.info("%s/%s re-subscribed after a protocol restart", self.id, component_id)
                except DBusError as exc:
                    log.warning("%s/%s: re-subscribe failed: %s", self.id, component_id, exc.text)

    def on_value(self, profile: dict[str, str], raw: bytes) -> None:
        """A value notified by the protocol; garbage is logged and skipped. AGILE's
        subscribers get the record; a followed stream's record is numbered, kept for
        replay and sent with its number."""
        for comp in self.type.components_for_profile(profile):
            try:
                record = self._record(comp, raw)
            except c.NoResult as exc:
                log.warning("skipped: %s", exc.text)
                continue
            holders = +self.subscribers.get(comp.id, Counter())
            if any(not h.startswith(FOLLOW) for h in holders):
                emit_signal(
                    self.bus,
                    c.NEW_SUBSCRIBE_VALUE_SIGNAL,
                    c.RecordObject.SIGNATURE,
                    [record.to_wire()],
                )
            if self.replay is not None and any(h.startswith(FOLLOW) for h in holders):
                try:
                    seq = self.replay.number(record)
                except ReplayUnavailable as exc:
                    log.warning("%s/%s not kept for its followers: %s", self.id, comp.id, exc)
                    continue
                emit_signal(
                    self.bus,
                    c.SEQUENCED_VALUE_SIGNAL,
                    c.SEQUENCED_SIGNATURE,
                    [[record.to_wire(), seq]],
                )

    def replayed(self, component_id: str, after: int) -> list[list[Any]]:
        """The followed stream's records numbered after `after` (at most REPLAY_BATCH)."""
        self.type.component(component_id)
        if self.replay is None:
            raise c.NoResult("this device manager keeps no replay buffer")
        rows = self.replay.after((self.id, component_id), after, c.REPLAY_BATCH)
        return [[record.to_wire(), seq] for record, seq in rows]

    def sequence(self, component_id: str) -> list[int]:
        """[first number still held for replay, last number given]; [0, 0] for none."""
        self.type.component(component_id)
        if self.replay is None:
            return [0, 0]
        return list(self.replay.bounds((self.id, component_id)))

    async def stop(self) -> None:
        async with self._subscribing:
            for component_id in list(self.subscribers):
                await self._release(component_id)
        try:
            await self.disconnect()
        except DBusError as exc:
            log.info("%s: disconnect failed: %s", self.id, exc.text)


class DeviceInterface(ServiceInterface):
    def __init__(self, device: Device) -> None:
        super().__init__(c.DEVICE_IFACE)
        self.device = device

    @dbus_method()
    def Id(self) -> c.Str:
        return self.device.id

    @dbus_method()
    def Name(self) -> c.Str:
        return self.device.definition.name

    @dbus_method()
    async def Status(self) -> c.StatusWire:
        return [await self.device.status()]

    @dbus_method()
    async def FirmwareVersion(self) -> c.Str:
        """The firmware the device runs (0x00010000), "" where its radio does not say."""
        return await self.device.firmware_version()

    @dbus_method()
    async def Firmware(self) -> c.VariantDict:
        """Its firmware: version, the newest image offered, an update's state and bytes."""
        return await self.device.firmware()

    @dbus_method()
    async def Update(self) -> None:
        """Update its firmware to the newest image offered (a sleepy device: when it
        next wakes)."""
        await self.device.update_firmware()

    @dbus_method()
    def LastSeen(self) -> c.Int64:
        return self.device.last_seen_ms

    @dbus_method()
    def Definition(self) -> c.DefinitionWire:
        return self.device.definition.to_wire()

    @dbus_method()
    async def Connect(self) -> None:
        await self.device.connect()

    @dbus_method()
    async def Disconnect(self) -> None:
        await self.device.disconnect()

    @dbus_method()
    async def Read(self, component: c.Str) -> c.RecordWire:
        return (await self.device.read(component)).to_wire()

    @dbus_method()
    async def ReadAll(self) -> c.RecordListWire:
        return [r.to_wire() for r in await self.device.read_all()]

    @dbus_method()
    async def Write(self, component: c.Str, payload: c.Str) -> None:
        await self.device.write(component, payload)

    @dbus_method()
    async def Execute(self, command: c.Str) -> None:
        await self.device.execute(command)

    @dbus_method()
    def Commands(self) -> c.StrList:
        return [cmd.id for cmd in self.device.type.commands]

    @dbus_method()
    async def Subscribe(self, component: c.Str) -> None:
        await self.device.subscribe(component, caller())

    @dbus_method()
    async def Unsubscribe(self, component: c.Str) -> None:
        await self.device.unsubscribe(component, caller())

    @dbus_method()
    async def Follow(self, component: c.Str, consumer: c.Str) -> None:
        """Addition: a durable Subscribe by `consumer`, a bus name the caller owns."""
        await _check_owner(self.device.bus, consumer)
        await self.device.follow(component, consumer, True)

    @dbus_method()
    async def Unfollow(self, component: c.Str, consumer: c.Str) -> None:
        await _check_owner(self.device.bus, consumer)
        await self.device.follow(component, consumer, False)

    @dbus_method()
    def Replay(self, component: c.Str, after: c.UInt64) -> c.SequencedListWire:
        """Addition: a followed stream's records numbered after `after`, oldest first, at
        most REPLAY_BATCH; a first number above after + 1 is a gap (records not kept)."""
        return self.device.replayed(component, after)

    @dbus_method()
    def SetPrivate(self, component: c.Str, private: c.Bool) -> None:
        """Addition: the stream's records are kept only in memory wherever the gateway
        queues them (replay buffer, bridge spool): what Storage asks of a stream it
        encrypts."""
        self.device.set_private(component, private)

    @dbus_method()
    def Sequence(self, component: c.Str) -> c.SeqBoundsWire:
        return self.device.sequence(component)

    @dbus_method()
    def LastUpdate(self, component: c.Str) -> c.RecordWire:
        return self.device.last_update(component).to_wire()

    @dbus_method()
    def LastUpdateAll(self) -> c.RecordListWire:
        return [r.to_wire() for r in self.device.last.values()]

    @dbus_method()
    async def Stop(self) -> None:
        await self.device.stop()

    @dbus_method()
    def Configuration(self) -> c.Str:
        return self.device.configuration()

    @dbus_method()
    def Profile(self) -> c.ComponentListWire:
        return [s.to_wire() for s in self.device.definition.streams]

    @dbus_method()
    def Data(self) -> c.RecordWire:
        return self.device.data().to_wire()

    @dbus_method()
    def Protocol(self) -> c.Str:
        return self.device.protocol

    @signal()
    def NewSubscribeValueSignal(self) -> c.RecordWire:
        """Declared for introspection; sent from AGILE's path (contract)."""
        raise NotImplementedError
