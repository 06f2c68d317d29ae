"""The seed paper's evaluation reproduced here (AGILE, "Towards Multi-container Deployment
on IoT Gateways"): Table I (image size per build strategy), Fig. 5 (a service's download
time per strategy over a constrained link, absolute and incremental, across its
versions) and Fig. 6 (the whole stack's download time and bytes across releases that
bring in the paper's techniques one at a time), with the update time the gateway
predicts set against the time measured; then its last claim and its future work: build
times on bases of each service's own against the shared hierarchy (paper_builds), a
fix's way from commit to healthy on a gateway (paper_fix), the same figures for arm64,
and delta updates over the project's history (paper_history).

    ./dev bench paper [--quick] [--out DIR] [--resume] [--only PART ...] [--runs N]
                      [--rate MBIT ...] [--rtt MS] [--arch A ...] [--history N]

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
service predicts it, from what it learnt on the pulls before. Another architecture's
images (arm64: what a Raspberry Pi downloads) are built under emulation, today's version
only, and downloaded whole.

Each series is kept in OUT/series/ as it finishes; `--resume` keeps those and runs only
the rest (the default run takes hours: run it in parts), `--only` runs one part. Writes
every part's CSV, its charts (fig5, fig6, builds, fix .png) and report.md into OUT from
all the series there, and prints the report. `--quick` (the test suite's): storage's last
2 versions, multi-stage and squashed, a stack of the bus and storage, 1 run at 200
Mbit/s; one fix, storage's cold and code-change builds, and its last update, multi-stage,
amd64 only.
"""

import argparse
import dataclasses
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker

from benchmarks.paper_builds import STEPS as BUILD_STEPS
from benchmarks.paper_builds import build_times
from benchmarks.paper_fix import fix_series
from benchmarks.paper_history import history
from benchmarks.paper_series import SeriesStore
from buildhost import paper_rows
from buildhost.build import WHEELHOUSE, build, recipes_dir, version_reference
from buildhost.hierarchy import HOST_ARCH, ensure_hierarchy, hierarchy
from buildhost.paper_report import PAPER_MB, RELEASES, claims, render
from buildhost.paper_rows import BuildTime, Fix, Pull, Release, Size
from buildhost.paper_sections import FIX_STEPS
from buildhost.versions import CODE, Version, checkouts, series
from services.engine import connect
from services.images.link_rate import DownloadClock, LinkRate
from services.images.recipes import SERVICES
from services.images.update import plan, pull
from services.paths import ROOT
from testkit.docker_images import checkout_copy
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


PARTS = ("table1", "fig5", "fig6", "fix", "builds", "history")


@dataclass
class Run:
    """What one invocation measures, and where."""

    args: argparse.Namespace
    client: docker.DockerClient
    registry: LocalRegistry
    work: Path
    store: SeriesStore
    services: list[str]
    strategies: list[str]
    stack: list[str]
    arches: list[str]
    count: int
    runs: int
    rates: list[float]
    quick: bool

    def key(self, *parts: object) -> str:
        """A series' key: what it measured and how often (a resumed run with other
        settings does not take it for its own)."""
        return " ".join(str(p) for p in (*parts, f"runs={self.runs}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev bench paper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "paper")
    parser.add_argument("--resume", action="store_true", help="keep the series OUT has finished")
    parser.add_argument("--only", action="append", choices=PARTS, help="this part (repeatable)")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--versions", type=int, help="per service (from 4: + dependency, base)")
    parser.add_argument("--rate", type=float, action="append", help="Mbit/s (repeatable)")
    parser.add_argument("--rtt", type=float, default=20.0, help="ms the link adds")
    parser.add_argument("--service", action="append", choices=sorted(CODE))
    parser.add_argument("--strategy", action="append", choices=STRATEGIES)
    parser.add_argument("--arch", action="append", choices=("amd64", "arm64"))
    parser.add_argument("--history", type=int, help="updates over the project's history")
    parser.add_argument(
        "--stack", action="append", choices=sorted(SERVICES), help="Fig. 6's images"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="agile-paper-"))
    (work / "registry").mkdir()
    run = Run(
        args=args,
        client=connect(timeout=900),
        registry=LocalRegistry(work / "registry"),
        work=work,
        store=SeriesStore(args.out / "series", args.resume),
        services=args.service or (["storage"] if quick else ["storage", "ble", "core"]),
        strategies=args.strategy or (["multistage", "squashed"] if quick else list(STRATEGIES)),
        stack=args.stack or (["bus", "storage"] if quick else list(SERVICES)),
        arches=args.arch or (["amd64"] if quick else ["amd64", "arm64"]),
        count=args.versions or (2 if quick else 5),
        runs=args.runs or (1 if quick else 10),
        rates=args.rate or ([200.0] if quick else [50.0, 10.0, 2.0]),
        quick=quick,
    )
    parts = args.only or list(PARTS)
    try:
        with engine_kept(run.client):
            if {"table1", "fig5", "fig6"} & set(parts):
                downloads(run, parts)
            if "fix" in parts:
                fixes(run)
            if "builds" in parts:
                builds(run)
            if "history" in parts:
                project_history(run)
    finally:
        run.registry.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)

    results = run.store.results()
    report = render(results, claims(results), args.rtt)
    paper_rows.write(args.out, results, report)
    amd64 = [p for p in results.pulls if p.arch == "amd64"]
    charts(amd64, results.releases, args.out, results.builds, results.fixes)
    print(report)
    print(f"written: {args.out}/*.csv, *.png, report.md")
    return 0


