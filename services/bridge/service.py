"""`org.eclipse.agail.Bridge`: the gateway's data out to an MQTT broker, and the broker's
requests back in.

Up: every record of every bridged stream (a policy: every stream of every registered
device unless its device or the stream itself is switched off) goes first to a durable
spool on disk, then to the broker with QoS 1, retained, in order; it leaves the spool
only when the broker has acknowledged it, so a broker away for a while or a bridge
restarted loses nothing (see `spool`). Home Assistant discovery configs and
availability (the broker's will says offline) are state, sent again on every connect.
Down: `/set` and `/command/` topics become the Device's Write and Execute; the result,
or the error, is published back.
"""

import asyncio
import contextlib
import importlib.metadata
import itertools
import json
import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dbus_fast import DBusError, Message, Variant
from dbus_fast.service import ServiceInterface, dbus_method

from services import contract as c
from services.atomicjson import good_rows, write_atomic
from services.bridge import topics
from services.bridge.discovery import Device, bridge_configs, configs
from services.bridge.spool import Queued, Spool
from services.bridge.updates import Updates
from services.bus import call
from services.catalog import options_of
from services.records import Follower, device_call, follow_device_manager
from services.service import BusService, ServiceConfig, woken
from services.updater.client import UpdaterClient

log = logging.getLogger(__name__)
try:
    PACKAGE_VERSION = importlib.metadata.version("agile-gateway")
except importlib.metadata.PackageNotFoundError:  # the tree run from a checkout
    PACKAGE_VERSION = ""
# aiomqtt warns whenever more than 10 publishes wait for their acknowledgement: here
# hundreds do by design (BATCH), and the bridge reports its own state.
client_log = logging.getLogger(__name__ + ".client")
client_log.setLevel(logging.ERROR)

BATCH = 500  # messages in flight at most: enough for 2,000/s over a few ms of latency
STOP_S = 5.0
FLUSH_S = 0.002  # records wait at most this long in memory before they are on disk


