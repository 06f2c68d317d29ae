"""The seed paper's evaluation reproduced here (AGILE, "Towards Multi-container Deployment
on IoT Gateways"): Table I (image size per build strategy), Fig. 5 (a service's download
time per strategy over a constrained link, absolute and incremental, across its
versions) and Fig. 6 (the whole stack's download time and bytes across releases that
bring in the paper's techniques one at a time), with the update time the gateway
predicts set against the time measured.

    ./dev bench paper [--quick] [--out DIR] [--runs N] [--rate MBIT ...] [--rtt MS]

The gateway is a Docker engine of its own (data root, network namespace), emptied before
each series; it pulls through the link emulator (testkit/link_emulator.py: one rate for
the whole link, shared by dockerd's parallel layer downloads; a round-trip latency) from
a local docker-registry. A service's versions are this project's own history: the last
commits that changed its code (code-only releases, with today's dependencies), then a
dependency change (a wheel added) and a base change (the runtime image rebuilt with one
more Debian package). The stack's releases: v1 each service its own baseline image, v2
the same one-Dockerfile recipe on the shared base hierarchy, v3 multi-stage, v4 the
next code change. Download time is from the pull's start to its last layer complete
(unpacking is the disk's time, not the link's); each is predicted first as the update
service predicts it, from what it learnt on the pulls before. Writes table1.csv,
fig5.csv, fig6.csv, fig5.png, fig6.png and report.md into the output folder and prints
the report. `--quick` (the test suite's): storage's last 2 versions, multi-stage and
squashed, and a stack of the bus and storage, 1 run at 200 Mbit/s.
"""

import argparse
import dataclasses
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker

from buildhost import paper_report
from buildhost.build import WHEELHOUSE, build, recipes_dir, version_reference
from buildhost.hierarchy import HOST_ARCH, ensure_hierarchy, hierarchy
from buildhost.paper_report import PAPER_MB, RELEASES, Pull, Release, Size, claims, render
from buildhost.versions import CODE, Version, checkouts, series
from services.engine import connect
from services.images.link_rate import DownloadClock, LinkRate
from services.images.recipes import SERVICES
from services.images.update import plan, pull
from services.paths import ROOT
from testkit.link_emulator import EmulatedLink
from testkit.local_registry import LocalRegistry
from testkit.private_engine import PrivateEngine

STRATEGIES = ("baseline", "multistage", "squashed")
SHARED_RECIPE = Path(__file__).parent / "recipes" / "python-service.shared.Dockerfile"


def shared_hierarchy(folder: Path) -> Path:
    """Recipes for the stack's v2: the baseline recipe on the shared base hierarchy (the
    bus: its lean recipe, on the hierarchy's Debian)."""
    if not folder.exists():
        shutil.copytree(recipes_dir(), folder)
        shutil.copy(SHARED_RECIPE, folder / "python-service.baseline.Dockerfile")
        shutil.copy(
            folder / "bus" / "multistage.Dockerfile", folder / "bus" / "baseline.Dockerfile"
        )
    return folder


@contextmanager
def engine_kept(client: docker.DockerClient) -> Iterator[None]:
    """The hierarchy's tags (a base change rebuilds the runtime) and the wheelhouse as
    they were before the versions were built, whatever happens: an older version must
    never be what the gateway's own builds and updates take for today's. (The versions'
    service images take their own tags only: build's `retag` off.)"""
    ensure_hierarchy(client, say=quiet)  # today's, to put back what a base change moves
    saved = {layer.tag: client.images.get(layer.tag).id for layer in hierarchy(HOST_ARCH)}
    wheels = WHEELHOUSE / HOST_ARCH
    had = set(wheels.glob("*")) if wheels.exists() else set()
    try:
        yield
    finally:
        for tag, image in saved.items():
            if client.images.get(tag).id != image:
                client.images.get(image).tag(*tag.rsplit(":", 1))
        for wheel in set(wheels.glob("*")) - had:
            wheel.unlink()  # the dependency change's: stale wheels change the deps layer


def quiet(_line: str) -> None:
    pass


def built(
    client: docker.DockerClient,
    name: str,
    strategy: str,
    code: Path,
    recipes: Path | None = None,
) -> str:
    for _ in build(client, name, strategy, say=quiet, code=code, recipes=recipes, retag=False):
        pass
    return client.images.get(version_reference(name, strategy, code=code)).id


def build_series(
    client: docker.DockerClient,
    registry: LocalRegistry,
    service: str,
    strategy: str,
    versions: list[Version],
) -> list[str]:
    """Each version built and pushed as agile/SERVICE:STRATEGY-vN; the image ids."""
    ids = []
    for n, version in enumerate(versions, 1):
        image = built(client, service, strategy, version.code, version.recipes)
        registry.push(client, image, service, f"{strategy}-v{n}")
        ids.append(image)
    return ids