def downloads(run: Run, parts: list[str]) -> None:
    """Table I, Fig. 5 and Fig. 6 (the download figures for another architecture: each
    strategy's newest version whole, as a gateway of that kind first takes it)."""
    client, registry, work = run.client, run.registry, run.work
    (work / "engine").mkdir()
    engine = PrivateEngine(work / "engine")
    try:
        gateway = engine.client()
        link = EmulatedLink(registry.address, run.rates[0] * 1e6, listener=engine.listen())
        for arch in run.arches:
            native = arch == HOST_ARCH
            for service in run.services:
                versions = series(service, run.count, work / arch) if native else None
                for strategy in run.strategies:
                    one_image(run, parts, gateway, link, service, strategy, arch, versions)
        stacked = {rate: run.key("fig6", *run.stack, rate) for rate in run.rates}
        if "fig6" in parts and not all(run.store.done(k) for k in stacked.values()):
            build_stack(client, registry, run.stack, work)
            for rate, key in stacked.items():
                if run.store.done(key):
                    continue
                link.set(rate * 1e6, rate * 1e6 / 5, run.args.rtt / 1e3)
                learnt = LinkRate(work / f"link-{rate:g}.json")
                print(f"pulling the stack's releases at {rate:g} Mbit/s, {run.runs} run(s)")
                run.store.save(
                    key, list(fig6(gateway, registry, link, run.stack, rate, run.runs, learnt))
                )
        link.close()
    finally:
        engine.stop()


def one_image(
    run: Run,
    parts: list[str],
    gateway: docker.DockerClient,
    link: EmulatedLink,
    service: str,
    strategy: str,
    arch: str,
    versions: list[Version] | None,
) -> None:
    """Table I's size and Fig. 5's pulls at each rate for one image (`versions`: its
    series, on the host's architecture; None: its newest version whole, built for
    `arch`), each series kept as it finishes."""
    client, registry = run.client, run.registry
    pulled = {rate: run.key("fig5", service, strategy, arch, rate) for rate in run.rates}
    sized = run.key("table1", service, strategy, arch)
    wanted = [k for k in (*pulled.values(), sized) if not run.store.done(k)]
    if not wanted or not {"table1", "fig5"} & set(parts):
        return
    print(f"building {service} {strategy} {arch}")
    if versions:
        ids = build_series(client, registry, service, strategy, versions)
    else:
        ids = [foreign(client, registry, service, strategy, arch)]
    size = client.images.get(ids[-1]).attrs["Size"]
    run.store.save(sized, [Size(service, strategy, size, str(PAPER_MB.get(strategy, "")), arch)])
    for rate, key in pulled.items():
        if run.store.done(key) or "fig5" not in parts:
            continue
        print(f"pulling {service} {strategy} {arch} at {rate:g} Mbit/s")
        link.set(rate * 1e6, rate * 1e6 / 5, run.args.rtt / 1e3)
        learnt = LinkRate(run.work / f"link-{rate:g}.json")  # as the gateway learns it
        if versions:
            got = fig5(gateway, registry, link, service, strategy, versions, rate, run.runs, learnt)
        else:
            got = whole(gateway, registry, link, service, strategy, arch, rate, run.runs, learnt)
        run.store.save(key, list(got))


def foreign(
    client: docker.DockerClient, registry: LocalRegistry, service: str, strategy: str, arch: str
) -> str:
    """Today's image for another architecture (built under emulation), pushed as
    agile/SERVICE:STRATEGY-ARCH; its id."""
    with checkout_copy() as code:  # one tree throughout, whatever changes in this one
        for _ in build(client, service, strategy, arch, say=quiet, retag=False, code=code):
            pass
        image = client.images.get(version_reference(service, strategy, arch, code)).id
    registry.push(client, image, service, f"{strategy}-{arch}")
    return image


def whole(
    gateway: docker.DockerClient,
    registry: LocalRegistry,
    link: EmulatedLink,
    service: str,
    strategy: str,
    arch: str,
    rate: float,
    runs: int,
    learnt: LinkRate,
) -> Iterable[Pull]:
    """Another architecture's image downloaded whole onto an empty gateway engine."""
    for n in range(1, runs + 1):
        empty(gateway)
        measured = timed_pull(gateway, registry, link, service, f"{strategy}-{arch}", learnt)
        yield Pull(service, strategy, rate, n, 1, "absolute", *measured, arch=arch)


