"""Device firmware over the air, through zigpy's OTA: the images zigpy's providers offer
(a local folder of OTA files, and zigpy's online providers where the gateway may reach
them), each device's version, and a queue of updates: a device that listens all the time
is updated at once, a sleepy one when it next wakes (it says so by sending anything); an
update cut off (the device gone quiet) waits for the device and resumes where its
download stopped."""

import asyncio
import datetime
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zigpy.config
import zigpy.device
import zigpy.types as t
from zigpy.ota import OtaImageWithMetadata
from zigpy.ota.providers import AdvancedFileProvider
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Ota, QueryNextImageCommand

from services import contract as c
from services.service import spawn
from services.zigbee.errors import RADIO_ERRORS

log = logging.getLogger(__name__)

# The OTA client cluster's attributes a device's firmware is known by.
VERSION, MANUFACTURER, IMAGE_TYPE = 0x0002, 0x0007, 0x0008


class State(enum.StrEnum):
    IDLE = "idle"
    QUEUED = "queued"  # waits for a sleepy device to wake
    UPDATING = "updating"
    INTERRUPTED = "interrupted"  # resumes when the device is heard again
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    image: OtaImageWithMetadata
    state: State = State.QUEUED
    done: int = 0
    total: int = 0
    said: str = ""
    last_progress: float = 0.0
    task: asyncio.Task[Any] | None = None


def zigpy_ota_config(folder: Path, online: bool) -> dict[str, Any]:
    """zigpy's OTA settings: the local folder, and zigpy's own online providers only
    where asked for (a gateway without a network must not wait on them)."""
    local = {
        "type": "advanced",
        "path": str(folder),
        "warning": zigpy.config.CONF_OTA_ALLOW_ADVANCED_DIR_STRING,
    }
    online_providers = zigpy.config.defaults.CONF_OTA_PROVIDERS_DEFAULT if online else []
    return {"enabled": True, "providers": [local, *online_providers]}


def is_sleepy(device: zigpy.device.Device) -> bool:
    descriptor = device.node_desc
    return descriptor is not None and not descriptor.is_receiver_on_when_idle


class FirmwareUpdates:
    def __init__(self, app: Callable[[], Any], folder: Path, stall_s: float) -> None:
        self._app = app  # the running zigpy application (it changes on a restore)
        self.folder = folder
        self.stall_s = stall_s
        self.jobs: dict[t.EUI64, Job] = {}
        self._listing: frozenset[tuple[str, int, int]] = frozenset()

    def _folder_changed(self) -> None:
        """An image put into (or taken from) the folder is offered at once: zigpy reads
        a provider's index once a day, so its local folder's is marked stale here when
        the folder's files changed (zigpy >= 2.4, < 3: its providers' own timestamp)."""
        try:
            listing = frozenset(
                (p.name, p.stat().st_size, p.stat().st_mtime_ns)
                for p in self.folder.rglob("*")
                if p.is_file()
            )
        except OSError:
            return
        if listing == self._listing:
            return
        self._listing = listing
        for provider in self._app().ota._providers:
            if isinstance(provider, AdvancedFileProvider):
                provider._index_last_updated = datetime.datetime.fromtimestamp(0, tz=datetime.UTC)

    @staticmethod
    def _ota_cluster(device: zigpy.device.Device) -> Ota | None:
        for endpoint in device.non_zdo_endpoints:
            cluster = endpoint.out_clusters.get(Ota.cluster_id)
            if isinstance(cluster, Ota):
                return cluster
        return None

    async def learn(self, device: zigpy.device.Device) -> None:
        """Read the device's firmware attributes once (zigpy keeps them in its database),
        while it is awake after joining."""
        cluster = self._ota_cluster(device)
        if cluster is None:
            return
        try:
            async with asyncio.timeout(10):
                await cluster.read_attributes([VERSION, MANUFACTURER, IMAGE_TYPE])
        except RADIO_ERRORS as exc:  # a device that does not answer: learnt when it queries
            log.info("%s: firmware version not read: %s", device.ieee, exc)

    def version(self, device: zigpy.device.Device) -> int | None:
        cluster = self._ota_cluster(device)
        if cluster is None:
            return None
        value = cluster.get(VERSION)
        return int(value) if value is not None else None

    async def available(self, device: zigpy.device.Device) -> OtaImageWithMetadata | None:
        """The newest image zigpy's providers have for the device, if newer than it runs."""
        cluster = self._ota_cluster(device)
        if cluster is None:
            return None
        query = device.get_last_ota_query_cmd()
        if query is None:
            known = [cluster.get(a) for a in (MANUFACTURER, IMAGE_TYPE, VERSION)]
            if None in known:
                return None
            query = QueryNextImageCommand(
                field_control=0,
                manufacturer_code=known[0],
                image_type=known[1],
                current_file_version=known[2],
            )
        self._folder_changed()
        result = await self._app().ota.get_ota_images(device, query)
        return max(result.upgrades, key=lambda image: image.version, default=None)

    async def request(self, device: zigpy.device.Device) -> Job:
        image = await self.available(device)
        if image is None:
            raise c.NoResult(f"{device.ieee}: no newer firmware image for it")
        job = self.jobs.get(device.ieee)
        if job is not None and job.state in (State.UPDATING, State.QUEUED):
            raise c.NoResult(f"{device.ieee}: its firmware update is already {job.state}")
        job = self.jobs[device.ieee] = Job(image)
        if is_sleepy(device):
            job.said = "waits for the device to wake"
            log.info("%s: firmware 0x%08x queued until it wakes", device.ieee, image.version)
        else:
            self._start(device, job)
        return job

    def heard(self, device: zigpy.device.Device) -> None:
        """The device sent something: it is awake, and a waiting update starts."""
        job = self.jobs.get(device.ieee)
        if job is not None and job.state in (State.QUEUED, State.INTERRUPTED):
            self._start(device, job)

    def _start(self, device: zigpy.device.Device, job: Job) -> None:
        job.state, job.said = State.UPDATING, ""
        job.last_progress = time.monotonic()
        job.task = spawn(self._run(device, job))

    async def _run(self, device: zigpy.device.Device, job: Job) -> None:
        def progress(current: int, total: int, _percent: float) -> None:
            job.done, job.total, job.last_progress = current, total, time.monotonic()

        update = asyncio.ensure_future(device.update_firmware(job.image, progress))
        while not update.done():
            await asyncio.wait({update}, timeout=1.0)
            finishing = job.total and job.done >= job.total  # checked and rejoining
            if not finishing and time.monotonic() - job.last_progress > self.stall_s:
                update.cancel()
                job.state, job.said = State.INTERRUPTED, f"no block asked for {self.stall_s:g} s"
                log.info("%s: firmware update interrupted at %d bytes", device.ieee, job.done)
                return
        try:
            status = update.result()
        except RADIO_ERRORS as exc:  # what the radio, the device or the image file raised
            job.state, job.said = State.FAILED, str(exc) or type(exc).__name__
            return
        if status == foundation.Status.SUCCESS:
            job.state, job.said = State.DONE, f"runs 0x{job.image.version:08x}"
            log.info("%s: firmware updated to 0x%08x", device.ieee, job.image.version)
        else:
            job.state, job.said = State.FAILED, getattr(status, "name", str(status))

    def stop(self) -> None:
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
