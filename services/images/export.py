"""An image's exact config and layer tars, taken from the engine with `docker save`.

Docker 20.10 names a saved layer by its v1 id and writes the folders in name order, so
which tar is which layer is known only from manifest.json at the end of the stream: the
image is read twice, once for that list and once for the layers wanted (reading is
cheap; writing every layer to the SD card to sort them out afterwards is not). Newer
engines name layers by digest; the same code reads both. Every byte kept is checked:
the config against the image id, each layer against its diff id.
"""

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import docker

from services.errors import EngineError


class ExportError(EngineError, RuntimeError):
    """The engine did not give the image's exact bytes (gone, or not what it names)."""


class Chunks(io.RawIOBase):
    """A file over an iterator of byte chunks (the engine's streamed response, what a
    delta makes); `digest`, if given, sees every chunk read."""

    def __init__(self, chunks: Iterator[bytes], digest: Any = None) -> None:
        self._chunks, self._rest, self.digest = chunks, b"", digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            self._rest = next(self._chunks, b"")
            if not self._rest:
                return 0
            if self.digest is not None:
                self.digest.update(self._rest)
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


@contextmanager
def _saved(client: docker.DockerClient, image_id: str) -> Iterator[tarfile.TarFile]:
    """The engine's `docker save` stream, read as it comes; a cut or garbled one (the
    engine went away) is an ExportError."""
    try:
        chunks = client.api.get_image(image_id, chunk_size=1 << 20)
        raw = io.BufferedReader(Chunks(iter(chunks)), 1 << 20)
        with tarfile.open(fileobj=raw, mode="r|") as saved:
            yield saved
    except docker.errors.APIError as exc:
        raise ExportError(f"the engine cannot save {image_id[:19]}: {exc.explanation}") from None
    except (tarfile.TarError, OSError) as exc:
        raise ExportError(f"the engine's save of {image_id[:19]} broke off: {exc}") from None


def _copy(source: IO[bytes], out: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while piece := source.read(1 << 20):
        digest.update(piece)
        out.write(piece)
    return "sha256:" + digest.hexdigest()


class Saved:
    """An image as the engine saves it: its exact config at once, its layers on demand."""

    def __init__(self, client: docker.DockerClient, image_id: str) -> None:
        try:
            self.diff_ids: list[str] = client.images.get(image_id).attrs["RootFS"]["Layers"]
        except docker.errors.ImageNotFound:
            raise ExportError(f"{image_id[:19]} is not on this engine any more") from None
        self.client, self.id = client, image_id
        files: dict[str, bytes] = {}
        with _saved(client, image_id) as saved:
            for member in saved:
                if member.isfile() and not member.name.endswith("layer.tar"):
                    source = saved.extractfile(member)
                    if source is not None and member.size < 1 << 20:
                        files[member.name] = source.read()
        try:
            (entry,) = json.loads(files["manifest.json"])
            self.config = files[entry["Config"]]
            self._names = {name: i for i, name in enumerate(entry["Layers"])}
        except (KeyError, ValueError) as exc:
            raise ExportError(
                f"{image_id[:19]}: the saved image has no readable manifest ({exc})"
            ) from None
        if "sha256:" + hashlib.sha256(self.config).hexdigest() != image_id:
            raise ExportError(f"{image_id[:19]}: the saved config is not the image's")
        if len(self._names) != len(self.diff_ids):
            raise ExportError(
                f"{image_id[:19]}: the saved image lists other layers than the engine"
            )

    def layers(self, wanted: set[int], folder: Path) -> dict[int, Path]:
        """The layers at the `wanted` indices (bottom first), written to `folder` as i.tar
        and each checked against its diff id."""
        layers: dict[int, Path] = {}
        if wanted:
            with _saved(self.client, self.id) as saved:
                for member in saved:
                    index = self._names.get(member.name)
                    if index not in wanted or not member.isfile():
                        continue
                    source = saved.extractfile(member)
                    assert source is not None  # a regular file
                    path = folder / f"{index}.tar"
                    with path.open("wb") as out:
                        got = _copy(source, out)
                    if got != self.diff_ids[index]:
                        raise ExportError(
                            f"{self.id[:19]}: layer {index} is not {self.diff_ids[index]}"
                        )
                    layers[index] = path
        if missing := wanted - set(layers):
            raise ExportError(f"{self.id[:19]}: the saved image lacks layers {sorted(missing)}")
        return layers
