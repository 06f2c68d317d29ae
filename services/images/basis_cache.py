"""What the last delta made, kept on the gateway as the next delta's basis.

Docker 20.10 writes the whole image to a folder of its own before `docker save` streams
a byte: 1.7 s for storage's 188 MB whatever is asked of it, most of a delta's apply. The
next fix of a service changes the layers the last one changed, and those are the layers
the last delta made: kept here with the image's config, they spare the save. So are the
layers a fetch of the missing ones unpacked. Only the newest image's, at most `limit`
bytes of layers (a large layer is not worth the SD card's writes: each that fits in the
room left); every read is checked against its digest, and whatever is missing or wrong
is taken from the engine as before.
"""

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

BASIS = "basis"  # its folder, beside the update journal
LIMIT = 32 << 20
CONFIG_MAX = 1 << 20
HEX = "0123456789abcdef"


def _name(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or set(hexdigest) - set(HEX):
        raise ValueError(f"not a sha256 digest: {digest[:80]!r}")
    return hexdigest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    return "sha256:" + digest.hexdigest()


class BasisCache:
    """A folder of one image's config (`<id>.json`) and the layers a delta made of it
    (`<diff id>.tar`)."""

    def __init__(self, folder: Path, limit: int = LIMIT) -> None:
        self.folder, self.limit = folder, limit
        self.served = False  # a delta took its whole basis from here

    def config(self, image_id: str) -> bytes | None:
        path = self.folder / f"{_name(image_id)}.json"
        try:
            if path.stat().st_size > CONFIG_MAX:
                return None
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return data if "sha256:" + hashlib.sha256(data).hexdigest() == image_id else None

    def layer(self, diff_id: str) -> Path | None:
        path = self.folder / f"{_name(diff_id)}.tar"
        try:
            return path if _sha256(path) == diff_id else None
        except FileNotFoundError:
            return None

    def keeping(self) -> "Keeping":
        self.folder.mkdir(parents=True, exist_ok=True)
        return Keeping(self)


class Keeping:
    """The next image's layers as they are made, then kept in place of the last's: each
    layer that fits in the room the ones before it left."""

    def __init__(self, cache: BasisCache) -> None:
        self.cache, self.room = cache, cache.limit
        self.part = cache.folder / "part.tar"
        self.made: set[str] = set()
        self._fits = False

    def tee(self, chunks: Iterable[bytes], at_least: int = 0) -> Iterator[bytes]:
        """The chunks of one layer (of `at_least` bytes), written to the cache as they
        pass if it fits."""
        self._fits = at_least <= self.room
        with self.part.open("wb") as out:
            written = 0
            for chunk in chunks:
                if self._fits:
                    written += len(chunk)
                    self._fits = written <= self.room
                    if self._fits:
                        out.write(chunk)
                yield chunk
        if self._fits:
            self.room -= written

    def made_layer(self, diff_id: str) -> None:
        """The layer just teed came out as `diff_id` (kept if it fit)."""
        if self._fits:
            self.part.rename(self.cache.folder / f"{_name(diff_id)}.tar")
            self.made.add(f"{_name(diff_id)}.tar")
        self.part.unlink(missing_ok=True)
        self._fits = False

    def done(self, image_id: str, config: bytes) -> None:
        """The image was loaded: its config and layers are the cache now."""
        name = f"{_name(image_id)}.json"
        (self.cache.folder / name).write_bytes(config)
        for path in self.cache.folder.iterdir():
            if path.name not in self.made | {name}:
                path.unlink()
