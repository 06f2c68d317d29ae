"""`org.eclipse.agail.protocol.ZB` on zigpy.

Discovery is permit-join: devices that join are interviewed by zigpy and then
listed. Profiles address ZCL attributes as
`{"endpoint": "1", "cluster": "0x0402", "attribute": "0x0000"}`; Read gives the
attribute's ZCL encoding (little-endian, as the device type expects), Write
takes it. A profile with `"command": "payload"` instead of an attribute sends a
cluster command: the written bytes are the command id followed by its
arguments in ZCL encoding (`0x01` = On). Subscribe binds the cluster and
configures reporting on the device; where the device refuses reporting, the
attribute is polled instead.
"""

import asyncio
import importlib
import importlib.metadata
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

import zigpy.application
import zigpy.backups
import zigpy.device
import zigpy.exceptions
import zigpy.types as t
from dbus_fast import Variant
from dbus_fast.service import dbus_method
from zigpy.zcl import Cluster, foundation

from services import contract as c
from services.errors import AgileError
from services.private import secret_folder
from services.protocol import ProtocolAdapter, ProtocolInterface, checked_address
from services.service import spawn
from services.zigbee.backups import BackupFolder, parse
from services.zigbee.errors import RADIO_ERRORS
from services.zigbee.firmware import FirmwareUpdates, zigpy_ota_config

log = logging.getLogger(__name__)

DEFAULT_PERMIT_S = 60
PORT_CHECK_S = 1.0  # how often a missing radio's port is looked for (hot-plug)
RETRY_MIN_S, RETRY_MAX_S = 5.0, 60.0  # a radio that is there but fails to open
# Radio libraries zigpy knows, by the name the gateway's configuration uses.
RADIOS = {
    "znp": ("zigpy_znp.zigbee.application", "zigpy-znp"),
    "ezsp": ("bellows.zigbee.application", "bellows"),
    "deconz": ("zigpy_deconz.zigbee.application", "zigpy-deconz"),
    "zigate": ("zigpy_zigate.zigbee.application", "zigpy-zigate"),
    "xbee": ("zigpy_xbee.zigbee.application", "zigpy-xbee"),
}
# Clusters every device has that are not worth a component of their own.
HOUSEKEEPING = {0x0000, 0x0003, 0x0004, 0x0005, 0x0019, 0x0020}
BACKUP_AFTER_CHANGE_S = 2.0  # joins come in bursts: one backup after the last


def radio_class(name: str) -> type[zigpy.application.ControllerApplication]:
    if name == "virtual":
        from services.zigbee.sim.radio import VirtualRadio

        return VirtualRadio
    if name not in RADIOS:
        raise ValueError(f"unknown ZigBee radio {name!r}; known: virtual, {', '.join(RADIOS)}")
    module, package = RADIOS[name]
    try:
        return importlib.import_module(module).ControllerApplication
    except ImportError:
        raise ValueError(
            f"ZigBee radio {name!r} needs {package}: pip install 'agile-gateway[zigbee-radios]'"
        ) from None


class _NoLibrary(AgileError):
    """The radio's zigpy library is not installed (or the radio name is unknown)."""


def _number(profile: dict[str, str], key: str, limit: int) -> int:
    text = profile.get(key)
    if text is None:
        raise c.InvalidArgs(f"a ZigBee profile needs {key!r} (endpoint, cluster, attribute)")
    try:
        value = int(text, 0)
    except ValueError:
        raise c.InvalidArgs(f"profile {key}={text!r} is not a number (e.g. 1 or 0x0402)") from None
    if not 0 <= value <= limit:
        raise c.InvalidArgs(f"profile {key}={text!r} is out of range")
    return value


def _ieee(address: str) -> t.EUI64:
    try:
        return t.EUI64.convert(address)
    except (ValueError, TypeError, AssertionError):  # zigpy asserts eight octets
        raise c.InvalidArgs(f"not a ZigBee IEEE address: {address!r}") from None


