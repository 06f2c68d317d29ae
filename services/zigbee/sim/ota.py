"""A simulated device's OTA upgrade client (ZCL cluster 0x0019, client side), as the
ZigBee OTA Upgrade specification has devices behave: an Image Notify makes it ask for
its next image (Query Next Image); it then pulls the image block by block at its own
pace (Image Block Request), keeps what it has (a download cut off resumes from there
for the same image), checks the whole image, asks to end (Upgrade End), and runs the
new firmware after the server's answer — rejoining as after a reboot."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zigpy.types as t
from zigpy.ota.image import parse_ota_image
from zigpy.zcl import foundation as f
from zigpy.zcl.clusters.general import Ota

log = logging.getLogger(__name__)

OTA = 0x0019
BLOCK_SIZE = 50  # what most devices ask for (zigpy caps blocks at 50 bytes anyway)
ANSWER_TIMEOUT_S = 2.0  # for a block, before it asks again
TRIES = 3  # a block asked for this often without an answer: the download pauses


@dataclass
class OtaState:
    """What a device keeps of its firmware and of a download in progress."""

    manufacturer_code: int
    image_type: int
    version: int
    block_interval_s: float = 0.05  # between block requests: the device's own pace
    # The download in progress: its version, size, and the bytes so far.
    target: int | None = None
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    blocks_asked: int = 0  # every block request sent, a resumed download's too

    def attributes(self) -> dict[int, Any]:
        """The OTA client cluster's attributes the server may read."""
        return {
            0x0000: t.EUI64.convert("ff:ff:ff:ff:ff:ff:ff:ff"),  # upgrade server: none yet
            0x0001: len(self.data),
            0x0002: self.version,
            0x0006: 1 if self.target is not None else 0,  # downloading / normal
            0x0007: self.manufacturer_code,
            0x0008: self.image_type,
        }

    def to_memory(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "target": self.target,
            "size": self.size,
            "data": self.data.hex(),
        }

    def from_memory(self, memory: dict[str, Any]) -> None:
        self.version = int(memory.get("version", self.version))
        self.target = memory.get("target")
        self.size = int(memory.get("size", 0))
        self.data = bytearray.fromhex(memory.get("data", ""))


class OtaClient:
    """One device's OTA client; `send(command_id, payload)` sends a client-to-server
    command of its OTA cluster, `rebooted()` is called on the new firmware."""

    def __init__(
        self,
        state: OtaState,
        send: Callable[[int, bytes], None],
        rebooted: Callable[[], None],
        name: str,
    ) -> None:
        self.state = state
        self.send = send
        self.rebooted = rebooted
        self.name = name
        self._answers: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def heard(self, command_id: int, payload: bytes) -> None:
        """A server-to-client command of the OTA cluster."""
        defs = Ota.ClientCommandDefs
        if command_id == defs.image_notify.id:
            if not self.busy:
                self._task = asyncio.ensure_future(self._download())
            return
        schemas: dict[int, Any] = {
            defs.query_next_image_response.id: defs.query_next_image_response.schema,
            defs.image_block_response.id: defs.image_block_response.schema,
            defs.upgrade_end_response.id: defs.upgrade_end_response.schema,
        }
        schema = schemas.get(command_id)
        if schema is None:
            return
        try:
            answer, _ = schema.deserialize(payload)
        except (ValueError, KeyError) as exc:
            log.warning("%s: a malformed OTA answer skipped: %s", self.name, exc)
            return
        self._answers.put_nowait((command_id, answer))

    async def _ask(self, request: Any, command: Any, answer: Any) -> Any | None:
        """Send `command` (of the `request` definition) and wait for the `answer`
        definition's (None: none came, after TRIES)."""
        for _ in range(TRIES):
            while not self._answers.empty():
                self._answers.get_nowait()  # late answers to an earlier try
            if request is Ota.ServerCommandDefs.image_block:
                self.state.blocks_asked += 1
            self.send(request.id, command.serialize())
            try:
                async with asyncio.timeout(ANSWER_TIMEOUT_S):
                    while True:
                        got_id, got = await self._answers.get()
                        if got_id == answer.id:
                            return got
            except TimeoutError:
                continue
        return None

    async def _download(self) -> None:
        state = self.state
        defs = Ota.ServerCommandDefs
        query = defs.query_next_image.schema(
            field_control=0,
            manufacturer_code=state.manufacturer_code,
            image_type=state.image_type,
            current_file_version=state.version,
        )
        offered = await self._ask(
            defs.query_next_image, query, Ota.ClientCommandDefs.query_next_image_response
        )
        if offered is None or offered.status != f.Status.SUCCESS:
            return
        if offered.file_version != state.target or offered.image_size != state.size:
            state.target, state.size, state.data = (
                offered.file_version,
                offered.image_size,
                bytearray(),
            )
        elif state.data:
            log.info(
                "%s: resuming a download at %d of %d bytes", self.name, len(state.data), state.size
            )
        while len(state.data) < state.size:
            await asyncio.sleep(state.block_interval_s)
            block = defs.image_block.schema(
                field_control=0,
                manufacturer_code=state.manufacturer_code,
                image_type=state.image_type,
                file_version=state.target,
                file_offset=len(state.data),
                maximum_data_size=BLOCK_SIZE,
            )
            answer = await self._ask(
                defs.image_block, block, Ota.ClientCommandDefs.image_block_response
            )
            if answer is None:
                log.info("%s: no block came; the download pauses at %d", self.name, len(state.data))
                return  # kept: the next query resumes it
            if answer.status != f.Status.SUCCESS:
                log.info("%s: the server said %s; the download stops", self.name, answer.status)
                return
            if answer.file_offset == len(state.data) and answer.file_version == state.target:
                state.data += answer.image_data
        await self._end()

    async def _end(self) -> None:
        state = self.state
        status = f.Status.SUCCESS
        try:
            image, rest = parse_ota_image(bytes(state.data))
            header = image.header
            if rest or (header.manufacturer_id, header.image_type, header.file_version) != (
                state.manufacturer_code,
                state.image_type,
                state.target,
            ):
                status = f.Status.INVALID_IMAGE
        except (ValueError, KeyError) as exc:
            log.warning("%s: the downloaded image is not one: %s", self.name, exc)
            status = f.Status.INVALID_IMAGE
        end = Ota.ServerCommandDefs.upgrade_end.schema(
            status=status,
            manufacturer_code=state.manufacturer_code,
            image_type=state.image_type,
            file_version=state.target,
        )
        answer = await self._ask(
            Ota.ServerCommandDefs.upgrade_end, end, Ota.ClientCommandDefs.upgrade_end_response
        )
        version = state.target
        state.target, state.size, state.data = None, 0, bytearray()
        if status == f.Status.SUCCESS and answer is not None and version is not None:
            state.version = version
            log.info("%s: runs firmware 0x%08x", self.name, version)
            self.rebooted()
