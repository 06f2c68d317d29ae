"""A fix's way to the gateway (the paper's future work: "pushing delta updates to the
devices while minimizing the build and download times"): a one-line code change of a
service, from its commit to the new version healthy on a gateway, each step timed.

The gateway is a Docker engine of its own running the bus and the service as compose
brings them up, its update service's state provisioned with the registry's root. It
reaches the registry only through the emulated link: the update code (plan, metadata,
bundle) from this process and the engine's pulls from inside its namespace, both at one
address, through one link. Per strategy, link rate and run, a new code change:
build (the image, wheelhouse included), publish (push, the bundles from the versions
before, signing), then the gateway's update, split at its own seams: plan (the signed
metadata checked, what to fetch chosen), transfer (the bundle or the layers, until the
last is complete), apply (patch and load, or unpack), switch (the old container stopped,
the new one started) and the health gate. The update service's prediction (the transfer
at the rate it learnt on the updates before) is set beside what was measured.
"""

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import docker

from buildhost.build import build, version_reference
from buildhost.paper_rows import Fix
from buildhost.publish import publish
from services.images.basis_cache import BASIS, BasisCache
from services.images.link_rate import LinkRate
from services.images.trust import TRUSTED_ROOT, Policy
from services.images.update import plan, service_containers, update
from testkit.docker_images import checkout_copy, forget_images
from testkit.gateway_stack import gateway_stack
from testkit.link_emulator import EmulatedLink
from testkit.local_registry import LocalRegistry

PROJECT = "agilebench-fix"


def quiet(_line: str) -> None:
    pass


@contextmanager
def probe() -> Iterator[Path]:
    """A checkout with a one-line code change of its own."""
    with checkout_copy() as code:
        (code / "services" / "_bench_probe.py").write_text(f"CHANGED = {time.time_ns()}\n")
        yield code


class Steps:
    """The update's own seams, as it calls back: the first progress (the plan made), the
    transfer's seconds (`measured`), `commit` (the new image loaded), and its return."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.first = self.committed = self.committed_wall = 0.0
        self.transfer_s = 0.0
        self.nbytes = 0

    def progress(self, _layer: str, _done: int, _total: int) -> None:
        self.first = self.first or time.monotonic()

    def measured(self, nbytes: int, seconds: float) -> None:
        self.nbytes, self.transfer_s = nbytes, seconds

    def commit(self) -> None:
        self.committed, self.committed_wall = time.monotonic(), time.time()


@dataclass
class Fixes:
    """One strategy's fixes of a service, from this machine to one gateway."""

    client: docker.DockerClient  # this machine's engine: builds and publishes
    registry: LocalRegistry
    service: str
    strategy: str
    made: list[str] = field(default_factory=list)  # the references built here

    def build(self) -> str:
        """A one-line change built (its image id); the registry takes it by id, and it
        goes from this engine at the end."""
        with probe() as code:
            for _ in build(
                self.client, self.service, self.strategy, say=quiet, code=code, retag=False
            ):
                pass
            reference = version_reference(self.service, self.strategy, code=code)
        self.made.append(reference)
        return str(self.client.images.get(reference).id)

    def publish(self, image: str) -> None:
        publish(
            self.client,
            self.registry.address,
            self.service,
            self.strategy,
            say=quiet,
            trust=self.registry.trust,
            image_id=image,
        )


def fix_series(
    client: docker.DockerClient,
    registry: LocalRegistry,
    work: Path,
    service: str,
    strategy: str,
    rates: list[float],
    runs: int,
    rtt_ms: float,
) -> Iterator[Fix]:
    """The rows of one strategy: `runs` fixes at each rate onto one gateway."""
    folder = work / f"fix-{service}-{strategy}"
    (folder / "engine").mkdir(parents=True)
    state = folder / "state"
    state.mkdir()
    fixes = Fixes(client, registry, service, strategy)
    first = fixes.build()  # the version the gateway runs first
    fixes.publish(first)
    loaded = f"agile/bench-fix-{service}:{strategy}"  # to load it by
    client.images.get(first).tag(*loaded.split(":"))
    listener = socket.create_server(("127.0.0.1", 0))
    link = EmulatedLink(registry.address, rates[0] * 1e6, listener=listener)
    images = {
        "agile/bus:multistage": f"agile/bus:{strategy}",
        loaded: f"agile/{service}:{strategy}",
    }
    try:
        with gateway_stack(
            folder / "engine",
            state,
            PROJECT,
            images,
            ("bus", service),
            registry,
            strategy,
            registry_address=link.address,
        ) as engine:
            link.serve(engine.listen(listener.getsockname()[1]))
            gateway = Gateway(engine.client(), state, link)
            for rate in rates:
                link.set(rate * 1e6, rate * 1e6 / 5, rtt_ms / 1e3)
                # A fix's few KB teach no rate: the link's, as `updater:link` sets it
                # (the time every download costs besides its bytes is learnt).
                learnt = LinkRate(folder / f"link-{rate:g}.json", rate * 1e6)
                for run in range(1, runs + 1):
                    yield one_fix(fixes, gateway, rate, run, learnt)
    finally:
        link.close()
        client.images.remove(loaded)
        forget_images(client, fixes.made)  # the registry has them; this engine need not


@dataclass
class Gateway:
    client: docker.DockerClient
    state: Path
    link: EmulatedLink  # its registry's address, the same inside its engine's namespace

    @property
    def trust(self) -> Policy:
        """Its update service's (the root provisioned in its state)."""
        return Policy(self.state / TRUSTED_ROOT, self.state / "trust")


def one_fix(fixes: Fixes, gateway: Gateway, rate: float, run: int, learnt: LinkRate) -> Fix:
    service, strategy, link = fixes.service, fixes.strategy, gateway.link
    start = time.monotonic()
    image = fixes.build()
    built_at = time.monotonic()
    fixes.publish(image)
    published_at = time.monotonic()
    the_plan = plan(gateway.client, link.address, service, strategy, trust=gateway.trust)
    predicted = learnt.link().seconds(the_plan.download_bytes)
    basis = BasisCache(gateway.state / BASIS)
    link.reset()
    steps = Steps()
    ok = update(
        gateway.client,
        gateway.state,
        link.address,
        service,
        say=quiet,
        progress=steps.progress,
        commit=steps.commit,
        measured=steps.measured,
        trust=gateway.trust,
        basis=basis,
    )
    end, end_wall = time.monotonic(), time.time()
    if not ok:
        raise SystemExit(f"{service} {strategy}: the fix was rolled back")
    learnt.record(steps.nbytes, steps.transfer_s)
    # The switch ends when the new container has started (the engine's clock is this
    # machine's); the health gate from there.
    (container,) = service_containers(gateway.client, PROJECT, service)
    started = datetime.fromisoformat(container.attrs["State"]["StartedAt"]).timestamp()
    return Fix(
        service=service,
        strategy=strategy,
        rate_mbit=rate,
        run=run,
        method=the_plan.method,
        download_bytes=the_plan.download_bytes,
        link_bytes=link.reset().bytes,
        predicted_s=predicted,
        build_s=built_at - start,
        publish_s=published_at - built_at,
        plan_s=steps.first - steps.start,
        transfer_s=steps.transfer_s,
        apply_s=steps.committed - steps.first - steps.transfer_s,
        switch_s=started - steps.committed_wall,
        health_s=end_wall - started,
        # The prediction's own plan (what the operator sees first) is not the fix's way.
        total_s=(published_at - start) + (end - steps.start),
        basis=("kept" if basis.served else "engine") if the_plan.method == "delta" else "",
    )
