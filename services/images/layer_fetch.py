"""An image fetched by the update service itself: only the layer blobs the engine lacks.

The engine's own pull downloads again every layer it has but cannot match to a blob
(one that came by `docker load`, as after a delta update: services.images.known_blobs).
Fetching the blobs whose layer chain is missing, unpacking each as it comes (checked
against its digest and its diff id) and loading them downloads only what is not here.
A mismatch anywhere raises before anything is loaded.
"""

import json
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import docker

from services.errors import RegistryError
from services.images import registry as reg
from services.images.basis_cache import BasisCache
from services.images.image_load import LoadTar
from services.images.layers import chain_ids, local_chains


class FetchError(RegistryError, RuntimeError):
    """The registry's image is not one this can fetch layer by layer."""


def _unpacked(media_type: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A layer blob's tar bytes, unpacked as they come; FetchError if it does not unpack."""
    try:
        yield from _unpacking(media_type, chunks)
    except zlib.error as exc:
        raise FetchError(f"a layer blob does not unpack ({exc})") from None


def _unpacking(media_type: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    if media_type.endswith("gzip"):
        gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for chunk in chunks:
            while chunk:  # a MiB at a time: a blob that unpacks a thousandfold stays small
                yield gunzip.decompress(chunk, 1 << 20)
                chunk = gunzip.unconsumed_tail
        yield gunzip.flush()
        if not gunzip.eof:
            raise FetchError("a gzip layer blob ended before its stream did")
    elif media_type.endswith((".tar", "rootfs.diff.tar")):
        yield from chunks
    else:
        raise FetchError(f"a layer of media type {media_type!r}")  # the engine's pull, then


def _counted(
    chunks: Iterable[bytes], blob: dict[str, Any], progress: Callable[[str, int, int], None]
) -> Iterator[bytes]:
    layer, done = blob["digest"].removeprefix("sha256:")[:12], 0
    for chunk in chunks:
        done += len(chunk)
        progress(layer, done, blob["size"])
        yield chunk


def fetch_layers(
    client: docker.DockerClient,
    registry: str,
    reference: str,
    config_digest: str,
    progress: Callable[[str, int, int], None],
    signed: tuple[str, int] | None = None,
    cache: BasisCache | None = None,
) -> str:
    """Load the image `config_digest` (the registry's `reference`, registry/repo:tag) from
    the blobs of the layers this engine lacks; its id. `signed`: the manifest's digest
    and size, to take it by (not by the tag). RegistryError, FetchError or LoadError if
    anything does not match: then nothing was loaded. The layers unpacked are kept in
    `cache`, the next delta's basis."""
    repo, tag = reference.removeprefix(f"{registry}/").rsplit(":", 1)
    if signed:
        manifest = json.loads(reg.manifest_bytes(registry, repo, signed[0], size=signed[1]))
    else:
        manifest = reg.manifest(registry, repo, tag)
    if manifest.get("config", {}).get("digest") != config_digest:
        raise FetchError(f"{reference} is no longer the image planned ({config_digest[:19]})")
    config = reg.blob(registry, repo, config_digest)
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    blobs = manifest["layers"]
    if len(blobs) != len(diff_ids):
        raise FetchError(f"{reference}: the manifest and the config list other layers")
    have, _ = local_chains(client)
    keeping = cache.keeping() if cache else None
    with (
        tempfile.TemporaryDirectory(prefix="agile-fetch-") as tmp,
        LoadTar(Path(tmp) / "load.tar", config, reference, len(diff_ids)) as load,
    ):
        for i, (chain, blob) in enumerate(zip(chain_ids(diff_ids), blobs, strict=True)):
            if chain in have:
                continue
            chunks = _counted(reg.blob_chunks(registry, repo, blob["digest"]), blob, progress)
            unpacked = _unpacked(blob["mediaType"], chunks)
            # A layer's tar is at least as long as its compressed blob.
            if (
                load.add(i, keeping.tee(unpacked, blob["size"]) if keeping else unpacked)
                != diff_ids[i]
            ):
                raise FetchError(f"layer {i} of {reference} unpacks to another diff id")
            if keeping:
                keeping.made_layer(diff_ids[i])
        load.load(client)
    if keeping:
        keeping.done(config_digest, config)
    return client.images.get(config_digest).id
