"""Which registry blobs an engine knows it has: a pull skips a present layer only then.

The engine's pull starts its layer downloads before it has the image config, so it
knows a layer's diff id only from what it recorded on an earlier pull or push: which
diff id that blob digest unpacks to. A layer that came by `docker load` (a delta
update, an image provisioned from a tarball) or by a build never pushed has no such
record, and the next pull downloads it again although the layer is here. The record
is not in the Engine API; it is in the engine's data root
(image/DRIVER/distribution/diffid-by-digest, the same layout from Docker 1.10 to 27's
graph drivers), which the update service can read on its own gateway.
"""

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DiffIdOf = Callable[[str], str | None]


def known_blobs(client: Any, image_ids: Iterable[str]) -> DiffIdOf | None:
    """digest → the diff id the engine (a docker.DockerClient) recorded for that blob, or
    None if it recorded none; None instead of the function when its records cannot be
    read here: an engine on another host (its data root is not this one's, as the
    images it lists show), another image store (containerd's), or no permission."""
    try:
        info = client.info()
        images = Path(info["DockerRootDir"]) / "image" / info["Driver"]
        content = images / "imagedb" / "content"
        if not content.is_dir() or not all(_file(content, i).is_file() for i in image_ids):
            return None
    except (OSError, KeyError, TypeError, ValueError):
        return None
    records = images / "distribution" / "diffid-by-digest"  # made at the first pull

    def diff_id(digest: str) -> str | None:
        try:
            return _file(records, digest).read_text().strip()
        except (OSError, ValueError):
            return None

    return diff_id


def _file(folder: Path, digest: str) -> Path:
    algorithm, _, hexa = digest.partition(":")
    if not hexa or "/" in hexa or "/" in algorithm:
        raise ValueError(f"not a digest: {digest!r}")
    return folder / algorithm / hexa
