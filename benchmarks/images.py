"""Image sizes and update bytes of the four build strategies, side by side, in one run.

    ./dev bench images [--quick]

1. Every service image (bus, core, storage, ble, zigbee) in every strategy: its size;
   per strategy the stack's sum of image sizes and its bytes on disk with sharing.
2. Update bytes after a one-line code change in the storage service, per strategy:
   predicted (registry manifest + config vs the local layer chains) and measured (blob
   bytes the engine downloaded, from a local docker-registry's log), against baseline.
3. The same change and two more by delta bundles against plain pulls (benchmarks/deltas.py).

`--quick` (the suite's, so that it keeps running): storage, multi-stage only, and no
part 3 (`./dev bench deltas --quick` has a test of its own).
"""

import sys
from pathlib import Path

import docker

from benchmarks import deltas
from buildhost.build import SERVICES, STRATEGIES, build
from services.engine import connect
from services.images.layers import analyse, bytes_on_disk
from services.images.update import plan
from services.paths import ROOT
from testkit.local_registry import LocalRegistry


def built(client: docker.DockerClient, service: str, strategy: str, code: Path = ROOT) -> str:
    for _ in build(client, service, strategy, say=lambda _line: None, code=code):
        pass
    return client.images.get(f"agile/{service}:{strategy}").id


def update_bytes(
    client: docker.DockerClient, registry: LocalRegistry, strategy: str
) -> tuple[int, int]:
    """(predicted, measured) bytes of pulling storage v2 where v1 runs."""
    v1 = built(client, "storage", strategy)
    registry.push(client, v1, "storage", strategy)
    with deltas.probe() as code:  # the one-line code change
        v2 = built(client, "storage", strategy, code)
    registry.push(client, v2, "storage", strategy)
    client.images.get(v1).tag("agile/storage", strategy)
    client.images.remove(f"{registry.address}/agile/storage:{strategy}")
    client.images.remove(v2, force=True)
    predicted = plan(
        client,
        registry.address,
        "storage",
        strategy,
        trust=registry.policy(registry.folder / "gateway"),
    ).download_bytes
    before = registry.downloaded()
    client.images.pull(f"{registry.address}/agile/storage", strategy)
    measured = registry.downloaded() - before
    built(client, "storage", strategy)  # back to the current code
    return predicted, measured


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    services = ["storage"] if quick else list(SERVICES)
    strategies = ["multistage"] if quick else list(STRATEGIES)
    client = connect(timeout=900)
    print("Building every service in every strategy (cached layers are reused)...\n")
    ids = {(s, st): built(client, s, st) for st in strategies for s in services}
    images = {i.id: i for i in analyse([i.attrs for i in client.images.list()], client.api.history)}
    print(f"{'image size, MB':<16}" + "".join(f"{st:>14}" for st in strategies))
    for service in services:
        sizes = [images[ids[(service, st)]].size / 1e6 for st in strategies]
        print(f"{service:<16}" + "".join(f"{x:>14.1f}" for x in sizes))
    sums, disk = [], []
    for st in strategies:
        members = [images[ids[(s, st)]] for s in services]
        sums.append(sum(i.size for i in members) / 1e6)
        disk.append(bytes_on_disk(members) / 1e6)
    print(f"{'stack: sum':<16}" + "".join(f"{x:>14.1f}" for x in sums))
    print(f"{'stack: on disk':<16}" + "".join(f"{x:>14.1f}" for x in disk))
    print(f"{'on disk/first':<16}" + "".join(f"{x / disk[0]:>14.2f}" for x in disk))

    print("\nUpdate of storage after a one-line code change, bytes to download")
    registry = LocalRegistry()
    try:
        rows = {st: update_bytes(client, registry, st) for st in strategies}
    finally:
        registry.stop()
    print(f"{'':<16}" + "".join(f"{st:>14}" for st in strategies))
    print(f"{'predicted':<16}" + "".join(f"{rows[st][0]:>14,}" for st in strategies))
    print(f"{'measured':<16}" + "".join(f"{rows[st][1]:>14,}" for st in strategies))
    first = strategies[0]
    ratios = "".join(f"{rows[st][1] / rows[first][1]:>14.3f}" for st in strategies)
    print(f"{'vs ' + first:<16}" + ratios)

    if not quick:
        print("\n3. Delta updates (./dev bench deltas alone)")
        deltas.main()


if __name__ == "__main__":
    main()
