"""Image layers: per-layer sizes, and which bytes an image shares with others.

A layer is only shared when the whole chain below it is the same (that is what
the engine stores once and what a pull skips), so layers are identified by their
chain id, not by their content digest alone. `docker system df` is known to get
sharing wrong; this computes it from the chains.
"""

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# Instructions that add history entries but no layer.
_METADATA = (
    "ENV ",
    "CMD ",
    "LABEL ",
    "EXPOSE ",
    "ENTRYPOINT ",
    "USER ",
    "ARG ",
    "HEALTHCHECK ",
    "VOLUME ",
    "STOPSIGNAL ",
    "SHELL ",
    "MAINTAINER ",
    "ONBUILD ",
)


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    size: int  # uncompressed bytes
    created_by: str


@dataclass
class ImageLayers:
    id: str
    tags: list[str]
    size: int
    layers: list[Layer]
    shared_bytes: int = 0
    unique_bytes: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.tags[0] if self.tags else self.id.removeprefix("sha256:")[:12]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain ids: ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) DiffID(Ln))."""
    chains: list[str] = []
    for diff in diff_ids:
        if not chains:
            chains.append(diff)
        else:
            digest = hashlib.sha256(f"{chains[-1]} {diff}".encode()).hexdigest()
            chains.append(f"sha256:{digest}")
    return chains


def _is_empty(entry: dict[str, Any]) -> bool:
    created_by = entry.get("CreatedBy", "")
    body = created_by.split("#(nop)", 1)[1].strip() if "#(nop)" in created_by else created_by
    return entry.get("Size", 0) == 0 and ("#(nop)" in created_by or body.startswith(_METADATA))


def layers_of(diff_ids: list[str], history: list[dict[str, Any]]) -> list[Layer]:
    """Pair layers with the history entries that made them (history is newest first)."""
    steps = [h for h in reversed(history) if not _is_empty(h)]
    if len(steps) != len(diff_ids):
        # History that does not line up (squashed or imported images): keep the
        # layers, attribute what we can.
        steps = [h for h in reversed(history) if h.get("Size", 0) > 0]
        if len(steps) != len(diff_ids):
            steps = [{"Size": 0, "CreatedBy": "?"}] * len(diff_ids)
    return [
        Layer(chain, diff, int(h.get("Size", 0)), h.get("CreatedBy", ""))
        for chain, diff, h in zip(chain_ids(diff_ids), diff_ids, steps, strict=True)
    ]


def share(images: list[ImageLayers]) -> int:
    """Fill in shared/unique bytes; return the bytes on disk for all images together."""
    users = Counter(layer.chain_id for image in images for layer in image.layers)
    for image in images:
        image.shared_bytes = sum(x.size for x in image.layers if users[x.chain_id] > 1)
        image.unique_bytes = sum(x.size for x in image.layers if users[x.chain_id] == 1)
    return bytes_on_disk(images)


def bytes_on_disk(images: Iterable[ImageLayers]) -> int:
    """The images' bytes together, each layer chain counted once."""
    sizes = {x.chain_id: x.size for image in images for x in image.layers}
    return sum(sizes.values())


def analyse(
    images: Iterable[dict[str, Any]], history: Callable[[str], list[dict[str, Any]]]
) -> list[ImageLayers]:
    """Images as the engine inspects them (Id, RepoTags, Size, RootFS, Config)."""
    result = []
    for attrs in images:
        diff_ids = attrs.get("RootFS", {}).get("Layers", []) or []
        result.append(
            ImageLayers(
                id=attrs["Id"],
                tags=[t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"],
                size=int(attrs.get("Size", 0)),
                layers=layers_of(diff_ids, history(attrs["Id"])),
                labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
            )
        )
    share(result)
    return sorted(result, key=lambda i: i.name)


def local_chains(client: Any) -> tuple[set[str], set[str]]:
    """The layer chains and the image ids on an engine (a docker.DockerClient)."""
    chains: set[str] = set()
    ids = set()
    for image in client.images.list():
        ids.add(image.id)
        chains.update(chain_ids(image.attrs.get("RootFS", {}).get("Layers", []) or []))
    return chains, ids