def build_stack(
    client: docker.DockerClient, registry: LocalRegistry, names: list[str], work: Path
) -> None:
    """The stack's releases (RELEASES), each image pushed as agile/NAME:stack-vK; v1 to v3
    from the commit before the last that changed the gateway's code, v4 from that one."""
    before, last = checkouts((":(glob)services/**/*.py",), 2, work / "code" / "stack")
    shared = shared_hierarchy(work / "recipes-shared")
    releases = [
        ("baseline", before, None),
        ("baseline", before, shared),
        ("multistage", before, None),
        ("multistage", last, None),
    ]
    for k, (strategy, code, recipes) in enumerate(releases, 1):
        print(f"building the stack's {RELEASES[k - 1][0]}: {', '.join(names)}")
        for name in names:
            registry.push(client, built(client, name, strategy, code, recipes), name, f"stack-v{k}")


def empty(gateway: docker.DockerClient) -> None:
    for image in gateway.images.list(all=True):
        gateway.images.remove(image.id, force=True)
    gateway.images.prune(filters={"dangling": False})


def timed_pull(
    gateway: docker.DockerClient,
    registry: LocalRegistry,
    link: EmulatedLink,
    service: str,
    tag: str,
    learnt: LinkRate,
) -> tuple[int, int, float, float]:
    """(planned bytes, link bytes, predicted s, measured s) of one pull through the link.
    The prediction is the update service's: from what `learnt` measured on the pulls
    before (0 before the first large one); this pull is measured into it after."""
    the_plan = plan(
        gateway, registry.address, service, tag, trust=registry.policy(registry.folder / "gateway")
    )
    predicted = learnt.link().seconds(the_plan.pull_bytes)
    through = dataclasses.replace(
        the_plan, reference=the_plan.reference.replace(registry.address, link.address, 1)
    )
    link.reset()
    clock = DownloadClock()
    pull(gateway, through, clock.progress)
    traffic = link.reset()
    learnt.record(the_plan.pull_bytes, clock.seconds)
    return the_plan.pull_bytes, traffic.bytes, predicted, clock.seconds


def fig5(
    gateway: docker.DockerClient,
    registry: LocalRegistry,
    link: EmulatedLink,
    service: str,
    strategy: str,
    versions: list[Version],
    rate_mbit: float,
    runs: int,
    learnt: LinkRate,
) -> Iterable[Pull]:
    count = len(versions)
    for run in range(1, runs + 1):
        empty(gateway)
        for n, version in enumerate(versions, 1):
            kind = "absolute" if n == 1 else "incremental"
            measured = timed_pull(gateway, registry, link, service, f"{strategy}-v{n}", learnt)
            yield Pull(service, strategy, rate_mbit, run, n, kind, *measured, version.change)
        if count > 1:  # the newest alone, onto an empty engine
            empty(gateway)
            measured = timed_pull(gateway, registry, link, service, f"{strategy}-v{count}", learnt)
            yield Pull(service, strategy, rate_mbit, run, count, "absolute", *measured)


def fig6(
    gateway: docker.DockerClient,
    registry: LocalRegistry,
    link: EmulatedLink,
    names: list[str],
    rate_mbit: float,
    runs: int,
    learnt: LinkRate,
) -> Iterable[Release]:
    """Each release onto the one before (whose images then go, as the update service
    removes them), and each from v2 on onto an empty engine too."""

    def pulled(k: int, kind: str, run: int) -> Release:
        planned = link_bytes = 0
        predicted = measured = 0.0
        for name in names:
            p, b, s, m = timed_pull(gateway, registry, link, name, f"stack-v{k}", learnt)
            planned, link_bytes, predicted, measured = (
                planned + p,
                link_bytes + b,
                predicted + s,
                measured + m,
            )
        return Release(
            k, rate_mbit, run, kind, len(names), planned, link_bytes, predicted, measured
        )

    for run in range(1, runs + 1):
        empty(gateway)
        for k in range(1, len(RELEASES) + 1):
            yield pulled(k, "absolute" if k == 1 else "incremental", run)
            if k > 1:
                for name in names:  # its last tag: the image goes with it
                    gateway.images.remove(f"{link.address}/agile/{name}:stack-v{k - 1}")
        for k in range(2, len(RELEASES) + 1):
            empty(gateway)
            yield pulled(k, "absolute", run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev bench paper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "paper")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--versions", type=int, help="per service (from 4: + dependency, base)")
    parser.add_argument("--rate", type=float, action="append", help="Mbit/s (repeatable)")
    parser.add_argument("--rtt", type=float, default=20.0, help="ms the link adds")
    parser.add_argument("--service", action="append", choices=sorted(CODE))
    parser.add_argument("--strategy", action="append", choices=STRATEGIES)
    parser.add_argument(
        "--stack", action="append", choices=sorted(SERVICES), help="Fig. 6's images"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    services = args.service or (["storage"] if quick else ["storage", "ble", "core"])
    strategies = args.strategy or (["multistage", "squashed"] if quick else list(STRATEGIES))
    stack = args.stack or (["bus", "storage"] if quick else list(SERVICES))
    count = args.versions or (2 if quick else 5)
    runs = args.runs or (1 if quick else 10)
    rates = args.rate or ([200.0] if quick else [50.0, 10.0, 2.0])
    args.out.mkdir(parents=True, exist_ok=True)

    client = connect(timeout=900)
    work = Path(tempfile.mkdtemp(prefix="agile-paper-"))
    (work / "registry").mkdir()
    registry = LocalRegistry(work / "registry")
    (work / "engine").mkdir()
    engine = PrivateEngine(work / "engine")
    sizes: dict[tuple[str, str], int] = {}
    pulls: list[Pull] = []
    releases: list[Release] = []
    try:
        gateway = engine.client()
        listener = engine.listen()
        versions = {service: series(service, count, work) for service in services}
        with engine_kept(client):
            for service in services:
                for strategy in strategies:
                    print(f"building {service} {strategy}: {count} versions")
                    ids = build_series(client, registry, service, strategy, versions[service])
                    sizes[(service, strategy)] = client.images.get(ids[-1]).attrs["Size"]
            build_stack(client, registry, stack, work)
        link = EmulatedLink(registry.address, rates[0] * 1e6, listener=listener)
        for rate in rates:
            # The paper's line is 50/10: the uplink a fifth of the downlink.
            link.set(rate * 1e6, rate * 1e6 / 5, args.rtt / 1e3)
            learnt = LinkRate(work / f"link-{rate:g}.json")  # as the gateway learns it
            for service in services:
                for strategy in strategies:
                    print(f"pulling {service} {strategy} at {rate:g} Mbit/s, {runs} run(s)")
                    pulls += fig5(
                        gateway,
                        registry,
                        link,
                        service,
                        strategy,
                        versions[service],
                        rate,
                        runs,
                        learnt,
                    )
            print(f"pulling the stack's releases at {rate:g} Mbit/s, {runs} run(s)")
            releases += fig6(gateway, registry, link, stack, rate, runs, learnt)
        link.close()
    finally:
        engine.stop()
        registry.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)

    table1 = [Size(s, st, b, str(PAPER_MB.get(st, ""))) for (s, st), b in sizes.items()]
    report = render(table1, pulls, releases, claims(sizes, pulls, releases), args.rtt)
    paper_report.write(args.out, table1, pulls, releases, report)
    charts(pulls, releases, args.out)
    print(report)
    print(f"written: {args.out}/table1.csv, fig5.csv, fig6.csv, fig5.png, fig6.png, report.md")
    return 0


