"""The seed paper's evaluation reproduced here (AGILE, "Towards Multi-container Deployment
on IoT Gateways"): Table I (image size per build strategy), Fig. 5 (a service's download
time per strategy over a constrained link, absolute and incremental, across its
versions) and Fig. 6 (the whole stack's download time and bytes across releases that
bring in the paper's techniques one at a time), with the update time the gateway
predicts set against the time measured.

    ./dev bench paper [--quick] [--out DIR] [--runs N] [--rate MBIT ...] [--rtt MS]

The gateway is a Docker engine of its own (data root, network namespace), emptied before
each series; it pulls through the link emulator (tests/link_emulator.py: one rate for
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
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import ImageNotFound

from services.images import paper_report
from services.images.build import WHEELHOUSE, build, recipes_dir
from services.images.hierarchy import HOST_ARCH, hierarchy
from services.images.link_rate import DownloadClock, LinkRate
from services.images.paper_report import RELEASES, Pull, Release, Size
from services.images.recipes import SERVICES
from services.images.update import plan, pull
from services.paths import ROOT
from tests.link_emulator import EmulatedLink
from tests.local_registry import LocalRegistry
from tests.private_engine import PrivateEngine

# Where each image's code lives: a commit touching these is a new version of it.
CODE = {
    "storage": ("services/storage",),
    "ble": ("services/ble",),
    "core": ("services/protocolmanager", "services/devicemanager"),
}
STRATEGIES = ("baseline", "multistage", "squashed")
# The paper's figures for agile-core (Table I) and what it says of squashing.
PAPER_MB = {"baseline": 789, "multistage": 348, "squashed": 342}
# The dependency change (time zones for storage's local-time queries, as a wheel) and
# the base change (the same, as the runtime image's Debian package).
DEPENDENCY = "tzdata>=2024.1"
BASE_PACKAGE = "tzdata"
SHARED_RECIPE = Path(__file__).parent / "recipes" / "python-service.shared.Dockerfile"


@dataclass(frozen=True)
class Version:
    code: Path  # a checkout: the code and the pyproject.toml it is built with
    change: str  # from the version before: "code", "dependency", "base" ("" for the first)
    recipes: Path | None = None  # other than today's (services/dockerfiles/ laid out)


def checkouts(paths: Iterable[str], count: int, into: Path) -> list[Path]:
    """The last `count` commits that changed `paths`, oldest first, each checked out
    with today's pyproject.toml (the same dependencies: a code-only release)."""
    log = subprocess.run(
        ["git", "-C", str(ROOT), "log", "--format=%H", f"-n{count}", "--", *paths],
        capture_output=True,
        text=True,
        check=True,
    )
    commits = log.stdout.split()[::-1]
    if len(commits) < count:
        raise SystemExit(f"{' '.join(paths)}: {len(commits)} commits here, {count} needed")
    trees = []
    for commit in commits:
        tree = into / commit[:12]
        tree.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {commit} failed")
        shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
        trees.append(tree)
    return trees


def series(service: str, count: int, work: Path) -> list[Version]:
    """`count` versions of a service, oldest first: code changes from its history, then
    (from 4 versions on) a dependency change and a base change as the last two."""
    coded = count - 2 if count >= 4 else count
    trees = checkouts(CODE[service], coded, work / "code" / service)
    versions = [Version(tree, "code" if n else "") for n, tree in enumerate(trees)]
    if count >= 4:
        newer = work / "code" / f"{service}-dependency"
        shutil.copytree(trees[-1], newer)
        pyproject = newer / "pyproject.toml"
        text = pyproject.read_text()
        pyproject.write_text(
            text.replace("dependencies = [\n", f'dependencies = [\n    "{DEPENDENCY}",\n', 1)
        )
        versions += [
            Version(newer, "dependency"),
            Version(newer, "base", changed_base(work / "recipes-base")),
        ]
    return versions


