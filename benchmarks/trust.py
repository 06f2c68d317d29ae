"""What signed releases add to an update, side by side with the same plan unsigned, in
one run: the bytes a gateway downloads to check a release and the time it takes, per
update and per fleet rollout.

    ./dev bench trust [--quick] [--gateways N] [--releases K]

Debian's docker-registry holds agile/bench:multistage (a tiny image), published K times
as a new signed release, beside the signed targets of five more service images with
three delta bundles each (what `images publish` signs for a stack: the targets metadata
a gateway downloads is the whole stack's). N gateways, each with verified metadata of
its own (warm from the release before, as a gateway in service is), plan each release:
- baseline: the plan without signatures (updater:allow-unsigned: the tag's manifest);
- signed: the plan a gateway makes, the metadata refreshed and verified first.
Bytes are counted at the registry (its log); times on this machine's clock.

`--quick` (the suite's): 2 gateways, 2 releases. Full: 50 gateways, 3 releases.
"""

import hashlib
import io
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from statistics import mean

import docker

from services.engine import connect
from services.images.trust import Policy, delta_path, target_path, verify
from services.images.update import plan
from testkit.docker_images import make_tiny_image
from testkit.local_registry import LocalRegistry

SERVICE = "bench"
OTHERS = ("bus", "core", "storage", "ble", "zigbee")


def _argument(name: str, default: int) -> int:
    args = sys.argv[1:]
    return int(args[args.index(name) + 1]) if name in args else default


def _stack_targets(registry: LocalRegistry) -> None:
    """The signed targets of five more images and their bundles (digests made up: only
    the metadata's size matters here, and no gateway asks for them)."""
    from tuf.api.metadata import TargetFile

    def fake(path: str, size: int, image: bool) -> TargetFile:
        digest = hashlib.sha256(path.encode()).hexdigest()
        custom = {"image": "sha256:" + digest, "release": 1, "version": "0.1.0-0000000000"}
        return TargetFile(size, {"sha256": digest}, path, {"custom": custom} if image else None)

    for service in OTHERS:
        changes: dict[str, TargetFile | None] = {}
        path = target_path(service, "multistage")
        changes[path] = fake(path, 1_470, image=True)
        for n in range(3):
            from_id = "sha256:" + hashlib.sha256(f"{path}{n}".encode()).hexdigest()
            changes[delta_path(service, "multistage", from_id)] = fake(f"{path}{n}", 1_247, False)
        registry.trust.sign_role(service, changes)
    registry.trust.upload(registry.address)


def _release(client: docker.DockerClient, registry: LocalRegistry, base: str, n: int) -> None:
    image, _ = client.images.build(
        fileobj=io.BytesIO(f"FROM {base}\nRUN echo {n} > /release\n".encode()), rm=True
    )
    registry.push(client, image.id, SERVICE, "multistage")
    image.tag(f"agile/{SERVICE}", "multistage")


def _measured(registry: LocalRegistry, check: Callable[[], object]) -> tuple[int, int, float]:
    """(bytes of the image's repository, bytes of the metadata, seconds) of one check."""
    image, metadata = registry.served(f"agile/{SERVICE}"), registry.served("agile/trust")
    started = time.perf_counter()
    check()
    took = time.perf_counter() - started
    return (
        registry.served(f"agile/{SERVICE}") - image,
        registry.served("agile/trust") - metadata,
        took,
    )


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    gateways = _argument("--gateways", 2 if quick else 50)
    releases = _argument("--releases", 2 if quick else 3)
    client = connect()
    work = Path(tempfile.mkdtemp(prefix="agile-bench-trust-"))
    (work / "registry").mkdir()
    registry = LocalRegistry(work / "registry")
    base = make_tiny_image(client)
    try:
        _stack_targets(registry)
        _release(client, registry, base, 0)
        fleet = [registry.policy(work / f"gateway-{g}") for g in range(gateways)]
        for policy in fleet:  # warm: each has verified the release before
            verify(policy, registry.address, SERVICE, "multistage")
        unsigned = Policy(None, work / "unsigned", allow_unsigned=True)
        rows: dict[str, list[tuple[int, int, float]]] = {"unsigned": [], "signed": [], "verify": []}
        for n in range(1, releases + 1):
            _release(client, registry, base, n)
            for policy in fleet:
                for name, trust in (("unsigned", unsigned), ("signed", policy)):
                    check = partial(
                        plan, client, registry.address, SERVICE, "multistage", trust=trust
                    )
                    rows[name].append(_measured(registry, check))
            for policy in fleet:  # verification alone: nothing new since the plan
                verifying = partial(verify, policy, registry.address, SERVICE, "multistage")
                rows["verify"].append(_measured(registry, verifying))
    finally:
        registry.stop()
    targets = sum(len(registry.trust.load(r).signed.targets) for r in registry.trust.roles())
    base_bytes = mean(a + b for a, b, _ in rows["unsigned"])
    signed_bytes = mean(a + b for a, b, _ in rows["signed"])
    metadata = mean(b for _, b, _ in rows["signed"])
    base_ms = 1000 * mean(t for *_, t in rows["unsigned"])
    signed_ms = 1000 * mean(t for *_, t in rows["signed"])
    idle_bytes = mean(b for _, b, _ in rows["verify"])
    idle_ms = 1000 * mean(t for *_, t in rows["verify"])
    print(
        f"signed releases: {gateways} gateways x {releases} releases; "
        f"{targets} signed targets (6 images, 15 delta bundles)"
    )
    print(f"{'per update (mean)':<40}{'unsigned':>12}{'signed':>12}{'ratio':>9}")
    print(
        f"{'  bytes the plan fetches':<40}{base_bytes:>12,.0f}{signed_bytes:>12,.0f}"
        f"{signed_bytes / base_bytes:>8.2f}x"
    )
    print(f"{'  of which signed metadata':<40}{0:>12,}{metadata:>12,.0f}")
    print(f"{'  plan time, ms':<40}{base_ms:>12.1f}{signed_ms:>12.1f}{signed_ms / base_ms:>8.2f}x")
    print(
        f"{'  a check with no new release: bytes, ms':<40}{'':>12}{idle_bytes:>8,.0f} B"
        f"{idle_ms:>7.1f} ms"
    )
    print(f"fleet rollout, {gateways} gateways (one release)")
    print(
        f"{'  bytes':<40}{base_bytes * gateways:>12,.0f}{signed_bytes * gateways:>12,.0f}"
        f"{signed_bytes / base_bytes:>8.2f}x"
    )
    print(
        f"{'  plan time one after another, s':<40}{base_ms * gateways / 1000:>12.2f}"
        f"{signed_ms * gateways / 1000:>12.2f}{signed_ms / base_ms:>8.2f}x"
    )


if __name__ == "__main__":
    main()
