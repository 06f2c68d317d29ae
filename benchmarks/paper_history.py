"""Delta updates over this project's real history, not one chosen change (independent
studies, e.g. Rugix over 48 monthly Debian updates, publish the spread and find deltas
that cost more than the whole image when much changed).

The last commits that changed what a service image holds (the shipped code, or the
dependencies: each commit built with its own pyproject.toml), oldest first, each built
and published in turn as the next release (its bundles made from the releases before,
signed). A gateway engine of its own starts on the oldest and takes each next one as the
update service does: per update the plan's three ways — the bundle, only the missing
layers, the engine's pull — in bytes, the way it took, and the bytes that way fetched
from the registry. The rule checked: an update takes the smallest way (snapd drops a
delta too close to the full download; here the pull wins any tie).
"""

from collections.abc import Iterator
from pathlib import Path

import docker

from buildhost.build import build, version_reference
from buildhost.paper_rows import HistoryUpdate
from buildhost.publish import publish
from buildhost.versions import checkouts
from services.images.trust import Policy
from services.images.update import fetch, plan, pull
from services.paths import SHIPPED
from testkit.docker_images import forget_images
from testkit.flaky_link import FlakyLink
from testkit.local_registry import LocalRegistry
from testkit.private_engine import PrivateEngine

# What a service image holds that a commit can change.
IMAGE_PATHS = (*SHIPPED, "pyproject.toml")


def quiet(_line: str) -> None:
    pass


def no_progress(_layer: str, _done: int, _total: int) -> None:
    pass


def history(
    client: docker.DockerClient,
    registry: LocalRegistry,
    work: Path,
    service: str,
    strategy: str,
    updates: int,
) -> Iterator[HistoryUpdate]:
    """`updates` updates over the last `updates` + 1 commits that changed the image."""
    trees = checkouts(IMAGE_PATHS, updates + 1, work / "history" / strategy, own_dependencies=True)
    folder = work / f"history-{service}-{strategy}"
    (folder / "engine").mkdir(parents=True)
    engine = PrivateEngine(folder / "engine")
    link = FlakyLink(registry.address, engine.listen(int(registry.address.rsplit(":", 1)[1])))
    gateway = engine.client()
    trust = registry.policy(folder / "gateway")
    made: list[str] = []
    try:
        for n, tree in enumerate(trees):
            for _ in build(client, service, strategy, say=quiet, code=tree, retag=False):
                pass
            made.append(version_reference(service, strategy, code=tree))
            image = client.images.get(made[-1]).id
            publish(
                client,
                registry.address,
                service,
                strategy,
                say=quiet,
                trust=registry.trust,
                image_id=image,
            )
            if n == 0:  # where the gateway starts
                first = plan(gateway, registry.address, service, strategy, trust=trust)
                pull(gateway, first, no_progress)
                continue
            yield taken(gateway, registry, service, strategy, trust, tree.name, image)
    finally:
        link.close()
        engine.stop()
        forget_images(client, made)  # the registry has them; this engine need not


def taken(
    gateway: docker.DockerClient,
    registry: LocalRegistry,
    service: str,
    strategy: str,
    trust: Policy,
    commit: str,
    image: str,
) -> HistoryUpdate:
    """The gateway's update to `image` (the registry's newest), as the update service
    takes it; the version before leaves the engine, as the update service prunes it."""
    the_plan = plan(gateway, registry.address, service, strategy, trust=trust)
    before = {i.id for i in gateway.images.list()}
    fetched = registry.fetched(outside="agile/trust")
    made, method = fetch(gateway, registry.address, the_plan, quiet, no_progress)
    if made != image:
        raise SystemExit(f"{service} {commit}: the update by {method} did not make {image[:19]}")
    row = HistoryUpdate(
        service=service,
        strategy=strategy,
        commit=commit,
        delta_bytes=the_plan.delta.size if the_plan.delta else 0,
        layers_bytes=the_plan.pull_bytes if the_plan.fetch_bytes is None else the_plan.fetch_bytes,
        pull_bytes=the_plan.pull_bytes,
        method=method,
        fetched_bytes=registry.fetched(outside="agile/trust") - fetched,
    )
    for old in before - {image}:
        gateway.images.remove(old, force=True)
    return row
