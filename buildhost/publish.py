"""Publishing a service image (on the build host): the image itself, and delta bundles
from the last K published versions, both in the same registry (a gateway needs no second
server). The layout in the registry is services/images/offers.py's.
"""

import tempfile
from collections.abc import Callable
from pathlib import Path

import docker

from buildhost.trust import TrustFolder, sign_release
from services.images import registry as reg
from services.images.export import save
from services.images.image_delta import make_bundle
from services.images.offers import (
    DELTA_BUNDLE,
    DELTA_CONFIG,
    DIFF_IDS,
    FROM,
    HISTORY,
    VERSION,
    delta_tag,
    index,
    version_tag,
)
from services.images.recipes import LABEL

KEEP = 3  # bundles from the last three versions: a gateway a few updates behind still gets one


def published(registry: str, repo: str, strategy: str) -> list[str]:
    """Config digests of the versions published so far under STRATEGY, newest first."""
    try:
        current = reg.manifest(registry, repo, strategy)["config"]["digest"]
    except reg.RegistryError as exc:
        if exc.status == 404:
            return []
        raise
    history = ((index(registry, repo, current) or {}).get("annotations") or {}).get(HISTORY, "")
    return [current] + [d for d in history.split(",") if d and d != current]


def push(client: docker.DockerClient, image_id: str, repository: str, tag: str) -> None:
    client.images.get(image_id).tag(repository, tag)
    for event in client.api.push(repository, tag, stream=True, decode=True):
        if "error" in event:
            raise reg.RegistryError(f"push of {repository}:{tag} failed: {event['error']}")


def _local(
    client: docker.DockerClient, registry: str, repo: str, strategy: str, digest: str
) -> bool:
    """Make sure an earlier version is on this engine (pulled by its version tag if not)."""
    try:
        client.images.get(digest)
        return True
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(f"{registry}/{repo}", version_tag(strategy, digest))
        return True
    except docker.errors.APIError:
        return False


def publish(
    client: docker.DockerClient,
    registry: str,
    service: str,
    strategy: str,
    keep: int = KEEP,
    say: Callable[[str], None] = print,
    trust: TrustFolder | None = None,
    image_id: str = "",
) -> list[tuple[str, int]]:
    """Push agile/SERVICE:STRATEGY (or the image `image_id` as it) and its bundles,
    signed as the next release with the keys in `trust` (None: unsigned, which gateways
    refuse by default); (from version, bundle bytes) each."""
    repo = f"agile/{service}"
    image = client.images.get(image_id or f"{repo}:{strategy}")
    earlier = [d for d in published(registry, repo, strategy) if d != image.id][:keep]
    for tag in (strategy, version_tag(strategy, image.id)):
        push(client, image.id, f"{registry}/{repo}", tag)
    say(f"{service}: pushed {registry}/{repo}:{strategy} ({image.id[7:19]})")
    made, descriptors, signed = [], [], []
    with tempfile.TemporaryDirectory(prefix="agile-publish-") as tmp:
        new_folder = Path(tmp, "new")
        new_folder.mkdir()
        new = save(client, image.id, new_folder)
        for old_id in earlier:
            if not _local(client, registry, repo, strategy, old_id):
                say(f"{service}: {old_id[7:19]} is not here nor in the registry: no delta")
                continue
            folder = Path(tmp, old_id[7:19])
            folder.mkdir()
            bundle = make_bundle(save(client, old_id, folder), new)
            digest = reg.put_blob(registry, repo, bundle)
            descriptors.append(
                {
                    "mediaType": DELTA_BUNDLE,
                    "digest": digest,
                    "size": len(bundle),
                    "annotations": {FROM: old_id},
                }
            )
            made.append((old_id, len(bundle)))
            signed.append((old_id, digest, len(bundle)))
            say(f"{service}: delta from {old_id[7:19]}: {len(bundle):,} bytes")
    empty = b"{}"
    reg.put_manifest(
        registry,
        repo,
        delta_tag(image.id),
        {
            "schemaVersion": 2,
            "mediaType": reg.OCI_MANIFEST,
            "config": {
                "mediaType": DELTA_CONFIG,
                "digest": reg.put_blob(registry, repo, empty),
                "size": len(empty),
            },
            "layers": descriptors,
            "annotations": {
                HISTORY: ",".join([image.id, *earlier]),
                DIFF_IDS: ",".join(new.diff_ids),
                VERSION: image.labels.get(f"{LABEL}.version", ""),
            },
        },
    )
    if trust is None:
        say(f"{service}: UNSIGNED (no release key): gateways refuse it unless allow-unsigned")
    else:
        version = image.labels.get(f"{LABEL}.version", "")
        release = sign_release(trust, registry, service, strategy, image.id, version, signed)
        say(f"{service}: signed as release {release}, with {len(signed)} delta(s)")
    return made
