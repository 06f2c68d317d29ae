"""Following the DeviceManager's records: what Storage and the MQTT bridge both do."""

import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

from dbus_fast import DBusError, Message
from dbus_fast.aio import MessageBus

from services import contract as c
from services.bus import (
    DBUS_NAME,
    DBUS_PATH,
    call,
    listen,
    watch_name_owners,
)
from services.service import spawn

log = logging.getLogger(__name__)


async def follow_device_manager(
    bus: MessageBus,
    on_record: Callable[[Message], None],
    on_owner_changed: Callable[[str, str, str], None],
    signal: tuple[str, str, str] = c.NEW_SUBSCRIBE_VALUE_SIGNAL,
) -> str:
    """Call `on_record` with every `signal` (AGILE's NewSubscribeValueSignal, or the
    SequencedValue of followed streams) on the bus and `on_owner_changed(name, old,
    new)` when the DeviceManager comes or goes; its unique name now ("" while it is
    away). Records are only to be taken from that name."""
    await listen(bus, signal, on_record, sender=c.DEVICE_NAME)
    await watch_name_owners(bus, on_owner_changed, c.DEVICE_NAME)
    with contextlib.suppress(DBusError):
        (owner,) = await call(
            bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [c.DEVICE_NAME]
        )
        return str(owner)
    return ""


async def device_call(
    bus: MessageBus, device_id: str, member: str, signature: str = "", *body: object
) -> list[object]:
    """A method of one registered Device object (at the DeviceManager), its answer."""
    path = c.device_path(device_id)
    return await call(
        bus, c.DEVICE_NAME, path, c.DEVICE_IFACE, member, signature, list(body), timeout=15
    )


Key = tuple[str, str]  # (device id, component id)


class Follower:
    """A consumer's side of followed streams (Device.Follow): every record once and in
    order, across its own restarts and the device manager's. Live SequencedValues are
    taken while they come in order; a number past the next one means some were missed,
    and the replay brings them. Numbers the replay does not hold are a gap (records
    lost upstream by a device manager killed, or trimmed from its buffer, or numbers it
    never used): logged and counted in `skipped`, never silent."""

    def __init__(
        self, bus: MessageBus, consumer: str, deliver: Callable[[c.RecordObject, int], None]
    ) -> None:
        self.bus = bus
        self.consumer = consumer  # the bus name the follows are held under
        self.deliver = deliver
        self.last: dict[Key, int] = {}  # the number of the last record delivered
        self.skipped = 0
        self.paused = False
        self._catching_up: set[Key] = set()

    def pause(self) -> None:
        """Take nothing more (the consumer cannot keep it): the replay holds it meanwhile."""
        self.paused = True

    def resume(self) -> None:
        """Take again, from after the last record delivered."""
        self.paused = False
        for key in list(self.last):
            spawn(self.catch_up(key))

    async def follow(self, key: Key, last: int) -> None:
        """Follow the stream from after `last` (what the consumer already has)."""
        await device_call(self.bus, key[0], "Follow", "ss", key[1], self.consumer)
        self.last.setdefault(key, last)
        await self.catch_up(key)

    async def unfollow(self, key: Key) -> None:
        self.last.pop(key, None)
        await device_call(self.bus, key[0], "Unfollow", "ss", key[1], self.consumer)

    def on_signal(self, msg: Message) -> None:
        (wire, seq), *_ = msg.body
        record = c.RecordObject.from_wire(wire)
        key = (record.device_id, record.component_id)
        last = self.last.get(key)
        if last is None or self.paused or key in self._catching_up or seq <= last:
            return  # not ours, not now, the replay under way brings it, or had already
        if seq == last + 1:
            self._take(key, record, seq)
        else:
            spawn(self.catch_up(key))

    async def catch_up(self, key: Key) -> None:
        """Take the replay from after the last record delivered, to the newest."""
        if key in self._catching_up or self.paused:
            return
        self._catching_up.add(key)
        try:
            while key in self.last and not self.paused:
                (rows,) = await device_call(
                    self.bus, key[0], "Replay", "st", key[1], self.last[key]
                )
                batch = cast(list[tuple[Any, int]], rows)  # "a(vt)"
                for wire, seq in batch:
                    if key in self.last and seq > self.last[key] and not self.paused:
                        self._take(key, c.RecordObject.from_wire(wire), seq)
                if len(batch) < c.REPLAY_BATCH:
                    break
        except DBusError as exc:
            log.info("replay of %s/%s not taken (tried again): %s", *key, exc.text)
        finally:
            self._catching_up.discard(key)

    def _take(self, key: Key, record: c.RecordObject, seq: int) -> None:
        missed = seq - self.last[key] - 1
        if missed > 0:
            self.skipped += missed
            log.warning(
                "%s/%s: numbers %d to %d are not in the replay (lost upstream or unused)",
                *key,
                self.last[key] + 1,
                seq - 1,
            )
        self.last[key] = seq
        self.deliver(record, seq)
