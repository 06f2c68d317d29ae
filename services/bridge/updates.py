"""What the bridge tells Home Assistant of updates: each gateway service image's (from
the update service's plan, its operations' progress from its signals) and each device's
firmware (from its Device's `Firmware`); and the installs Home Assistant asks for, where
the admin allowed them (mqtt:installs). Installs are the update service's and the
radios' own: only signed releases and offered images, health-gated and rolled back as
from agile-tui."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from dbus_fast import DBusError

from services import contract as c
from services.bridge import topics
from services.records import device_call
from services.service import spawn
from services.updater.client import UpdaterClient

log = logging.getLogger(__name__)

Send = Callable[[str, bytes], Awaitable[None]]
# No update service on this gateway (the native runtime has none): no image entities.
NOT_THERE = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
)


class Updates:
    """The update entities' states, sent when they change (and all again on connect)."""

    def __init__(self, updater: UpdaterClient, base: str, send: Send) -> None:
        self.updater = updater
        self.base = base
        self.send = send
        self.plans: dict[str, c.ServicePlan] = {}
        self.firmware: dict[str, c.FirmwareStatus] = {}
        self.no_firmware: set[str] = set()  # their radio updates no firmware: not asked again
        self.running: dict[str, tuple[str, ...]] = {}  # operation id -> the services it updates
        self.layers: dict[str, dict[str, tuple[int, int]]] = {}  # op id -> layer -> done, total
        self.sent: dict[str, bytes] = {}
        self.images_said = ""

    # -- service images --

    async def watch(self) -> None:
        await self.updater.watch(self._signal)

    async def plan(self) -> bool:
        """The update service's plan for every image; whether the images changed (an
        entity more or less). No update service (the native runtime) or no stack: none."""
        before = set(self.plans)
        try:
            _, _, plans = await self.updater.plan("")
        except DBusError as exc:
            if exc.text != self.images_said:
                log.info("service image updates not read: %s", exc.text)
                self.images_said = exc.text
            if exc.type not in NOT_THERE:
                return False  # a registry away for a while: what was shown stays
            plans = []
        self.images_said = ""
        self.plans = {p.service: p for p in plans if p.running}
        await self.send_images()
        return set(self.plans) != before

    def _signal(self, member: str, body: list[Any]) -> None:
        if member == "Started" and body[1] == "update":
            self.running[body[0]] = tuple(str(body[2]).split())
            self.layers[body[0]] = {}
        elif member == "Progress" and body[0] in self.layers:
            op, layer, done, total = body
            self.layers[op][layer] = (int(done), int(total))
        elif member == "Ended":
            self.running.pop(body[0], None)
            self.layers.pop(body[0], None)
        else:
            return
        # What it shows now, not when the task runs: a quick operation's Ended may be
        # read in the same batch as its Started, and its progress must still be shown.
        shown = self._image_states()
        spawn(self._send_all(shown) if member != "Ended" else self._send_all(shown, plan=True))

    def _progress(self, service: str) -> float | None:
        for op, services in self.running.items():
            if service in services:
                layers = self.layers.get(op, {}).values()
                total = sum(t for _, t in layers)
                return sum(d for d, _ in layers) / total if total else 0.0
        return None

    def _image_states(self) -> dict[str, bytes]:
        shown = {}
        for service, plan in self.plans.items():
            latest = plan.running if plan.up_to_date or not plan.has_plan else plan.version
            if plan.has_plan and not plan.up_to_date:
                summary = f"{plan.download_bytes:,} B to download ({plan.method})"
                if plan.release:
                    summary += f", release r{plan.release} signed by {plan.signed_by}"
            else:
                summary = plan.problem
            shown[topics.image_topic(self.base, service)] = topics.update_payload(
                plan.running, latest, f"AGILE {service} image", summary, self._progress(service)
            )
        return shown

    async def send_images(self) -> None:
        await self._send_all(self._image_states())

    async def _send_all(self, shown: dict[str, bytes], plan: bool = False) -> None:
        for topic, payload in shown.items():
            await self.send_changed(topic, payload)
        if plan:  # an update ended: what runs, and what is newer, changed
            await self.plan()

    # -- device firmware --

    async def read_firmware(self, bus: Any, device_id: str) -> bool:
        """Its firmware's state, sent if it changed; whether it has firmware updates."""
        if device_id in self.no_firmware:
            return False
        try:
            (info,) = await device_call(bus, device_id, "Firmware")
        except DBusError as exc:
            if exc.type != c.NO_RESULT_ERROR:
                log.info("%s: firmware not read (tried again later): %s", device_id, exc.text)
                return device_id in self.firmware
            self.firmware.pop(device_id, None)
            self.no_firmware.add(device_id)
            return False
        status = c.FirmwareStatus.from_info(cast(dict[str, Any], info))
        self.firmware[device_id] = status
        await self.send_firmware(device_id, status)
        return True

    async def send_firmware(self, device_id: str, status: c.FirmwareStatus) -> None:
        def version(number: int) -> str:
            return f"0x{number:08x}" if number else ""

        updating = status.state in ("updating", "queued", "interrupted")
        progress = (status.done / status.total if status.total else 0.0) if updating else None
        latest = max(status.available, status.target if updating else 0)
        summary = status.said or (status.state if status.state != "idle" else "")
        payload = topics.update_payload(
            version(status.version), version(latest), "firmware", summary, progress
        )
        await self.send_changed(topics.firmware_topic(self.base, device_id), payload)

    async def forget(self, device_id: str) -> None:
        self.no_firmware.discard(device_id)
        if self.firmware.pop(device_id, None) is not None:
            await self.send_changed(topics.firmware_topic(self.base, device_id), b"")

    # -- sending, installing --

    async def send_changed(self, topic: str, payload: bytes) -> None:
        if self.sent.get(topic) != payload:
            self.sent[topic] = payload
            await self.send(topic, payload)

    async def resend(self) -> None:
        """All of them again: a new connection (the broker may have lost retained ones)."""
        self.sent.clear()
        await self.send_images()
        for device_id, status in self.firmware.items():
            await self.send_firmware(device_id, status)

    async def install(self, bus: Any, install: topics.Install) -> None:
        """DBusError where it cannot start (said back on the result topic)."""
        if install.kind == "images":
            if install.name not in self.plans:
                raise c.InvalidArgs(f"no service image {install.name!r} to update")
            await self.updater.update([install.name])
        else:
            if not c.valid_device_id(install.name):
                raise c.DeviceNotFound(f"no device {c.cut(install.name)!r}")
            await device_call(bus, install.name, "Update")
            await self.read_firmware(bus, install.name)