class BridgeService(BusService):
    bus_names = (c.BRIDGE_NAME,)

    def __init__(self, config: ServiceConfig) -> None:
        super().__init__(config)
        opts = options_of("mqtt", config.options)
        self.host: str | None = opts["host"]
        self.port: int = opts["port"]
        self.ca_file: str | None = opts["tls"]
        self.username: str | None = opts["username"]
        self.password_file: str | None = opts["password-file"]
        self.gateway = opts["gateway-id"] or socket.gethostname()
        self.base: str = opts["base-topic"] or f"agile/{self.gateway}"
        self.prefix: str = opts["discovery-prefix"]
        # Writes and commands from the broker: off unless asked for (anybody who may
        # publish there could act on the devices), and then with the bridge's identity,
        # an operator's calls at most (services.contract_api.SERVICE_CALLS).
        self.commands: bool = opts["commands"]
        # Installs from Home Assistant's update entities: off unless the admin allows
        # them; what is installed is still only what the update service or the radio
        # would install from agile-tui (signed releases, offered firmware).
        self.installs: bool = opts["installs"]
        self.images_interval_s: float = opts["images-interval"]
        self.refresh_s: float = opts["refresh-interval"]
        self.backoff_max_s: float = opts["reconnect-max"]
        self.folder = Path(opts["folder"] or config.state_dir / "mqtt")
        self.spool = Spool(self.folder / "spool.db", opts["queue-max"])
        # Private streams' messages (Storage encrypts them): never in the spool on disk,
        # here in memory only, bounded as the spool is; a bridge restarted takes them
        # again from the device manager's replay (QoS 1: a repeat is allowed).
        self.private: set[tuple[str, str]] = set()
        self.memory: deque[Queued] = deque()
        self.memory_max: int = opts["queue-max"]
        self.memory_dropped = 0
        self.policy_file = self.folder / "bridged.json"
        self.off: set[str] = set()  # devices not bridged
        self.off_streams: set[tuple[str, str]] = set()  # streams of bridged devices not
        self._load_policy()
        self.devices: dict[str, Device] = {}
        self.available: dict[str, str] = {}
        self.subscribed: set[tuple[str, str]] = set()
        self.device_manager = ""
        self.client: Any = None  # aiomqtt.Client while connected
        self.published = 0
        self.error = ""
        self.pending: list[tuple[str, bytes, bool]] = []
        self.positions: dict[tuple[str, str], int] = {}  # replay numbers, with `pending`
        self._queued = asyncio.Event()
        self._wake = asyncio.Event()
        self._wake_devices = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.exports.export(c.BRIDGE_PATH, BridgeInterface(self))
        # Bridged streams are followed (durable, numbered, replayed): a bridge killed or
        # restarted goes on from the last record it had queued.
        self.follower = Follower(self.bus, c.BRIDGE_NAME, self._deliver)
        self.device_manager = await follow_device_manager(
            self.bus, self._on_value, self._name_owner_changed, c.SEQUENCED_VALUE_SIGNAL
        )
        # Planning asks the registry for every image: longer than a usual call.
        self.updates = Updates(UpdaterClient(self.bus, timeout_s=120), self.base, self._send)

    async def ready(self) -> None:
        if not self.host:
            self.error = "no broker set (mqtt:host): nothing is bridged"
            log.info("%s", self.error)
            return  # nor asks the update service anything
        await self.updates.watch()
        self._tasks = [
            asyncio.ensure_future(self._follow_devices()),
            asyncio.ensure_future(self._follow_images()),
            asyncio.ensure_future(self._flusher()),
            asyncio.ensure_future(self._connection()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a broker connection cancelled mid-handshake can take its time
            # to let go, and a stop must not wait on a broker.
            await asyncio.wait(self._tasks, timeout=STOP_S)
        self.spool.put(self.pending, self.positions)
        self.spool.close()

    # -- up: records to the spool, the spool to the broker --

    def _on_value(self, msg: Message) -> None:
        if msg.sender == self.device_manager and msg.signature == c.SEQUENCED_SIGNATURE:
            self.follower.on_signal(msg)

    def _deliver(self, record: c.RecordObject, seq: int) -> None:
        key = (record.device_id, record.component_id)
        private = key in self.private
        if not private:
            self.positions[key] = seq
        if record.device_id in self.off or key in self.off_streams:
            return
        topic = topics.record_topic(self.base, record)
        if private:
            if len(self.memory) >= self.memory_max:
                self.memory.popleft()
                self.memory_dropped += 1
            self.memory.append(Queued(0, topic, topics.record_payload(record), True))
            self._wake.set()
            return
        self.pending.append((topic, topics.record_payload(record), True))
        self._queued.set()

    async def _flusher(self) -> None:
        """Records to disk in one transaction every FLUSH_S: at 2,000/s a commit per
        record would be the bottleneck, and a kill loses at most these 2 ms."""
        while True:
            await self._queued.wait()
            await asyncio.sleep(FLUSH_S)
            self._queued.clear()
            batch, self.pending = self.pending, []
            positions, self.positions = self.positions, {}
            self.spool.put(batch, positions)
            self._wake.set()

    async def _publish_spool(self, client: Any) -> None:
        while True:
            if self.memory:
                rows = list(itertools.islice(self.memory, BATCH))
                await self._publish(client, rows)
                for _ in rows:
                    self.memory.popleft()
                continue
            rows = self.spool.head(BATCH)
            if not rows:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._publish(client, rows)
            self.spool.remove_through(rows[-1].seq)

    async def _publish(self, client: Any, rows: list[Queued]) -> None:
        """Each row sent (QoS 1, acknowledged) or dead-lettered; a lost connection
        raises, and the rows are sent again on the next one."""
        sendable = []
        for row in rows:
            problem = row.problem or topics.topic_problem(row.topic)
            if problem:
                self._bury(row, problem)
            else:
                sendable.append(row)
        results = await asyncio.gather(
            *(client.publish(r.topic, r.payload, qos=1, retain=r.retain) for r in sendable),
            return_exceptions=True,
        )
        lost = None
        for row, result in zip(sendable, results, strict=True):
            if isinstance(result, ValueError | TypeError) or _refused(result):
                self._bury(row, f"{type(result).__name__}: {result}")
            elif isinstance(result, BaseException):
                lost = lost or result  # the connection: sent again on the next one
        if lost is not None:
            raise lost
        self.published += len(sendable)

    def _bury(self, row: Queued, reason: str) -> None:
        log.error("not sent, dead-lettered: %s: %s", c.cut(row.topic), reason)
        self.spool.bury(row, reason)  # a private stream's row: its topic and reason only

    # -- the broker connection --

    def _client(self) -> Any:
        import aiomqtt  # only the bridge needs it (the `mqtt` extra)

        assert self.host, "ready() runs the broker's tasks only with a host"

        tls = None
        if self.ca_file:
            tls = ssl.create_default_context(cafile=self.ca_file)
        password = None
        if self.password_file:
            password = Path(self.password_file).read_text().strip()
        status = topics.availability_topic(self.base)
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=password,
            identifier=f"agile-bridge-{self.gateway}",
            tls_context=tls,
            will=aiomqtt.Will(status, b"offline", qos=1, retain=True),
            max_inflight_messages=BATCH,
            logger=client_log,
            timeout=10,
        )

    async def _connection(self) -> None:
        """Connected, or trying again with backoff, until the service stops."""
        import aiomqtt

        delay = 1.0
        while True:
            try:
                async with self._client() as client:
                    self.client, self.error, delay = client, "", 1.0
                    log.info("connected to the broker at %s:%d", self.host, self.port)
                    await client.publish(
                        topics.availability_topic(self.base), b"online", qos=1, retain=True
                    )
                    await self.updates.resend()  # first: it forgets what was sent before
                    await self._announce_bridge()
                    for device in self.devices.values():
                        await self._announce(device)
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._publish_spool(client))
                        wanted = topics.subscriptions(self.base) if self.commands else []
                        if self.installs:
                            wanted.append(topics.install_subscription(self.base))
                        for topic in wanted:
                            await client.subscribe(topic, qos=1)
                        if wanted:
                            group.create_task(self._requests(client))
            except* (aiomqtt.MqttError, OSError, ssl.SSLError) as group_error:
                self.error = str(group_error.exceptions[0])
                log.warning(
                    "broker %s:%d: %s; trying again in %.0f s",
                    self.host,
                    self.port,
                    self.error,
                    delay,
                )
            except* Exception as group_error:
                # Anything else (a library's surprise under load) must not end the
                # connection's task for good, silently: said with its trace, and retried.
                self.error = repr(group_error.exceptions[0])
                log.error(
                    "broker %s:%d: unexpected %s; trying again in %.0f s",
                    self.host,
                    self.port,
                    self.error,
                    delay,
                    exc_info=group_error.exceptions[0],
                )
            finally:
                self.client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _send(self, topic: str, payload: bytes, retain: bool = True) -> None:
        """State (discovery, availability) goes straight out when connected: it is sent
        again on every connect anyway, so a connection lost meanwhile loses nothing."""
        import aiomqtt

        if self.client is not None:
            try:
                await self.client.publish(topic, payload, qos=1, retain=retain)
            except (aiomqtt.MqttError, ValueError) as exc:
                log.info("%s not sent (sent again on the next connect): %s", c.cut(topic), exc)

    async def _announce(self, device: Device) -> None:
        shown = replace(
            device,
            components={
                k: unit
                for k, unit in device.components.items()
                if (device.device_id, k) not in self.off_streams
            },
        )
        entities = configs(self.prefix, self.base, self.gateway, shown, self.installs)
        for topic in configs(self.prefix, self.base, self.gateway, device, self.installs):
            await self._send(topic, entities.get(topic, b""))  # a stream switched off leaves
        state = self.available.get(device.device_id, "offline")
        await self._send(topics.availability_topic(self.base, device.device_id), state.encode())

    async def _withdraw(self, device: Device) -> None:
        for topic in configs(self.prefix, self.base, self.gateway, device, self.installs):
            await self._send(topic, b"")  # an empty retained config removes the entity
        await self._send(topics.availability_topic(self.base, device.device_id), b"")
        await self.updates.forget(device.device_id)

    async def _announce_bridge(self, gone: tuple[str, ...] = ()) -> None:
        """The bridge's own device in Home Assistant; `gone`: images no longer shown."""
        images = tuple(self.updates.plans)
        entities = bridge_configs(self.prefix, self.base, self.gateway, images, self.installs)
        for topic in bridge_configs(self.prefix, self.base, self.gateway, gone, False):
            if topic not in entities:
                await self._send(topic, b"")
        for topic, payload in entities.items():
            await self._send(topic, payload)
        await self._send_info()

    async def _send_info(self) -> None:
        info = {
            "version": self.version,
            "queued": self.spool.length + len(self.pending) + len(self.memory),
            "published": self.published,
            "dead_letters": self.spool.dead,
            "commands": self.commands,
            "installs": self.installs,
        }
        payload = json.dumps(info, separators=(",", ":")).encode()
        await self.updates.send_changed(topics.bridge_info_topic(self.base), payload)

    @property
    def version(self) -> str:
        """The running core image's version (the bridge's), else the project's."""
        core = self.updates.plans.get("core")
        return core.running if core is not None and core.running else PACKAGE_VERSION

    async def _follow_images(self) -> None:
        while True:
            before = tuple(self.updates.plans)
            if await self.updates.plan():
                await self._announce_bridge(before)
            await asyncio.sleep(self.images_interval_s)

    # -- down: requests from the broker --

    async def _requests(self, client: Any) -> None:
        async for message in client.messages:
            topic, payload = message.topic.value, bytes(message.payload or b"")
            install = topics.parse_install(self.base, topic) if self.installs else None
            if install is not None:
                await self._install(client, install)
                continue
            try:
                request = topics.parse_request(self.base, topic, payload)
            except topics.BadRequest as exc:
                log.warning("%s: %s", topic, exc)
                await client.publish(exc.reply, topics.reply_payload("BadRequest", str(exc)), 1)
                continue
            except ValueError as exc:
                log.warning("%s", exc)
                continue
            reply = request.reply_topic(self.base)
            try:
                await self._do(request)
            except DBusError as exc:
                log.info("%s: %s", topic, exc.text)
                await client.publish(reply, topics.reply_payload(exc.type, exc.text), qos=1)
            else:
                await client.publish(reply, topics.reply_payload(), qos=1)

    async def _install(self, client: Any, install: topics.Install) -> None:
        try:
            await self.updates.install(self.bus, install)
        except DBusError as exc:
            log.info("install of %s %s: %s", install.kind, install.name, exc.text)
            result = topics.reply_payload(exc.type, exc.text)
        else:
            log.info("install of %s %s asked for from the broker", install.kind, install.name)
            result = topics.reply_payload()
        await client.publish(install.reply_topic(self.base), result, qos=1)

    async def _do(self, request: topics.Request) -> None:
        if not c.valid_device_id(request.device_id):
            raise c.DeviceNotFound(f"no device {request.device_id!r}")
        if request.kind == "set":
            await device_call(
                self.bus, request.device_id, "Write", "ss", request.name, request.value
            )
        else:
            await device_call(self.bus, request.device_id, "Execute", "s", request.name)

    # -- the devices, and which are bridged --

    async def _follow_devices(self) -> None:
        while True:
            self._wake_devices.clear()
            try:
                await self._refresh()
            except DBusError as exc:
                log.info("devices not read (tried again later): %s", exc.text)
            except Exception:  # the loop that follows the devices must never end
                log.exception("devices not read (tried again later)")
            await woken(self._wake_devices, self.refresh_s)

    async def _refresh(self) -> None:
        (wire,) = await call(
            self.bus, c.DEVICE_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "Devices"
        )
        (status,) = await call(
            self.bus, c.DEVICE_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "DevicesStatus"
        )
        seen: dict[str, Device] = {}
        private: set[tuple[str, str]] = set()
        for definition in map(c.DeviceDefinition.from_wire, wire):
            known = self.devices.get(definition.device_id)
            described, kept_private = await self._describe(definition)
            # Described once, but again when its firmware comes to be known (an
            # interview that finishes later): its update entity comes with it.
            same = known is not None and known.firmware == described.firmware
            seen[definition.device_id] = known if known is not None and same else described
            private |= {(definition.device_id, k) for k in kept_private}
        self.private = private
        for gone in set(self.devices) - set(seen) | (set(seen) & self.off):
            if gone in self.devices:
                await self._withdraw(self.devices.pop(gone))
        for device_id, device in seen.items():
            if device_id in self.off:
                continue
            state = "online" if status.get(device_id, [""])[0] == "CONNECTED" else "offline"
            fresh = self.devices.get(device_id) != device
            self.devices[device_id] = device
            if fresh or self.available.get(device_id) != state:
                self.available[device_id] = state
                await self._announce(device)
            for component in device.components:
                key = (device_id, component)
                if key not in self.subscribed and key not in self.off_streams:
                    await self._subscribe(device_id, component)
        self.subscribed = {k for k in self.subscribed if k[0] in self.devices}
        await self._send_info()

    async def _describe(self, definition: c.DeviceDefinition) -> tuple[Device, list[str]]:
        """The device as Home Assistant is told of it, and its private streams (asked at
        every refresh: Storage may have switched encryption on since)."""
        (text,) = await device_call(self.bus, definition.device_id, "Configuration")
        conf = json.loads(str(text))
        units = {s.id: s.unit for s in definition.streams}
        device = Device(
            definition.device_id,
            definition.name,
            str(conf.get("deviceType", "")),
            {k: units.get(k, "") for k in conf.get("subscribable", units)},
            tuple(conf.get("writable", ())) if self.commands else (),
            tuple(conf.get("commands", ())) if self.commands else (),
            definition.device_id not in self.off
            and await self.updates.read_firmware(self.bus, definition.device_id),
        )
        return device, [str(k) for k in conf.get("private", ())]

    async def _subscribe(self, device_id: str, component: str) -> None:
        key = (device_id, component)
        try:
            await self.follower.follow(key, self.positions.get(key) or self.spool.position(key))
        except DBusError as exc:
            log.info("follow %s/%s failed (tried again later): %s", *key, exc.text)
        else:
            self.subscribed.add(key)

    def _check_room(self) -> None:
        c.check_count(len(self.off) + len(self.off_streams), c.BRIDGE_OFF_MAX, "switched off")

    async def set_bridged(self, device_id: str, on: bool) -> None:
        c.check_device_id(device_id)
        if not on and device_id not in self.off:
            self._check_room()
        (self.off.discard if on else self.off.add)(device_id)
        self._save_policy()
        if not on:
            await self._unsubscribe(lambda key: key[0] == device_id)
        self._wake_devices.set()

    async def set_stream_bridged(self, device_id: str, component: str, on: bool) -> None:
        """One stream of a bridged device in or out: its entity comes or goes in Home
        Assistant, and its retained value goes with it."""
        c.check_device_id(device_id)
        c.check_component_id(component)
        key = (device_id, component)
        if not on and key not in self.off_streams:
            self._check_room()
        (self.off_streams.discard if on else self.off_streams.add)(key)
        self._save_policy()
        if not on:
            await self._unsubscribe(lambda k: k == key)
            # Cleared through the spool: after the stream's records still queued there.
            self.pending.append((f"{self.base}/{device_id}/{component}", b"", True))
            self._queued.set()
        if device_id in self.devices:
            await self._announce(self.devices[device_id])
        self._wake_devices.set()

    def _load_policy(self) -> None:
        """bridged.json as saved; what is not valid in it is said and skipped."""
        try:
            policy = json.loads(self.policy_file.read_text()) if self.policy_file.exists() else {}
            if not isinstance(policy, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as exc:
            log.error("%s is not readable (%s): every device is bridged", self.policy_file, exc)
            return

        def stream(key: object) -> tuple[str, str]:
            device_id, _, component = str(key).partition("/")
            return c.check_device_id(device_id), c.check_component_id(component)

        rows = policy.get("devices-off", [])
        self.off = set(
            good_rows(rows if isinstance(rows, list) else [rows], _device, "device", log)
        )
        rows = policy.get("streams-off", [])
        self.off_streams = set(
            good_rows(rows if isinstance(rows, list) else [rows], stream, "stream", log)
        )

    def _save_policy(self) -> None:
        policy = {
            "devices-off": sorted(self.off),
            "streams-off": sorted(f"{d}/{k}" for d, k in self.off_streams),
        }
        write_atomic(self.policy_file, json.dumps(policy).encode())

    async def _unsubscribe(self, which: Callable[[tuple[str, str]], bool]) -> None:
        for key in [k for k in self.subscribed if which(k)]:
            self.subscribed.discard(key)
            with contextlib.suppress(DBusError):
                await self.follower.unfollow(key)

    def _name_owner_changed(self, name: str, old: str, new: str) -> None:
        if name == c.DEVICE_NAME:
            self.device_manager = new
            self.subscribed.clear()  # a new DeviceManager holds no subscriptions of ours
            self._wake_devices.set()

    def status(self) -> dict[str, Variant]:
        return {
            "connected": Variant("b", self.client is not None),
            "broker": Variant("s", f"{self.host}:{self.port}"),
            "base-topic": Variant("s", self.base),
            "queued": Variant("t", self.spool.length + len(self.pending) + len(self.memory)),
            "dropped": Variant("t", self.spool.dropped + self.memory_dropped),
            "dead_letters": Variant("t", self.spool.dead),
            "commands": Variant("b", self.commands),
            "published": Variant("t", self.published),
            "error": Variant("s", self.error),
        }


def _device(value: object) -> str:
    return c.check_device_id(str(value))


def _refused(result: object) -> bool:
    """A publish the client refused for the message itself (MQTT 5's reason codes aside,
    paho says so by its return codes): never sendable, however often it is tried."""
    import paho.mqtt.client as mqtt

    refusals = {mqtt.MQTT_ERR_PAYLOAD_SIZE, mqtt.MQTT_ERR_INVAL, mqtt.MQTT_ERR_NOT_SUPPORTED}
    return getattr(result, "rc", None) in refusals


class BridgeInterface(ServiceInterface):
    def __init__(self, service: BridgeService) -> None:
        super().__init__(c.BRIDGE_IFACE)
        self.service = service

    @dbus_method()
    def Status(self) -> c.VariantDict:
        """connected, broker, base-topic, queued, dropped, dead_letters, published, error."""
        return self.service.status()

    @dbus_method()
    def Bridged(self) -> c.BoolByDevice:
        """Every registered device (and every one switched off): bridged or not."""
        service = self.service
        return {d: d not in service.off for d in set(service.devices) | service.off}

    @dbus_method()
    async def SetBridged(self, device_id: c.Str, on: c.Bool) -> None:
        await self.service.set_bridged(device_id, on)

    @dbus_method()
    def BridgedStreams(self) -> c.BoolByStream:
        """Every stream of every bridged device (and every one switched off), as
        DEVICE/COMPONENT: bridged or not."""
        service = self.service
        keys = {(d, k) for d, device in service.devices.items() for k in device.components}
        return {
            f"{d}/{k}": (d, k) not in service.off_streams for d, k in keys | service.off_streams
        }

    @dbus_method()
    async def SetStreamBridged(self, device_id: c.Str, component: c.Str, on: c.Bool) -> None:
        await self.service.set_stream_bridged(device_id, component, on)


def create(config: ServiceConfig) -> BridgeService:
    return BridgeService(config)
