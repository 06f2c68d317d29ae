"""One image version made from another with a delta bundle (see services.images.delta).

Made where images are published; applied on the gateway against an image it has: the
old layers come from the engine (`docker save`, each checked against its diff id), the
new config and layers are made and checked against the digests the registry and the
new config give, and only the layers the engine lacks are loaded (`docker load` skips
layers whose chain it has). A mismatch anywhere raises before anything is loaded.
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
from services.images.export import Saved
from services.images.image_load import LoadError, LoadTar
from services.images.layers import chain_ids, local_chains


def _mapped(stack: ExitStack, path: Path) -> delta.Buffer:
    """A file's bytes, mapped: the page cache holds them, not the process's own memory."""
    if path.stat().st_size == 0:
        return b""
    f = stack.enter_context(path.open("rb"))
    return stack.enter_context(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ))


def make_bundle(
    old: Saved,
    old_layers: dict[int, Path],
    new: Saved,
    new_layers: dict[int, Path],
) -> bytes:
    """The bundle that makes `new` where `old` is: each new layer that `old` has is named,
    each other one patched from the old layer at its place (or compressed if none)."""
    config = delta.make(old.config, new.config)
    parts = [(delta.Part("delta", -1, len(config), len(new.config)), config)]
    with ExitStack() as stack:
        for i, diff_id in enumerate(new.diff_ids):
            length = new_layers[i].stat().st_size
            if diff_id in old.diff_ids:
                parts.append((delta.Part("same", old.diff_ids.index(diff_id), 0, length), b""))
                continue
            after = _mapped(stack, new_layers[i])
            if i in old_layers:
                made = delta.make_layer(_mapped(stack, old_layers[i]), after)
                parts.append((delta.Part("layer", i, len(made), length), made))
            else:
                made = delta.make(b"", after)
                parts.append((delta.Part("full", -1, len(made), length), made))
    return delta.pack(parts)


def apply_bundle(
    client: docker.DockerClient,
    bundle: bytes,
    old_id: str,
    new_id: str,
    repo_tag: str,
    check: Callable[[], None] = lambda: None,
) -> str:
    """Load the image `new_id` made from `old_id` (on this engine) and the bundle, tagged
    `repo_tag`; its id. DeltaError or ExportError if anything does not match: then
    nothing was loaded."""
    parts = delta.unpack(bundle)
    old = Saved(client, old_id)
    config_part, config_delta = parts[0]
    config = b"".join(delta.patch(old.config, config_delta, config_part.length))
    if "sha256:" + hashlib.sha256(config).hexdigest() != new_id:
        raise delta.DeltaError(f"the delta does not make the image {new_id[:19]}")
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    layer_parts = parts[1:]
    if len(layer_parts) != len(diff_ids):
        raise delta.DeltaError("the bundle has other layers than the image")
    have, _ = local_chains(client)
    needed = [i for i, chain in enumerate(chain_ids(diff_ids)) if chain not in have]
    bases = {layer_parts[i][0].basis for i in needed if layer_parts[i][0].kind != "full"}
    if not bases <= set(range(len(old.diff_ids))):
        raise delta.DeltaError(f"the bundle names layers {old_id[:19]} has not got")
    with tempfile.TemporaryDirectory(prefix="agile-delta-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        old_layers = old.layers(bases, folder)
        check()
        load = stack.enter_context(LoadTar(folder / "load.tar", config, repo_tag, len(diff_ids)))
        for i in needed:
            part, payload = layer_parts[i]
            basis = _mapped(stack, old_layers[part.basis]) if part.kind != "full" else b""
            with closing(delta.made_by(part, basis, payload)) as pieces:
                made = load.add(i, pieces)  # then let go of the mapped basis
            if made != diff_ids[i]:
                raise delta.DeltaError(f"layer {i} came out other than {diff_ids[i]}")
            check()
        try:
            load.load(client)
        except LoadError as exc:
            raise delta.DeltaError(str(exc)) from None
    return client.images.get(new_id).id