def changed_base(folder: Path) -> Path:
    """Today's recipes with the runtime image's (and so the build image's) one more
    Debian package."""
    if not folder.exists():
        shutil.copytree(recipes_dir(), folder)
        runtime = folder / "base" / "python.Dockerfile"
        text = runtime.read_text()
        changed = text.replace("python3 ca-certificates", f"python3 ca-certificates {BASE_PACKAGE}")
        assert changed != text, "the runtime recipe's package line moved"
        runtime.write_text(changed)
    return folder


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
    """The build engine's tags (services and hierarchy) and the wheelhouse as they were
    before the versions were built, whatever happens: an older version must never be
    what the gateway's own builds and updates take for today's."""
    tags = [layer.tag for layer in hierarchy(HOST_ARCH)]
    tags += [f"agile/{name}:{strategy}" for name in SERVICES for strategy in STRATEGIES]
    saved: dict[str, str | None] = {}
    for tag in tags:
        try:
            saved[tag] = client.images.get(tag).id
        except ImageNotFound:
            saved[tag] = None
    wheels = WHEELHOUSE / HOST_ARCH
    had = set(wheels.glob("*")) if wheels.exists() else set()
    try:
        yield
    finally:
        for tag, image in saved.items():
            if image:
                client.images.get(image).tag(*tag.rsplit(":", 1))
            else:
                with suppress(ImageNotFound):
                    client.images.remove(tag, noprune=True)
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
    for _ in build(client, name, strategy, say=quiet, code=code, recipes=recipes):
        pass
    return client.images.get(f"agile/{name}:{strategy}").id


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
    the_plan = plan(gateway, registry.address, service, tag)
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


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def claims(
    sizes: dict[tuple[str, str], int], pulls: list[Pull], releases: list[Release]
) -> list[str]:
    """The paper's claims, each with whether it holds here and by how much."""
    said = []
    for service in sorted({s for s, _ in sizes}):
        size = {st: sizes[(service, st)] for (s, st) in sizes if s == service}
        if "baseline" in size and "multistage" in size:
            here = 100 * size["multistage"] / size["baseline"]
            paper = 100 * PAPER_MB["multistage"] / PAPER_MB["baseline"]
            said.append(
                f"{service}: multi-stage is {here:.0f} % of baseline here vs {paper:.0f} % "
                f"in the paper (agile-core) — {'holds' if here < 100 else 'does not hold'}"
            )
        if "squashed" in size and "multistage" in size:
            here = 100 * size["squashed"] / size["multistage"]
            paper = 100 * PAPER_MB["squashed"] / PAPER_MB["multistage"]
            said.append(
                f"{service}: squashed is {here:.1f} % of multi-stage here vs {paper:.1f} % in "
                "the paper"
            )
    by = defaultdict(list)
    for p in pulls:  # the paper's incremental case is a code change
        if p.kind == "absolute" or p.change == "code":
            by[(p.service, p.strategy, p.rate_mbit, p.kind)].append(p)
    for service, rate in sorted({(k[0], k[2]) for k in by if k[1] == "squashed"}):
        incremental = {
            st: statistics.mean(p.planned_bytes for p in by[(service, st, rate, "incremental")])
            for st in ("multistage", "squashed")
            if by[(service, st, rate, "incremental")]
        }
        if len(incremental) == 2 and by[(service, "squashed", rate, "absolute")]:
            whole = max(p.planned_bytes for p in by[(service, "squashed", rate, "absolute")])
            said.append(
                f"{service} at {rate:g} Mbit/s: squashing forces the whole image to be "
                f"downloaded again — an update fetches {incremental['squashed'] / 1e6:.1f} MB "
                f"squashed ({100 * incremental['squashed'] / whole:.0f} % of the image) vs "
                f"{incremental['multistage'] / 1e6:.2f} MB multi-stage: "
                + (
                    "holds"
                    if incremental["squashed"] > 10 * incremental["multistage"]
                    else "does not hold"
                )
            )
        absolute = {st: by[(service, st, rate, "absolute")] for st in ("multistage", "squashed")}
        if all(absolute.values()):
            t = {st: statistics.mean(p.measured_s for p in ps) for st, ps in absolute.items()}
            b = {st: statistics.mean(p.planned_bytes for p in ps) for st, ps in absolute.items()}
            # A difference counts past the runs' spread (and 1 %, for a single run).
            spread = max(
                statistics.stdev(p.measured_s for p in ps) if len(ps) > 1 else 0.0
                for ps in absolute.values()
            )
            margin = max(2 * spread, 0.01 * t["multistage"])
            slower = t["squashed"] - t["multistage"]
            if slower > margin:
                verdict = "holds"
            elif slower < -margin:
                verdict = "does not hold: squashed is faster here"
            else:
                verdict = (
                    "does not hold here: no difference past the runs' spread — one connection "
                    "fills the emulated link (one rate for the whole link, no loss), so "
                    "dockerd's parallel layer downloads gain nothing over one big layer"
                )
            said.append(
                f"{service} at {rate:g} Mbit/s: the paper found squashed images download "
                f"slightly slower than multi-stage ones even when smaller; here squashed "
                f"{t['squashed']:.2f} s for {b['squashed'] / 1e6:.1f} MB vs multi-stage "
                f"{t['multistage']:.2f} s for {b['multistage'] / 1e6:.1f} MB "
                f"({100 * slower / t['multistage']:+.1f} %) — {verdict}"
            )
    said += stack_claims(releases)
    timed: list[Pull | Release] = [*pulls, *releases]
    errors = [
        abs(p.predicted_s - p.measured_s) / p.measured_s
        for p in timed
        if p.predicted_s and p.measured_s  # 0 s: no layer came (only an image's config)
    ]
    if errors:
        within = sum(e <= 0.10 for e in errors)
        said.append(
            "predicted download time (the update service's: rate and per-download overhead "
            f"learnt from the pulls before) vs measured: {within} of {len(errors)} within "
            f"±10 % (the goal), median error {100 * statistics.median(errors):.1f} %, "
            f"largest {100 * max(errors):.1f} %"
        )
    return said


