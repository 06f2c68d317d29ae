"""The paper benchmark's rows, one format: what `./dev bench paper` writes into its
folder (CSV, one file per kind of row) and what the report, its later sections and
agile-tui read back."""

import csv
import dataclasses
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

TABLE1, FIG5, FIG6, MARKDOWN = "table1.csv", "fig5.csv", "fig6.csv", "report.md"
BUILDS, FIX, HISTORY = "builds.csv", "fix.csv", "history.csv"


@dataclass
class Size:
    """Table I: one image's size."""

    service: str
    strategy: str
    bytes: int
    paper_core_mb: str  # the paper's agile-core figure for the strategy ("" none)
    arch: str = "amd64"


@dataclass
class Pull:
    """Fig. 5: one service image pulled through the emulated link."""

    service: str
    strategy: str
    rate_mbit: float
    run: int
    version: int  # 1 = the oldest
    kind: str  # "absolute" (onto an empty engine) or "incremental" (onto the previous)
    planned_bytes: int  # the plan's: what the engine will fetch
    link_bytes: int  # what went down the link (with the registry's own answers)
    predicted_s: float  # the update service's prediction (0: nothing learnt yet)
    measured_s: float
    change: str = ""  # an incremental pull's: what changed since the version before
    arch: str = "amd64"


@dataclass
class Release:
    """Fig. 6: every image of one stack release pulled, one after the other."""

    release: int  # 1..4, RELEASES[release - 1]
    rate_mbit: float
    run: int
    kind: str  # "absolute" or "incremental" (onto the release before)
    images: int
    planned_bytes: int
    link_bytes: int
    predicted_s: float
    measured_s: float


@dataclass
class Fix:
    """A one-line fix's way from its commit to the gateway running it healthy."""

    service: str
    strategy: str
    rate_mbit: float
    run: int
    method: str  # how the gateway took it: delta, layers, pull
    download_bytes: int  # the plan's
    link_bytes: int  # what went down the link (metadata and the registry's answers too)
    predicted_s: float  # the update service's, for the transfer
    build_s: float
    publish_s: float  # push, bundles, signing
    plan_s: float  # the gateway's: signed metadata checked, the way chosen
    transfer_s: float
    apply_s: float  # patch and load, or unpack
    switch_s: float  # the old container stopped, the new one started
    health_s: float  # the health gate
    total_s: float  # commit to healthy
    # A delta's basis: "kept" (what the delta before made) or "engine" (docker save).
    basis: str = ""


@dataclass
class BuildTime:
    """The stack's images built at one step of a run."""

    arch: str
    strategy: str
    bases: str  # "own" (each service's bases its own) or "shared" (the hierarchy)
    run: int
    step: str  # "cold", or the change since the step before: code, dependency, base
    images: int
    seconds: float


@dataclass
class HistoryUpdate:
    """One update over the project's history: what each way would fetch, and the way
    taken."""

    service: str
    strategy: str
    commit: str  # the new version's, abbreviated
    delta_bytes: int  # the bundle from the version before (0: none published)
    layers_bytes: int  # only the layers the gateway lacks
    pull_bytes: int  # the engine's pull
    method: str  # the way the update took
    fetched_bytes: int  # what that way fetched from the registry (blobs)


Row = TypeVar("Row", Size, Pull, Release, Fix, BuildTime, HistoryUpdate)


@dataclass
class Results:
    """Every row a run measured (a part of the benchmark run alone leaves others empty)."""

    sizes: list[Size] = field(default_factory=list)
    pulls: list[Pull] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)
    builds: list[BuildTime] = field(default_factory=list)
    history: list[HistoryUpdate] = field(default_factory=list)


# Each kind of row: its file, and its field of Results.
FILES: dict[type, tuple[str, str]] = {
    Size: (TABLE1, "sizes"),
    Pull: (FIG5, "pulls"),
    Release: (FIG6, "releases"),
    Fix: (FIX, "fixes"),
    BuildTime: (BUILDS, "builds"),
    HistoryUpdate: (HISTORY, "history"),
}


def write(folder: Path, results: Results, markdown: str) -> None:
    """The report's files; `markdown` ends with claims_section()."""
    for kind, (name, attribute) in FILES.items():
        rows = getattr(results, attribute)
        with (folder / name).open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[f.name for f in dataclasses.fields(kind)])
            writer.writeheader()
            writer.writerows(dataclasses.asdict(row) for row in rows)
    (folder / MARKDOWN).write_text(markdown)


def read_rows(path: Path, kind: type[Row]) -> list[Row]:
    """Rows as `kind`; ValueError naming the file where one does not fit."""
    # The fields' types are classes (no postponed annotations here): each reads its text.
    types = {f.name: cast(Callable[[str], Any], f.type) for f in dataclasses.fields(kind)}
    with path.open(newline="") as f:
        try:
            return [kind(**{k: types[k](v) for k, v in row.items()}) for row in csv.DictReader(f)]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path.name}: {exc!r}") from None


@dataclass(frozen=True)
class Panel:
    """One chart: per group (a build strategy in Fig. 5, a stack release in Fig. 6),
    the seconds to download it whole and as an update (0: not measured), mean of runs."""

    title: str
    groups: list[str]
    absolute_s: list[float]
    incremental_s: list[float]
    kinds: tuple[str, str]  # what the two bars are
    unit: str = "seconds to download"


def mean(values: Iterable[float]) -> float:
    """0 for no values (a part not measured)."""
    values = list(values)
    return statistics.mean(values) if values else 0.0


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"
