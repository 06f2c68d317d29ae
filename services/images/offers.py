"""The delta bundles' format in the registry, as the publisher writes it and a gateway
reads it. For agile/SERVICE:STRATEGY with config digest D the registry holds:
- STRATEGY and STRATEGY-<D[:12]>: the image (the second keeps each version pullable);
- delta-<D>: an OCI manifest whose layers are the bundles that make D, each annotated
  with the config digest it starts from, and whose annotation names the versions
  published before (the next publish makes its bundles from those).
"""

from dataclasses import dataclass
from typing import Any

from services.images import registry as reg

DELTA_CONFIG = "application/vnd.eclipse.agail.delta.config.v1+json"
DELTA_BUNDLE = "application/vnd.eclipse.agail.delta.bundle.v1"
FROM = "org.eclipse.agail.delta.from"
HISTORY = "org.eclipse.agail.delta.history"
# What a gateway's plan needs of the image, so that it need not fetch the config blob
# (5.6 KB: more than a one-line change's whole bundle).
DIFF_IDS = "org.eclipse.agail.delta.diff-ids"
VERSION = "org.eclipse.agail.delta.version"


def delta_tag(config_digest: str) -> str:
    return "delta-" + config_digest.removeprefix("sha256:")


def version_tag(strategy: str, config_digest: str) -> str:
    return f"{strategy}-{config_digest.removeprefix('sha256:')[:12]}"


@dataclass(frozen=True)
class Offer:
    """A bundle in the registry that makes an image from one the gateway has."""

    from_id: str
    digest: str
    size: int


def index(registry: str, repo: str, config_digest: str) -> dict[str, Any] | None:
    """The delta index published for an image (None if none: an older publisher)."""
    try:
        return reg.manifest(registry, repo, delta_tag(config_digest), reg.OCI_MANIFEST)
    except reg.RegistryError as exc:
        if exc.status == 404:
            return None
        raise


def offers(found: dict[str, Any] | None) -> list[Offer]:
    """The bundles a delta index lists."""
    return [
        Offer(layer["annotations"][FROM], layer["digest"], int(layer["size"]))
        for layer in (found or {}).get("layers", [])
        if layer.get("mediaType") == DELTA_BUNDLE and FROM in layer.get("annotations", {})
    ]