class ZigBeeAdapter(ProtocolAdapter):
    short_name = "ZB"
    display_name = "ZigBee"

    def __init__(
        self,
        state_dir: Path,
        radio: str = "virtual",
        port: str = "",
        channel: int = 15,
        request_timeout_s: float = 10.0,
        poll_interval_s: float = 10.0,
        sim: dict[str, Any] | None = None,
        backups_kept: int = 10,
        ota_folder: str = "",
        ota_online: bool = False,
        ota_stall_s: float = 60.0,
    ) -> None:
        super().__init__()
        self.state_dir = state_dir
        self.radio = radio
        self.port = port
        self.channel = channel
        self.request_timeout_s = request_timeout_s
        self.poll_interval_s = poll_interval_s
        self.sim = sim or {}
        self._app: zigpy.application.ControllerApplication | None = None
        self.unavailable = ""  # why there is no radio, while there is none
        self._opener: asyncio.Task[None] | None = None
        self.permit_until = 0.0
        self.left: set[t.EUI64] = set()
        # (ieee, endpoint, cluster, attribute) -> the profile the subscriber used
        self.subscriptions: dict[tuple[t.EUI64, int, int, int], dict[str, str]] = {}
        self._listening: dict[tuple[t.EUI64, int, int], Callable[[], None]] = {}
        self._polls: dict[tuple[t.EUI64, int, int, int], asyncio.Task[None]] = {}
        self.interface_class = ZigBeeInterface
        self.backups = BackupFolder(state_dir / "zigbee" / "backups", max(1, backups_kept))
        self.automatic_backups = backups_kept > 0
        self._backup_timer: asyncio.TimerHandle | None = None
        self.ota_folder = Path(ota_folder) if ota_folder else state_dir / "zigbee" / "ota"
        self.ota_online = ota_online
        self.firmware = FirmwareUpdates(lambda: self.app, self.ota_folder, ota_stall_s)

    # -- radio --

    def zigpy_config(self) -> dict[str, Any]:
        folder = secret_folder(self.state_dir / "zigbee")  # the network key is in there
        self.ota_folder.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "device": {"path": self.port or self.radio},
            "database_path": str(folder / "zigbee.db"),
            "network": {"channel": self.channel, "channels": [self.channel]},
            "ota": zigpy_ota_config(self.ota_folder, self.ota_online),
            "topology_scan_enabled": False,
        }
        if self.radio == "virtual":
            from services.zigbee.sim.radio import SIM_CONFIG

            config[SIM_CONFIG] = {
                "nvram": str(folder / "virtual-radio.json"),
                "air": str(folder / "virtual-air.json"),
                **self.sim,
            }
        return config

    @property
    def app(self) -> zigpy.application.ControllerApplication:
        if self._app is None:
            raise c.NoResult(self.unavailable or "the ZigBee radio is not open yet")
        return self._app

    def status(self) -> str:
        return c.ProtocolState.UNAVAILABLE if self._app is None else c.ProtocolState.AVAILABLE

    async def start(self) -> None:
        """Open the radio. Without one (no stick plugged in, its library missing, or it
        does not answer) the service stays on the bus, unavailable, says why once, and
        opens the radio when it appears."""
        if not self._port_present():
            self._say_unavailable(f"no ZigBee radio at {self.port} (set zigbee:port)")
        else:
            try:
                await self._open()
                return
            except _NoLibrary as exc:  # a library that is not installed will not appear
                self._say_unavailable(str(exc))
                return
            except Exception as exc:  # zigpy raises many kinds for a radio that fails
                self._say_unavailable(f"ZigBee radio at {self.port or self.radio} failed: {exc}")
        self._opener = asyncio.ensure_future(self._open_when_there())

    def _say_unavailable(self, why: str) -> None:
        self.unavailable = why
        log.error("%s; the ZigBee protocol is unavailable until it is", why)

    async def _open_when_there(self) -> None:
        """Hot-plug: wait for the port to appear, then open the radio (retrying, with
        backoff, a radio that is there but fails)."""
        backoff = RETRY_MIN_S
        while True:
            await asyncio.sleep(PORT_CHECK_S if not self._port_present() else backoff)
            if not self._port_present():
                continue
            try:
                await self._open()
            except _NoLibrary as exc:
                self._say_unavailable(str(exc))
                return
            except Exception as exc:
                log.warning("ZigBee radio at %s failed: %s; again in %g s", self.port, exc, backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            self.unavailable = ""
            log.info("ZigBee radio at %s found; the protocol is available", self.port)
            self.on_status_change()
            return

    def _port_present(self) -> bool:
        return not self.port or Path(self.port).exists()

    async def _open(self) -> None:
        try:
            cls = radio_class(self.radio)
        except ValueError as exc:
            raise _NoLibrary(str(exc)) from None
        self._app = await cls.new(self.zigpy_config(), auto_form=True)
        self.app.add_listener(self)
        self.app.backups.add_listener(self)  # its backups (daily, after a restore) as files
        spawn(self._backup_after_change())  # at formation, or what changed while it was off
        version = importlib.metadata.version("zigpy")
        self.driver = f"zigpy {version}, {cls.DISPLAY_NAME or self.radio} radio"
        restored = [d for d in self.app.devices.values() if self._is_member(d)]
        for dev in restored:
            if not self._interviewed(dev):
                # Killed between zigpy saving the endpoints and the model: ask again.
                log.info("%s: interview incomplete in the database; re-interviewing", dev.ieee)
                spawn(dev.reinterview())
        log.info(
            "ZigBee network up on channel %d; %d devices restored", self.channel, len(restored)
        )

    async def stop(self) -> None:
        if self._opener is not None:
            self._opener.cancel()
        await self._close()

    async def _close(self) -> None:
        if self._backup_timer is not None:
            self._backup_timer.cancel()
        self.firmware.stop()
        for task in self._polls.values():
            task.cancel()
        self._polls.clear()
        for unlisten in self._listening.values():
            unlisten()
        self._listening.clear()
        if self._app is not None:
            app, self._app = self._app, None
            await app.shutdown()

    # -- network backups --

    def network_backup_created(self, backup: zigpy.backups.NetworkBackup) -> None:
        """zigpy's own (at start, daily, after a restore), kept as files too."""
        if not self.automatic_backups:
            return
        try:
            written = self.backups.write(backup)
        except (OSError, ValueError) as exc:
            log.error("ZigBee network backup not written: %s", exc)
            return
        if written is not None:
            log.info("ZigBee network backed up: %s, %d devices", written.name, written.devices)

    def _backup_soon(self) -> None:
        if not self.automatic_backups:
            return
        if self._backup_timer is not None:
            self._backup_timer.cancel()
        self._backup_timer = asyncio.get_running_loop().call_later(
            BACKUP_AFTER_CHANGE_S, lambda: spawn(self._backup_after_change())
        )

    async def _backup_after_change(self) -> None:
        """A backup through zigpy (its database keeps it too), written unless the last
        file says the same."""
        if self._app is None:
            return
        try:
            await self.app.backups.create_backup(load_devices=True)
        except RADIO_ERRORS as exc:  # the next change tries again
            log.warning("ZigBee network backup after a change failed: %s", exc)

    async def take_backup(self) -> c.ZigBeeBackup:
        """A backup now, kept as a file whatever the ones before say."""
        app = self.app
        await self._radio(app.load_network_info(load_devices=True), "read the network")
        backup = app.backups.from_network_state()
        app.backups.add_backup(backup, suppress_event=True)
        written = self.backups.write(backup, force=True)
        assert written is not None  # forced
        log.info("ZigBee network backed up on request: %s", written.name)
        return written

    async def restore(self, text: str) -> c.ZigBeeBackup | None:
        """The network of a backup onto the radio, its frame counter advanced as zigpy
        does; the network it replaces (if the radio holds one) is backed up first. The
        devices the backup lists report again without pairing (zigpy's database still
        knows them)."""
        backup = parse(text)
        try:
            before: c.ZigBeeBackup | None = await self.take_backup()
        except c.NoResult as exc:  # a wiped radio: nothing on it to keep
            log.info("the radio's network is not backed up before the restore: %s", exc)
            before = None
        await self._radio(self.app.backups.restore_backup(backup), "restore the network")
        subscribed = [(str(key[0]), profile) for key, profile in self.subscriptions.items()]
        self.subscriptions.clear()
        await self._close()
        try:
            await self._open()
        except RADIO_ERRORS as exc:  # as at start: unavailable, and opened again when it can be
            self._say_unavailable(f"ZigBee radio failed after the restore: {exc}")
            self._opener = asyncio.ensure_future(self._open_when_there())
            raise c.NoResult(f"the radio did not open on the restored network: {exc}") from None
        for address, profile in subscribed:
            try:
                await self.subscribe(address, profile)
            except (c.NoResult, c.DeviceNotFound) as exc:
                log.warning("%s: not subscribed again after the restore: %s", address, exc)
        log.info(
            "ZigBee network restored from a backup of %s (the one before: %s)",
            backup.backup_time.isoformat(),
            before.name if before else "none",
        )
        return before

    def _is_member(self, dev: object) -> TypeGuard[zigpy.device.Device]:
        return isinstance(dev, zigpy.device.Device) and dev.ieee != self.app.state.node_info.ieee

    @staticmethod
    def _interviewed(dev: zigpy.device.Device) -> bool:
        return bool(dev.is_initialized and dev.model is not None and dev.manufacturer is not None)

    def _members(self) -> list[zigpy.device.Device]:
        """Devices on the network, interviewed, that have not left."""
        return [
            d
            for d in self.app.devices.values()
            if self._is_member(d) and self._interviewed(d) and d.ieee not in self.left
        ]

    @staticmethod
    def name_of(dev: zigpy.device.Device) -> str:
        return f"{dev.manufacturer or 'ZigBee'} {dev.model or str(dev.ieee)}"

    # -- zigpy listener callbacks --

    def device_reinterviewed(self, device: zigpy.device.Device) -> None:
        self.device_initialized(device)

    def device_initialized(self, device: zigpy.device.Device) -> None:
        self.left.discard(device.ieee)
        if self._is_member(device) and self._interviewed(device):
            log.info("%s (%s) interviewed", device.ieee, self.name_of(device))
            self.seen(str(device.ieee), self.name_of(device))
            self._backup_soon()
            if self.firmware.version(device) is None:
                spawn(self.firmware.learn(device))

    def device_left(self, device: zigpy.device.Device) -> None:
        # Forget it (zigpy's database too): if it comes back, it joins and is interviewed
        # afresh, as after a factory reset.
        self.left.add(device.ieee)
        spawn(self.app.remove(device.ieee))

    def device_removed(self, device: zigpy.device.Device) -> None:
        self.left.add(device.ieee)
        self._backup_soon()

    def handle_message(self, device: zigpy.device.Device, *args: Any) -> None:
        if self._is_member(device) and self._interviewed(device):
            self.left.discard(device.ieee)
            self.seen(str(device.ieee), self.name_of(device))
            self.firmware.heard(device)

    def device_joined(self, device: zigpy.device.Device) -> None:
        log.info("%s joined; interviewing", device.ieee)

    def device_init_failure(self, device: zigpy.device.Device) -> None:
        log.warning("%s: interview failed; it is asked again when it re-announces", device.ieee)

    # -- discovery: permit-join --

    def permit_remaining_s(self) -> int:
        return max(0, round(self.permit_until - time.monotonic()))

    def discovery_state(self) -> c.DiscoveryState:
        return c.DiscoveryState.RUNNING if self.permit_remaining_s() else c.DiscoveryState.NONE

    def visible_devices(self) -> list[c.DeviceOverview]:
        if self._app is None:
            return []  # no radio, no network: nothing to list (not an error)
        return [
            c.DeviceOverview(str(d.ieee), self.bus_name, self.name_of(d), self._availability(d))
            for d in self._members()
        ]

    async def permit(self, seconds: int) -> None:
        if not 0 <= seconds <= 254:
            raise c.InvalidArgs(f"permit-join lasts 0..254 s, not {seconds}")
        await self._radio(self.app.permit(seconds), "permit joining")
        self.permit_until = time.monotonic() + seconds
        log.info("joining %s", f"permitted for {seconds} s" if seconds else "closed")

    async def start_discovery(self) -> None:
        await self.permit(DEFAULT_PERMIT_S)

    async def stop_discovery(self) -> None:
        await self.permit(0)

    def _availability(self, dev: zigpy.device.Device) -> str:
        last = dev.last_seen
        if last is None:
            return c.DeviceAvailability.UNAVAILABLE
        age = time.time() - last  # zigpy gives epoch seconds
        return c.DeviceAvailability.AVAILABLE if age < 300 else c.DeviceAvailability.UNAVAILABLE

    # -- devices --

    def _device(self, address: str) -> zigpy.device.Device:
        ieee = _ieee(address)
        dev = self.app.devices.get(ieee)
        if not self._is_member(dev):
            raise c.DeviceNotFound(f"no ZigBee device {address} on this network")
        if ieee in self.left:
            raise c.NoResult(f"ZigBee device {address} has left the network")
        if not self._interviewed(dev):
            raise c.NoResult(f"ZigBee device {address} is still being interviewed")
        return dev

    def _cluster(self, address: str, profile: dict[str, str]) -> Cluster:
        dev = self._device(address)
        ep_id = _number(profile, "endpoint", 240)
        cluster_id = _number(profile, "cluster", 0xFFFF)
        ep = dev.endpoints.get(ep_id)
        if ep is None or ep_id == 0:
            raise c.NoResult(f"{address} has no endpoint {ep_id}")
        cluster = ep.in_clusters.get(cluster_id)
        if cluster is None:
            have = ", ".join(f"0x{x:04x}" for x in sorted(ep.in_clusters))
            raise c.NoResult(
                f"{address} endpoint {ep_id} has no cluster 0x{cluster_id:04x} (it has {have})"
            )
        return cluster

    def _attribute(
        self, address: str, profile: dict[str, str]
    ) -> tuple[Cluster, foundation.ZCLAttributeDef]:
        cluster = self._cluster(address, profile)
        attr_id = _number(profile, "attribute", 0xFFFF)
        try:
            return cluster, cluster.find_attribute(attr_id)
        except KeyError:
            raise c.NoResult(
                f"cluster 0x{cluster.cluster_id:04x} ({cluster.ep_attribute}) has no attribute "
                f"0x{attr_id:04x}"
            ) from None

    async def _radio(self, aw: Any, what: str, address: str = "") -> Any:
        """Await a zigpy request with the adapter's timeout; radio failures become errors."""
        who = address or "the coordinator"
        try:
            async with asyncio.timeout(self.request_timeout_s):
                return await aw
        except TimeoutError:
            raise c.NoResult(
                f"{who} did not answer ({what}) within {self.request_timeout_s:g} s"
            ) from None
        except zigpy.exceptions.DeliveryError as exc:
            raise c.NoResult(f"{who} is not reachable ({what}): {exc}") from None
        except zigpy.exceptions.NetworkNotFormed as exc:
            raise c.NoResult(f"the radio holds no network ({what}): {exc}") from None
        except zigpy.exceptions.ZigbeeException as exc:
            raise c.NoResult(f"{who}: {what} failed: {exc}") from None

    async def connect(self, address: str) -> None:
        """ZigBee has no connections: check that the device answers."""
        dev = self._device(address)
        basic = next(
            (ep.in_clusters[0x0000] for ep in dev.non_zdo_endpoints if 0x0000 in ep.in_clusters),
            None,
        )
        if basic is not None:
            await self._radio(basic.read_attributes([0x0000]), "read Basic", address)

    async def disconnect(self, address: str) -> None:
        self._device(address)

    def device_status(self, address: str) -> c.DeviceStatus:
        try:
            dev = self._device(address)
        except c.NoResult:
            return c.DeviceStatus.DISCONNECTED
        available = self._availability(dev) == c.DeviceAvailability.AVAILABLE
        return c.DeviceStatus.CONNECTED if available else c.DeviceStatus.DISCONNECTED

    async def read(self, address: str, profile: dict[str, str]) -> bytes:
        cluster, attr = self._attribute(address, profile)
        success, failure = await self._radio(
            cluster.read_attributes([attr.id], allow_cache=False), f"read {attr.name}", address
        )
        if attr.id not in success:
            status = failure.get(attr.id, "no value")
            raise c.NoResult(
                f"{address}: reading {attr.name} failed: {getattr(status, 'name', status)}"
            )
        return attr.type(success[attr.id]).serialize()

    async def write(self, address: str, profile: dict[str, str], value: bytes) -> None:
        if "command" in profile:
            await self._command(address, profile, value)
            return
        cluster, attr = self._attribute(address, profile)
        try:
            typed, rest = attr.type.deserialize(value)
        except (ValueError, KeyError) as exc:
            raise c.InvalidArgs(f"{attr.name} takes a {attr.type.__name__}: {exc}") from None
        if rest:
            raise c.InvalidArgs(f"{len(rest)} bytes too many for {attr.name}")
        (records,) = await self._radio(
            cluster.write_attributes({attr.id: typed}), f"write {attr.name}", address
        )
        failed = [r for r in records if r.status != foundation.Status.SUCCESS]
        if failed:
            raise c.NoResult(f"{address}: writing {attr.name} failed: {failed[0].status.name}")

    async def _command(self, address: str, profile: dict[str, str], value: bytes) -> None:
        cluster = self._cluster(address, profile)
        if not value:
            raise c.InvalidArgs("a command write needs at least the command id byte")
        command = cluster.server_commands.get(value[0])
        if command is None:
            raise c.NoResult(f"cluster 0x{cluster.cluster_id:04x} has no command 0x{value[0]:02x}")
        try:
            args, rest = command.schema.deserialize(value[1:])
        except (ValueError, KeyError) as exc:
            raise c.InvalidArgs(f"arguments of {command.name}: {exc}") from None
        if rest:
            raise c.InvalidArgs(f"{len(rest)} bytes too many for {command.name}")
        reply = await self._radio(
            cluster.command(command.id, **args.as_dict()), command.name, address
        )
        status = getattr(reply, "status", foundation.Status.SUCCESS)
        if status != foundation.Status.SUCCESS:
            raise c.NoResult(f"{address}: {command.name} failed: {status.name}")

    # -- reports --

    async def subscribe(self, address: str, profile: dict[str, str]) -> None:
        cluster, attr = self._attribute(address, profile)
        dev = cluster.endpoint.device
        key = (dev.ieee, cluster.endpoint.endpoint_id, cluster.cluster_id, attr.id)
        self.subscriptions[key] = dict(profile)
        listen_key = key[:3]
        if listen_key not in self._listening:
            self._listening[listen_key] = cluster.on_event(
                "attribute_report", lambda event, k=listen_key: self._on_report(k, event)
            )
        try:
            await self._radio(cluster.bind(), "bind", address)
            result = await self._radio(
                cluster.configure_reporting(attr.id, 1, 300, 1), "configure reporting", address
            )
        except c.NoResult:
            self._forget(key)
            raise
        if any(status != foundation.Status.SUCCESS for status in result.values()):
            log.info("%s: %s cannot be reported; polling it", address, attr.name)
            self._polls[key] = asyncio.ensure_future(self._poll(address, profile, key))

    async def _poll(self, address: str, profile: dict[str, str], key: tuple[Any, ...]) -> None:
        while key in self.subscriptions:
            try:
                self.record(address, self.subscriptions[key], await self.read(address, profile))
            except c.NoResult as exc:
                log.info("poll of %s failed: %s", address, exc.text)
            await asyncio.sleep(self.poll_interval_s)

    def _on_report(self, listen_key: tuple[t.EUI64, int, int], event: Any) -> None:
        key = (*listen_key, event.attribute_id)
        profile = self.subscriptions.get(key)
        if profile is None:
            return
        try:
            dev = self.app.devices[listen_key[0]]
            if not self._is_member(dev):
                raise KeyError(listen_key[0])
            cluster = dev.endpoints[listen_key[1]].in_clusters[listen_key[2]]
            raw = cluster.find_attribute(event.attribute_id).type(event.raw_value).serialize()
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            log.warning("skipped a report of %s that does not fit its type: %s", key, exc)
            return
        self.record(str(listen_key[0]), profile, raw)

    async def unsubscribe(self, address: str, profile: dict[str, str]) -> None:
        cluster, attr = self._attribute(address, profile)
        key = (
            cluster.endpoint.device.ieee,
            cluster.endpoint.endpoint_id,
            cluster.cluster_id,
            attr.id,
        )
        if key not in self.subscriptions:
            raise c.NoResult(f"{address}: {attr.name} is not subscribed")
        self._forget(key)

    def _forget(self, key: tuple[t.EUI64, int, int, int]) -> None:
        self.subscriptions.pop(key, None)
        poll = self._polls.pop(key, None)
        if poll is not None:
            poll.cancel()
        if not any(k[:3] == key[:3] for k in self.subscriptions):
            unsubscribe = self._listening.pop(key[:3], None)
            if unsubscribe is not None:
                unsubscribe()

    # -- device firmware --

    async def firmware_status(self, address: str) -> dict[str, Variant]:
        dev = self._device(address)
        available = await self.firmware.available(dev)
        job = self.firmware.jobs.get(dev.ieee)
        return c.FirmwareStatus(
            self.firmware.version(dev) or 0,
            available.version if available else 0,
            str(job.state) if job else "idle",
            job.image.version if job else 0,
            job.done if job else 0,
            job.total if job else 0,
            job.said if job else "",
        ).to_info()

    async def update_firmware(self, address: str) -> None:
        await self.firmware.request(self._device(address))

    # -- what device types match on --

    def device_info(self, address: str) -> dict[str, Variant]:
        ieee = _ieee(address)
        dev = self.app.devices.get(ieee)
        if not isinstance(dev, zigpy.device.Device):
            raise c.DeviceNotFound(f"no ZigBee device {address} on this network")
        clusters = [
            f"{ep.endpoint_id}/0x{cid:04x}"
            for ep in dev.non_zdo_endpoints
            for cid in ep.in_clusters
        ]
        last = dev.last_seen
        return {
            "Name": Variant("s", self.name_of(dev)),
            "Manufacturer": Variant("s", dev.manufacturer or ""),
            "Model": Variant("s", dev.model or ""),
            "NWK": Variant("s", f"0x{dev.nwk:04x}"),
            "LQI": Variant("y", dev.lqi or 0),
            "RSSI": Variant("n", dev.rssi or 0),
            "Clusters": Variant("as", clusters),
            "Interviewed": Variant("b", self._interviewed(dev)),
            "LastSeen": Variant("x", int(last * 1000) if last else 0),
            "PermitJoinRemaining": Variant("u", self.permit_remaining_s()),
            "FirmwareVersion": Variant("u", self.firmware.version(dev) or 0),
        }

    async def characteristics(self, address: str) -> list[tuple[str, str, list[str]]]:
        """Every reportable attribute of every cluster, as (endpoint/cluster/name,
        attribute id/name, [access..., type=...]) for generic device types."""
        dev = self._device(address)
        out = []
        for ep in dev.non_zdo_endpoints:
            for cid, cluster in sorted(ep.in_clusters.items()):
                if cid in HOUSEKEEPING:
                    continue
                for attr in cluster.attributes.values():
                    if foundation.ZCLAttributeAccess.Report not in attr.access:
                        continue
                    flags = ["read", "report", f"type={attr.type.__name__}"]
                    out.append(
                        (
                            f"{ep.endpoint_id}/0x{cid:04x}/{cluster.ep_attribute}",
                            f"0x{attr.id:04x}/{attr.name}",
                            flags,
                        )
                    )
        return out


class ZigBeeInterface(ProtocolInterface):
    """The Protocol interface plus permit-join with an explicit duration, and the
    network's backups."""

    adapter: ZigBeeAdapter

    @dbus_method()
    async def PermitJoin(self, seconds: c.UInt32) -> None:
        await self.adapter.permit(seconds)

    @dbus_method()
    def PermitJoinRemaining(self) -> c.UInt32:
        return self.adapter.permit_remaining_s()

    @dbus_method()
    def Backups(self) -> c.BackupListWire:
        return [f.to_wire() for f in self.adapter.backups.files()]

    @dbus_method()
    async def TakeBackup(self) -> c.BackupWire:
        return (await self.adapter.take_backup()).to_wire()

    @dbus_method()
    def ExportBackup(self, name: c.Str) -> c.Str:
        return self.adapter.backups.read(name)

    @dbus_method()
    async def Restore(self, backup: c.Str) -> c.BackupWire:
        """Returns the backup taken of the network it replaced ("" if the radio held none)."""
        before = await self.adapter.restore(backup)
        return (before or c.ZigBeeBackup(0, "", 0)).to_wire()

    @dbus_method()
    async def Firmware(self, address: c.Str) -> c.VariantDict:
        """The device's firmware: version, the newest image offered, an update's state
        and progress (bytes)."""
        return await self.adapter.firmware_status(checked_address(address))

    @dbus_method()
    async def UpdateFirmware(self, address: c.Str) -> None:
        """Update the device to the newest image offered: at once, or when a sleepy device
        next wakes."""
        await self.adapter.update_firmware(checked_address(address))
