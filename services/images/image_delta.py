"""One image version made from another with a delta bundle (see services.images.delta).

Made where images are published; applied on the gateway against an image it has: the
old layers come from the engine (one pass over `docker save`, each checked against its
diff id), the new config and layers are made and checked against the digests the
registry and the new config give, and only the layers the engine lacks are loaded
(`docker load` skips layers whose chain it has). A mismatch anywhere raises before
anything is loaded.
"""

import hashlib
import json
import mmap
import tempfile
from collections.abc import Callable
from contextlib import ExitStack, closing
from pathlib import Path

import docker

from services.images import delta
from services.images.basis_cache import BasisCache
from services.images.export import ExportError, Saved, save
from services.images.image_load import LoadError, LoadTar
from services.images.layers import chain_ids, local_chains


def _mapped(stack: ExitStack, path: Path) -> delta.Buffer:
    """A file's bytes, mapped: the page cache holds them, not the process's own memory."""
    if path.stat().st_size == 0:
        return b""
    f = stack.enter_context(path.open("rb"))
    return stack.enter_context(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ))


def make_bundle(old: Saved, new: Saved) -> bytes:
    """The bundle that makes `new` where `old` is (both saved whole): each new layer that
    `old` has is named, each other one patched from the old layer at its place (or
    compressed if none)."""
    config = delta.make(old.config, new.config)
    parts = [(delta.Part("delta", -1, len(config), len(new.config)), config)]
    with ExitStack() as stack:
        for i, diff_id in enumerate(new.diff_ids):
            length = new.layers[i].stat().st_size
            if diff_id in old.diff_ids:
                parts.append((delta.Part("same", old.diff_ids.index(diff_id), 0, length), b""))
                continue
            after = _mapped(stack, new.layers[i])
            if i in old.layers:
                made = delta.make_layer(_mapped(stack, old.layers[i]), after)
                basis = old.layers[i].stat().st_size
                parts.append((delta.Part("layer", i, len(made), length, diff_id, basis), made))
            else:
                made = delta.make(b"", after)
                parts.append((delta.Part("full", -1, len(made), length, diff_id), made))
    return delta.pack(parts)


def apply_bundle(
    client: docker.DockerClient,
    bundle: bytes,
    old_id: str,
    new_id: str,
    repo_tag: str,
    check: Callable[[], None] = lambda: None,
    cache: BasisCache | None = None,
) -> str:
    """Load the image `new_id` made from `old_id` (on this engine) and the bundle, tagged
    `repo_tag`; its id. DeltaError or ExportError if anything does not match: then
    nothing was loaded. The old image's config and layers come from the `cache` where it
    has them all (else from the engine), and what was made is kept there."""
    (config_part, config_delta), *layer_parts = delta.unpack(bundle)
    try:
        old_ids: list[str] = client.images.get(old_id).attrs["RootFS"]["Layers"]
    except docker.errors.ImageNotFound:
        raise ExportError(f"{old_id[:19]} is not on this engine any more") from None
    if any(p.kind == "same" and not 0 <= p.basis < len(old_ids) for p, _ in layer_parts):
        raise delta.DeltaError(f"the bundle names layers {old_id[:19]} has not got")
    diff_ids = [old_ids[p.basis] if p.kind == "same" else p.digest for p, _ in layer_parts]
    have, _ = local_chains(client)
    needed = [i for i, chain in enumerate(chain_ids(diff_ids)) if chain not in have]
    # The old layers the needed ones are made from, with their lengths: one pass takes all.
    # (A "same" layer is its old one: of the length it makes.)
    bases: dict[int, int | None] = {
        part.basis: part.length if part.kind == "same" else part.basis_length
        for part, _ in (layer_parts[i] for i in needed)
        if part.kind != "full"
    }
    with tempfile.TemporaryDirectory(prefix="agile-delta-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        old = _cached(cache, old_id, old_ids, bases) or save(client, old_id, folder, bases, old_ids)
        config = b"".join(delta.patch(old.config, config_delta, config_part.length))
        if "sha256:" + hashlib.sha256(config).hexdigest() != new_id:
            raise delta.DeltaError(f"the delta does not make the image {new_id[:19]}")
        if json.loads(config)["rootfs"]["diff_ids"] != diff_ids:
            raise delta.DeltaError("the bundle names other layers than the image has")
        check()
        load = stack.enter_context(LoadTar(folder / "load.tar", config, repo_tag, len(diff_ids)))
        keeping = cache.keeping() if cache else None
        for i in needed:
            part, payload = layer_parts[i]
            basis = _mapped(stack, old.layers[part.basis]) if part.kind != "full" else b""
            with closing(delta.made_by(part, basis, payload)) as pieces:
                made = load.add(i, keeping.tee(pieces, part.length) if keeping else pieces)
            if made != diff_ids[i]:
                raise delta.DeltaError(f"layer {i} came out other than {diff_ids[i]}")
            if keeping:
                keeping.made_layer(made)
            check()
        try:
            load.load(client)
        except LoadError as exc:
            raise delta.DeltaError(str(exc)) from None
    if keeping:
        keeping.done(new_id, config)
    return client.images.get(new_id).id


def _cached(
    cache: BasisCache | None, image_id: str, diff_ids: list[str], wanted: dict[int, int | None]
) -> Saved | None:
    """The image as `save` would give it, from the cache, if that has all `wanted`."""
    config = cache.config(image_id) if cache else None
    if cache is None or config is None:
        return None
    layers = {i: cache.layer(diff_ids[i]) for i in wanted}
    if None in layers.values():
        return None
    cache.served = True
    return Saved(image_id, diff_ids, config, {i: p for i, p in layers.items() if p})