def charts(pulls: list[Pull], releases: list[Release], folder: Path) -> None:
    """fig5.png as the paper draws it: per service and link rate, each strategy's absolute
    download time of the newest version and the incremental one per kind of change;
    fig6.png: per link rate, each stack release's download time and bytes, absolute and
    onto the release before. Mean ± sd over the runs."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a gateway or in CI
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    def bars(
        ax: Axes, groups: list[str], series: dict[str, list[list[float]]], ylabel: str
    ) -> None:
        width = 0.8 / len(series)
        for i, (label, values) in enumerate(series.items()):
            ax.bar(
                [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))],
                [statistics.mean(v) if v else 0.0 for v in values],
                width=width,
                yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in values],
                label=label,
            )
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")

    panels = sorted({(p.service, p.rate_mbit) for p in pulls})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (service, rate) in zip(axes[0], panels, strict=True):
        mine = [p for p in pulls if (p.service, p.rate_mbit) == (service, rate)]
        strategies = [s for s in STRATEGIES if any(p.strategy == s for p in mine)]
        newest = max(p.version for p in mine)

        def label(p: Pull, newest: int = newest) -> str:
            if p.kind == "incremental":
                return f"{p.change} change"
            return f"all (v{newest})" if p.version == newest else ""

        labels = [x for x in dict.fromkeys(label(p) for p in mine) if x]
        bars(
            ax,
            strategies,
            {
                x: [
                    [p.measured_s for p in mine if p.strategy == st and label(p) == x]
                    for st in strategies
                ]
                for x in labels
            },
            "download time, s",
        )
        ax.set_title(f"{service} at {rate:g} Mbit/s")
    fig.tight_layout()
    fig.savefig(folder / "fig5.png", dpi=100)
    plt.close(fig)

    rates = sorted({r.rate_mbit for r in releases})
    fig, axes = plt.subplots(
        2, max(len(rates), 1), figsize=(6 * max(len(rates), 1), 7), squeeze=False
    )
    names = [f"v{k}" for k in range(1, len(RELEASES) + 1)]
    for column, rate in enumerate(rates):
        shown = [r for r in releases if r.rate_mbit == rate]
        for row, (measure, ylabel) in enumerate(
            ((lambda r: r.measured_s, "download time, s"), (lambda r: r.planned_bytes / 1e6, "MB"))
        ):
            bars(
                axes[row][column],
                names,
                {
                    kind: [
                        [measure(r) for r in shown if (r.release, r.kind) == (k, kind)]
                        for k in range(1, len(RELEASES) + 1)
                    ]
                    for kind in ("absolute", "incremental")
                },
                ylabel,
            )
        axes[0][column].set_title(f"the stack at {rate:g} Mbit/s")
    fig.tight_layout()
    fig.savefig(folder / "fig6.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