def stack_claims(releases: list[Release]) -> list[str]:
    """Fig. 6: each release's technique cuts what the stack downloads."""
    said = []
    for rate in sorted({r.rate_mbit for r in releases}):
        mb: dict[tuple[int, str], float] = {}
        for k in range(1, len(RELEASES) + 1):
            for kind in ("absolute", "incremental"):
                got = [r for r in releases if (r.rate_mbit, r.release, r.kind) == (rate, k, kind)]
                if got:
                    mb[(k, kind)] = statistics.mean(r.planned_bytes for r in got) / 1e6
        wanted = [(1, "absolute"), (2, "absolute"), (3, "absolute"), (4, "incremental")]
        if not all(w in mb for w in wanted):
            continue
        v1, v2, v3, update = (mb[w] for w in wanted)
        holds = v1 > v2 > v3 > update
        said.append(
            f"the stack at {rate:g} Mbit/s: each release's technique cuts its download — "
            f"v1 {v1:.0f} MB, shared hierarchy v2 {v2:.0f} MB ({100 * v2 / v1:.0f} %), "
            f"multi-stage v3 {v3:.0f} MB ({100 * v3 / v1:.0f} %), the code-only v4 as an "
            f"update {update:.2f} MB ({100 * update / v1:.2f} %) — "
            + ("holds" if holds else "does not hold")
        )
    return said


def costs(pulls: list[Pull]) -> list[str]:
    """What each kind of change costs a gateway that has the version before."""
    rows = []
    groups = defaultdict(list)
    for p in pulls:
        if p.kind == "incremental":
            groups[(p.service, p.strategy, p.rate_mbit, p.change)].append(p)
    for (service, strategy, rate, change), ps in sorted(groups.items()):
        rows.append(
            f"| {service} | {strategy} | {rate:g} | {change} | "
            f"{statistics.mean(p.planned_bytes for p in ps) / 1e6:.2f} | "
            f"{mean_sd([p.measured_s for p in ps])} |"
        )
    return rows


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

    client = docker.from_env(timeout=900)
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


def render(
    table1: list[Size],
    pulls: list[Pull],
    releases: list[Release],
    said: list[str],
    rtt_ms: float,
) -> str:
    lines = ["# The paper's evaluation, reproduced", ""]
    lines += ["## Table I: image size per build strategy", ""]
    lines += [
        "| service | strategy | MB here | agile-core MB in the paper |",
        "|---|---|---:|---:|",
    ]
    for row in table1:
        lines.append(
            f"| {row.service} | {row.strategy} | {row.bytes / 1e6:.1f} | {row.paper_core_mb} |"
        )
    lines += [
        "",
        f"## Fig. 5: download time (s, mean ± sd) through the emulated link, RTT {rtt_ms:g} ms",
        "",
    ]
    lines += [
        "| service | strategy | Mbit/s | pull | MB | predicted s | measured s |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    groups = defaultdict(list)
    for p in pulls:
        groups[(p.service, p.strategy, p.rate_mbit, p.kind, p.version)].append(p)
    for (service, strategy, rate, kind, version), ps in groups.items():
        what = (
            f"v{version} {kind}"
            if kind == "absolute"
            else f"v{version - 1} → v{version} ({ps[0].change})"
        )
        lines.append(
            f"| {service} | {strategy} | {rate:g} | {what} | "
            f"{statistics.mean(p.planned_bytes for p in ps) / 1e6:.2f} | "
            f"{statistics.mean(p.predicted_s for p in ps):.2f} | "
            f"{mean_sd([p.measured_s for p in ps])} |"
        )
    if cost := costs(pulls):
        lines += ["", "### What each kind of change costs an update", ""]
        lines += ["| service | strategy | Mbit/s | change | MB | measured s |"]
        lines += ["|---|---|---:|---|---:|---:|", *cost]
    if releases:
        lines += [
            "",
            "## Fig. 6: the stack's download across releases (s and MB, mean ± sd)",
            "",
            f"{releases[0].images} images; "
            + "; ".join(name for name, _ in RELEASES)
            + ". Incremental: onto the release before.",
            "",
            "| release | Mbit/s | pull | MB | predicted s | measured s |",
            "|---|---:|---|---:|---:|---:|",
        ]
        stacked = defaultdict(list)
        for r in releases:
            stacked[(r.release, r.rate_mbit, r.kind)].append(r)
        for (k, rate, kind), rs in sorted(stacked.items()):
            lines.append(
                f"| {RELEASES[k - 1][0]} | {rate:g} | {kind} | "
                f"{statistics.mean(r.planned_bytes for r in rs) / 1e6:.1f} | "
                f"{statistics.mean(r.predicted_s for r in rs):.2f} | "
                f"{mean_sd([r.measured_s for r in rs])} |"
            )
    lines += ["", *paper_report.claims_section(said)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
