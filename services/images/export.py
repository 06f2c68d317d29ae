"""An image's exact config and layer tars, taken from the engine with `docker save`.

One pass over the stream, stopped as soon as everything wanted is in hand. Docker 20.10
names a saved layer by its v1 id (manifest.json, which says which is which, comes last)
and newer engines by its digest, so a layer is known by its bytes alone: each candidate
is written while its sha256 is taken, and kept if that is a wanted diff id. Only members
of a wanted layer's length are candidates when the caller knows the lengths (a delta
bundle names its bases'): then nothing else is written to the SD card. The config is
the small file whose sha256 is the image id. (What remains is the engine's own: Docker
20.10 writes the whole image to a folder of its own before it streams a byte — 1.6 s of
the 1.7 s taking storage's top layer took here.)
"""

import hashlib
import io
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker

from services.errors import EngineError

CONFIG_MAX = 1 << 20  # an image config is a few KB


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
    engine went away) is an ExportError. Left early, the stream is let go (the engine
    stops writing it when its connection closes)."""
    chunks = client.api.get_image(image_id, chunk_size=1 << 20)  # a generator: runs on read
    try:
        raw = io.BufferedReader(Chunks(chunks), 1 << 20)
        with tarfile.open(fileobj=raw, mode="r|") as saved:
            yield saved
    except docker.errors.APIError as exc:
        raise ExportError(f"the engine cannot save {image_id[:19]}: {exc.explanation}") from None
    except (tarfile.TarError, OSError) as exc:
        raise ExportError(f"the engine's save of {image_id[:19]} broke off: {exc}") from None
    finally:
        chunks.close()


def _copy(source: IO[bytes], out: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while piece := source.read(1 << 20):
        digest.update(piece)
        out.write(piece)
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Saved:
    """An image as the engine saves it: its exact config and the layers taken (index ->
    i.tar, bottom first), each checked."""

    id: str
    diff_ids: list[str]
    config: bytes
    layers: dict[int, Path]


def save(
    client: docker.DockerClient,
    image_id: str,
    folder: Path,
    wanted: Mapping[int, int | None] | None = None,
    diff_ids: list[str] | None = None,
) -> Saved:
    """The image's config and the layers at the `wanted` indices (None: all), written to
    `folder`; a wanted layer's tar length, where known, spares writing other layers.
    `diff_ids`: the image's layers, where the caller has read them already."""
    if diff_ids is None:
        try:
            diff_ids = client.images.get(image_id).attrs["RootFS"]["Layers"]
        except docker.errors.ImageNotFound:
            raise ExportError(f"{image_id[:19]} is not on this engine any more") from None
    if wanted is None:
        wanted = dict.fromkeys(range(len(diff_ids)))
    if not set(wanted) <= set(range(len(diff_ids))):
        raise ExportError(f"{image_id[:19]} has not got the layers asked for")
    by_digest: dict[str, list[int]] = {}
    for i in wanted:
        by_digest.setdefault(diff_ids[i], []).append(i)
    lengths = set(wanted.values())
    config, layers, scratch = b"", {}, folder / "candidate.tar"
    with _saved(client, image_id) as saved:
        for member in saved:
            if not member.isfile():
                continue
            source = saved.extractfile(member)
            assert source is not None  # a regular file
            if not config and member.size < CONFIG_MAX:
                data = source.read()
                if "sha256:" + hashlib.sha256(data).hexdigest() == image_id:
                    config = data
                    if not by_digest:
                        break
                    continue
                source = io.BytesIO(data)
            if not by_digest or (None not in lengths and member.size not in lengths):
                continue
            with scratch.open("wb") as out:
                got = _copy(source, out)
            if got in by_digest:
                first, *more = by_digest.pop(got)
                path = scratch.rename(folder / f"{first}.tar")
                layers.update(dict.fromkeys([first, *more], path))
                if config and not by_digest:
                    break
    scratch.unlink(missing_ok=True)
    if not config:
        raise ExportError(f"{image_id[:19]}: the saved image holds no config of that id")
    if by_digest:
        missing = sorted(i for indices in by_digest.values() for i in indices)
        raise ExportError(f"{image_id[:19]}: the saved image lacks layers {missing}")
    return Saved(image_id, diff_ids, config, layers)
