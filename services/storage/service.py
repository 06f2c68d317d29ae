"""`org.eclipse.agail.Storage`: records the streams its policies name, and answers history.

The service subscribes to each recorded (device, component) at its Device
object, so the DeviceManager keeps the protocol subscription alive while
storage needs it, and subscribes again whenever the DeviceManager (re)appears
or a device is registered later. Values arrive as NewSubscribeValueSignal.
"""

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbus_fast import DBusError, Message, Variant
from dbus_fast.service import ServiceInterface, dbus_method, signal

from services import contract as c
from services.catalog import options_of
from services.records import Follower, device_call, follow_device_manager
from services.service import BusService, ServiceConfig, woken
from services.storage.crypto import KEY_ENV, Sealer, StorageKeyError, TamperedSegment, load_key
from services.storage.policy import Policy, PolicyStore
from services.storage.store import StorageError, Store

log = logging.getLogger(__name__)
STOP_S = 5.0


def now_ms() -> int:
    return int(time.time() * 1000)


class StorageService(BusService):
    bus_names = (c.STORAGE_NAME,)

    def __init__(self, config: ServiceConfig, clock_ms: Callable[[], int] = now_ms) -> None:
        super().__init__(config)
        opts = options_of("storage", config.options)
        self.folder = Path(opts["folder"] or config.state_dir / "storage")
        self.key_file = Path(opts["key-file"] or self.folder / "key")
        self.flush_interval_s = opts["flush-interval"]
        self.retention_check_s = opts["retention-check"]
        self.resubscribe_s = opts["resubscribe-interval"]
        self.segment_records = opts["segment-records"]
        self.clock_ms = clock_ms
        self.policies: dict[tuple[str, str], Policy] = {}
        self.subscribed: set[tuple[str, str]] = set()
        self.last_kept: dict[tuple[str, str], int] = {}
        self.skipped_interval = 0
        self.device_manager = ""  # unique name of the DeviceManager, when it is on the bus
        self.key_error = ""  # why the key cannot be used: encrypted streams are not recorded
        self.private_said: dict[tuple[str, str], bool] = {}  # SetPrivate, as the DM has it
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    async def start(self) -> None:
        sealer = None
        if KEY_ENV in os.environ or self.key_file.exists():
            sealer = self._sealer()
        self.store = Store(
            self.folder,
            sealer,
            segment_records=self.segment_records,
        )
        self.policy_store = PolicyStore(self.folder / "policies.json")
        for policy in self.policy_store.all():
            try:
                self._apply(policy)
            except DBusError as exc:
                # Kept (the key may be mended), but not recorded: the plain streams go on.
                self.policies[policy.key] = policy
                log.error("%s/%s is not recorded: %s", *policy.key, exc.text)
        self.interface = StorageInterface(self)
        self.exports.export(c.STORAGE_PATH, self.interface)
        # Recorded streams are followed (durable, numbered, replayed): a Storage that was
        # away, killed or not, gets what it missed, and never a record twice.
        self.follower = Follower(self.bus, c.STORAGE_NAME, self._deliver)
        self.device_manager = await follow_device_manager(
            self.bus, self._on_value, self._name_owner_changed, c.SEQUENCED_VALUE_SIGNAL
        )
        self.expire()

    async def ready(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._every(self.flush_interval_s, self._flush)),
            asyncio.ensure_future(self._every(self.retention_check_s, self.expire)),
            asyncio.ensure_future(self._subscriber()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded (Python 3.11's wait_for, in a bus call, can swallow a cancel), and
            # each that ended is looked at: a call cut off by the closing bus may end in
            # OSError, which nobody else would retrieve.
            done, _ = await asyncio.wait(self._tasks, timeout=STOP_S)
            for task in done:
                if not task.cancelled():
                    task.exception()
        try:
            self.store.close()
        except StorageError as exc:
            log.error("stopping with records not written: %s", exc)
        self.policy_store.close()

    # -- policies --

    def _sealer(self) -> Sealer | None:
        """The key's sealer, or None with `key_error` said: a key file others can read (or
        a broken one) refuses the encrypted streams only, never the whole service."""
        try:
            sealer = Sealer(load_key(self.key_file))
        except (StorageKeyError, OSError) as exc:
            if str(exc) != self.key_error:
                log.error("encrypted streams are refused: %s", exc)
            self.key_error = str(exc)
            return None
        self.key_error = ""
        return sealer

    def _apply(self, policy: Policy) -> None:
        if policy.encrypt and self.store.sealer is None:
            self.store.sealer = self._sealer()
            if self.store.sealer is None:
                raise DBusError(c.STORAGE_ERROR, f"cannot encrypt: {self.key_error}")
        self.store.set_encrypt(policy.device_id, policy.component_id, policy.encrypt)
        self.policies[policy.key] = policy

    def set_policy(self, device_id: str, component_id: str, changes: dict[str, Any]) -> Policy:
        c.check_device_id(device_id)
        c.check_component_id(component_id)
        current = self.policies.get((device_id, component_id))
        if current is None:
            c.check_count(len(self.policies), c.POLICIES_MAX, "recording policies")
            current = Policy(device_id, component_id)
        policy = current.updated(changes)
        self._apply(policy)
        self.policy_store.put(policy)
        self._wake.set()
        log.info("policy of %s/%s: %s", device_id, component_id, policy)
        return policy

    def policy(self, device_id: str, component_id: str) -> Policy:
        try:
            return self.policies[(device_id, component_id)]
        except KeyError:
            raise c.NoResult(f"no policy for {device_id}/{component_id}") from None

    def delete_policy(self, device_id: str, component_id: str) -> None:
        self.policy(device_id, component_id)
        del self.policies[(device_id, component_id)]
        self.policy_store.delete(device_id, component_id)
        self._wake.set()

    # -- subscriptions --

    async def _subscriber(self) -> None:
        """Keep the subscriptions in line with the policies; retry what fails."""
        while True:
            self._wake.clear()
            wanted = {
                k
                for k, p in self.policies.items()
                if p.record and (self.store.sealer is not None or not p.encrypt)
            }
            for key in sorted(wanted):
                await self._say_private(key, self.policies[key].encrypt)
            for key in sorted(wanted - self.subscribed):
                if self.policies[key].encrypt and not self.private_said.get(key):
                    continue  # not followed before its records are kept in memory only
                await self._follow(key, True)
            for key in sorted(self.subscribed - wanted):
                await self._follow(key, False)
            await woken(self._wake, self.resubscribe_s)

    async def _say_private(self, key: tuple[str, str], private: bool) -> None:
        """An encrypted stream's records must not lie in clear in the device manager's
        replay buffer or the bridge's spool: it is told to keep them in memory."""
        if self.private_said.get(key) == private:
            return
        try:
            await device_call(self.bus, key[0], "SetPrivate", "sb", key[1], private)
        except DBusError as exc:
            log.info("%s/%s not said private (tried again later): %s", *key, exc.text)
            return
        self.private_said[key] = private

    async def _follow(self, key: tuple[str, str], on: bool) -> None:
        try:
            if on:
                await self.follower.follow(key, self.store.last_seq(*key))
            else:
                await self.follower.unfollow(key)
        except DBusError as exc:
            log.info("follow %s/%s %s failed (tried again later): %s", *key, on, exc.text)
            if not on:
                self.subscribed.discard(key)  # the hold is gone with the device
            return
        if on:
            self.subscribed.add(key)
            log.info("recording %s/%s", *key)
        else:
            self.subscribed.discard(key)

    def _name_owner_changed(self, name: str, old: str, new: str) -> None:
        if name == c.DEVICE_NAME:
            self.device_manager = new
            if old:
                log.info("the DeviceManager restarted or left; subscribing again")
            self.subscribed.clear()  # a new DeviceManager holds no subscriptions of ours
            self.private_said.clear()
            self._wake.set()

    def _on_value(self, msg: Message) -> None:
        if msg.sender == self.device_manager and msg.signature == c.SEQUENCED_SIGNATURE:
            self.follower.on_signal(msg)

    def _deliver(self, record: c.RecordObject, seq: int) -> None:
        policy = self.policies.get((record.device_id, record.component_id))
        if policy is None or not policy.record:
            return
        key = policy.key
        last = self.last_kept.get(key)
        if (
            policy.interval_ms
            and last is not None
            and record.last_update - last < policy.interval_ms
        ):
            self.skipped_interval += 1
            return
        if self.store.append(record, seq):
            self.last_kept[key] = record.last_update

    # -- periodic work --

    async def _every(self, seconds: float, work: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                work()
            except Exception:  # a bad run must not end the schedule
                log.exception("%s failed", getattr(work, "__name__", work))

    def flush(self) -> int:
        """Write what came in. While writes fail (a full disk) recording pauses: what is
        in memory waits for the next try, and what comes meanwhile stays in the device
        manager's replay buffer, taken from there once a write succeeds again."""
        try:
            written = self.store.flush()
        except StorageError as exc:  # logged by the store
            if not self.follower.paused:
                log.warning("recording paused until records can be written again")
                self.follower.pause()
                self.interface.WriteStatus(True, str(exc))
            raise
        if self.follower.paused:
            log.info("recording again, from where it paused")
            self.follower.resume()
            self.interface.WriteStatus(False, "")
        return written

    def _flush(self) -> None:
        with contextlib.suppress(StorageError):  # tried again next time
            self.flush()

    def expire(self) -> int:
        now = self.clock_ms()
        removed = 0
        for policy in list(self.policies.values()):
            try:
                removed += self.store.expire(
                    policy.device_id, policy.component_id, now - policy.retention_ms
                )
            except (StorageError, TamperedSegment) as exc:
                log.error("retention of %s/%s: %s", *policy.key, exc)
        if removed:
            log.info("retention removed %d records", removed)
        return removed

    def stats(self) -> dict[str, Variant]:
        s = self.store
        return {
            "streams": Variant("u", len(s.streams)),
            "policies": Variant("u", len(self.policies)),
            "subscribed": Variant("u", len(self.subscribed)),
            "records_written": Variant("t", s.written),
            "records_unflushed": Variant("t", s.unflushed),
            "records_dropped": Variant("t", s.dropped),
            "records_skipped_interval": Variant("t", self.skipped_interval),
            "replay_numbers_skipped": Variant("t", self.follower.skipped),
            "flushes": Variant("t", s.flushes),
            "flush_interval_ms": Variant("t", int(self.flush_interval_s * 1000)),
            "bytes_on_disk": Variant("t", s.bytes_on_disk()),
            "encryption_key": Variant("b", s.sealer is not None),
            "error": Variant("s", s.last_error),
            "key_error": Variant("s", self.key_error),
            "paused": Variant("b", self.follower.paused),
        }


def _newest(infos: list[Any], n: int) -> list[Any]:
    """Streams outlive their policies: the `n` written last, in their order, always fit
    the bus."""
    if len(infos) <= n:
        return infos
    keep = {id(s) for s in sorted(infos, key=lambda s: -s.last_ms)[:n]}
    return [s for s in infos if id(s) in keep]


def _errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Store failures become D-Bus errors a client can tell apart."""

    @functools.wraps(func)
    def wrapped(*args: Any) -> Any:
        try:
            return func(*args)
        except TamperedSegment as exc:
            raise DBusError(c.STORAGE_INTEGRITY_ERROR, str(exc)) from None
        except StorageError as exc:
            raise DBusError(c.STORAGE_ERROR, str(exc)) from None

    return wrapped


class StorageInterface(ServiceInterface):
    def __init__(self, service: StorageService) -> None:
        super().__init__(c.STORAGE_IFACE)
        self.service = service

    @dbus_method()
    def SetPolicy(
        self, device_id: c.Str, component_id: c.Str, policy: c.VariantDict
    ) -> c.VariantDict:
        return self.service.set_policy(device_id, component_id, policy).to_wire()

    @dbus_method()
    def Policy(self, device_id: c.Str, component_id: c.Str) -> c.VariantDict:
        return self.service.policy(device_id, component_id).to_wire()

    @dbus_method()
    def Policies(self) -> c.PolicyListWire:
        return [[p.device_id, p.component_id, p.to_wire()] for p in self.service.policies.values()]

    @dbus_method()
    def DeletePolicy(self, device_id: c.Str, component_id: c.Str) -> None:
        self.service.delete_policy(device_id, component_id)

    @dbus_method()
    @_errors
    def Query(
        self,
        device_id: c.Str,
        component_id: c.Str,
        since_ms: c.Int64,
        until_ms: c.Int64,
        max_points: c.UInt32,
    ) -> c.RecordListWire:
        points = min(max_points or c.QUERY_POINTS_MAX, c.QUERY_POINTS_MAX)
        rows = self.service.store.rows(device_id, component_id, since_ms, until_ms, points)
        return [list(row) for row in rows]

    @dbus_method()
    @_errors
    def Latest(self, device_id: c.Str, component_id: c.Str) -> c.RecordWire:
        record = self.service.store.latest(device_id, component_id)
        if record is None:
            raise c.NoResult(f"nothing stored for {device_id}/{component_id}")
        return record.to_wire()

    @dbus_method()
    def Streams(self) -> c.PolicyListWire:
        return [
            [
                s.device_id,
                s.component_id,
                {
                    "count": Variant("t", s.count),
                    "first_ms": Variant("x", s.first_ms),
                    "last_ms": Variant("x", s.last_ms),
                    "bytes": Variant("t", s.bytes),
                    "segments": Variant("u", s.segments),
                    "encrypted": Variant("b", s.encrypted),
                    "refused": Variant("u", s.refused),
                },
            ]
            for s in _newest(self.service.store.stream_infos(), c.POLICIES_MAX)
        ]

    @dbus_method()
    def Stats(self) -> c.VariantDict:
        return self.service.stats()

    @dbus_method()
    @_errors
    def Flush(self) -> c.UInt32:
        return self.service.flush()

    @signal()
    def WriteStatus(self, paused: bool, error: str) -> c.BoolStr:
        return [paused, error]


def create(config: ServiceConfig) -> StorageService:
    return StorageService(config)