def fixes(run: Run) -> None:
    """A fix's way to the gateway, per strategy (storage's; the quick run's multi-stage)."""
    for strategy in ["multistage"] if run.quick else run.strategies:
        key = run.key("fix", "storage", strategy, *run.rates)
        if not run.store.done(key):
            print(f"a fix's way to the gateway: storage {strategy}, {run.runs} run(s) a rate")
            rows = fix_series(
                run.client,
                run.registry,
                run.work,
                "storage",
                strategy,
                run.rates,
                run.runs,
                run.args.rtt,
            )
            run.store.save(key, list(rows))


def builds(run: Run) -> None:
    """Build times: the stack's images (storage's alone in the quick run), per strategy,
    on bases of their own and on the shared hierarchy, cold and per change."""
    services = ["storage"] if run.quick else list(SERVICES)
    steps = ("cold", "code") if run.quick else BUILD_STEPS
    strategies = ["multistage"] if run.quick else run.strategies

    def series(key: str) -> str:  # one run each: a resumed run with more runs adds runs
        return " ".join((key, *services, *steps))

    with checkout_copy() as code:
        for key, rows in build_times(
            run.client,
            run.work / "builds",
            services,
            strategies,
            run.arches,
            run.runs,
            steps,
            code,
            done=lambda k: run.store.done(series(k)),
        ):
            print(f"{key}: built")
            run.store.save(series(key), rows)


def project_history(run: Run) -> None:
    """Delta updates over the project's history (storage's; the quick run's last update)."""
    updates = run.args.history or (1 if run.quick else 30)
    # Baseline's one layer of code and dependencies has no delta to study.
    layered = [s for s in run.strategies if s != "baseline"]
    for strategy in ["multistage"] if run.quick else layered:
        key = f"history storage {strategy} {updates}"
        if not run.store.done(key):
            print(f"storage {strategy} over its last {updates} update(s)")
            rows = list(history(run.client, run.registry, run.work, "storage", strategy, updates))
            run.store.save(key, rows)


def charts(
    pulls: list[Pull],
    releases: list[Release],
    folder: Path,
    builds: list[BuildTime] | None = None,
    fixes: list[Fix] | None = None,
) -> None:
    """fig5.png as the paper draws it: per service and link rate, each strategy's absolute
    download time of the newest version and the incremental one per kind of change;
    fig6.png: per link rate, each stack release's download time and bytes, absolute and
    onto the release before; builds.png, fix.png: the build times and a fix's steps.
    Mean ± sd over the runs; each only if its part was measured."""
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

    if pulls:  # fig5.png
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

    if releases:  # fig6.png
        rates = sorted({r.rate_mbit for r in releases})
        fig, axes = plt.subplots(
            2, max(len(rates), 1), figsize=(6 * max(len(rates), 1), 7), squeeze=False
        )
        names = [f"v{k}" for k in range(1, len(RELEASES) + 1)]
        for column, rate in enumerate(rates):
            shown = [r for r in releases if r.rate_mbit == rate]
            for row, (measure, ylabel) in enumerate(
                (
                    (lambda r: r.measured_s, "download time, s"),
                    (lambda r: r.planned_bytes / 1e6, "MB"),
                )
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

    if builds:  # builds.png: per architecture, each step on own bases against shared
        arches = list(dict.fromkeys(b.arch for b in builds))
        fig, axes = plt.subplots(1, len(arches), figsize=(7 * len(arches), 4), squeeze=False)
        for ax, arch in zip(axes[0], arches, strict=True):
            here = [b for b in builds if b.arch == arch]
            groups = [
                f"{st} {step}"
                for st in dict.fromkeys(b.strategy for b in here)
                for step in dict.fromkeys(b.step for b in here)
            ]
            bars(
                ax,
                groups,
                {
                    f"{bases} bases": [
                        [
                            b.seconds
                            for b in here
                            if f"{b.strategy} {b.step}" == g and b.bases == bases
                        ]
                        for g in groups
                    ]
                    for bases in ("own", "shared")
                },
                "build time, s",
            )
            ax.set_title(f"build times, {arch}")
            ax.tick_params(axis="x", labelrotation=30)
        fig.tight_layout()
        fig.savefig(folder / "builds.png", dpi=100)
        plt.close(fig)
    if fixes:  # fix.png: a fix's steps, stacked, per strategy and rate
        groups = list(dict.fromkeys(f"{f.strategy} {f.rate_mbit:g}" for f in fixes))
        fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(groups)), 4))
        bottom = [0.0] * len(groups)
        for step in FIX_STEPS:
            heights = [
                statistics.mean(
                    getattr(f, f"{step}_s") for f in fixes if f"{f.strategy} {f.rate_mbit:g}" == g
                )
                for g in groups
            ]
            ax.bar(groups, heights, bottom=bottom, label=step)
            bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
        ax.set_ylabel("seconds, commit to healthy")
        ax.set_title("a one-line fix's way to the gateway (strategy, Mbit/s)")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(folder / "fix.png", dpi=100)
        plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
