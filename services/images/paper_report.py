"""The paper benchmark's report, one format: what `./dev bench paper` writes into its
folder and agile-tui's Images section reads back — the rows of Table I, Fig. 5 and
Fig. 6 (CSV, one file each), the stack's releases, and the markdown report whose last
section lists the paper's claims."""

import csv
import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

TABLE1, FIG5, FIG6, MARKDOWN = "table1.csv", "fig5.csv", "fig6.csv", "report.md"
# Fig. 6's stack releases, in full and short enough for a chart's row.
RELEASES = (
    ("v1 baseline, own bases", "v1 own"),
    ("v2 shared base hierarchy", "v2 shared"),
    ("v3 multi-stage", "v3 multi"),
    ("v4 code-only release", "v4 code"),
)
CLAIMS = "## The paper's claims here"


@dataclass
class Size:
    """Table I: one image's size."""

    service: str
    strategy: str
    bytes: int
    paper_core_mb: str  # the paper's agile-core figure for the strategy ("" none)


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


Row = TypeVar("Row", Size, Pull, Release)


def write(
    folder: Path, sizes: list[Size], pulls: list[Pull], releases: list[Release], markdown: str
) -> None:
    """The report's files; `markdown` ends with claims_section()."""
    for name, rows in ((TABLE1, sizes), (FIG5, pulls), (FIG6, releases)):
        with (folder / name).open("w", newline="") as f:
            fields = [f.name for f in dataclasses.fields(type(rows[0]))] if rows else []
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(dataclasses.asdict(row) for row in rows)
    (folder / MARKDOWN).write_text(markdown)


def claims_section(said: list[str]) -> list[str]:
    return [CLAIMS, "", *(f"- {claim}" for claim in said)]


def _rows(path: Path, kind: type[Row]) -> list[Row]:
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


@dataclass(frozen=True)
class Report:
    folder: Path
    sizes: list[Size]
    panels: list[Panel]
    claims: list[str] = field(default_factory=list)


def _mean(values: list[float]) -> float:
    return statistics.mean(values) if values else 0.0


def _fig5(pulls: list[Pull]) -> list[Panel]:
    """Per service and rate: each strategy's newest version whole, and its code changes
    (the paper's incremental case) as updates."""
    panels = []
    for service, rate in dict.fromkeys((p.service, p.rate_mbit) for p in pulls):
        mine = [p for p in pulls if (p.service, p.rate_mbit) == (service, rate)]
        newest = max(p.version for p in mine)
        strategies = list(dict.fromkeys(p.strategy for p in mine))
        whole, update = [], []
        for strategy in strategies:
            ours = [p for p in mine if p.strategy == strategy]
            absolute = [p for p in ours if p.kind == "absolute" and p.version == newest]
            coded = [p for p in ours if p.kind == "incremental" and p.change in ("code", "")]
            whole.append(_mean([p.measured_s for p in absolute]))
            update.append(_mean([p.measured_s for p in coded]))
        title = f"Fig. 5 · {service}, {rate:g} Mbit/s"
        panels.append(Panel(title, strategies, whole, update, ("all (newest)", "code update")))
    return panels


def _fig6(releases: list[Release]) -> list[Panel]:
    """Per rate: each stack release whole, and onto the release before."""
    panels = []
    for rate in dict.fromkeys(r.rate_mbit for r in releases):
        mine = [r for r in releases if r.rate_mbit == rate]
        times = [
            [
                _mean([r.measured_s for r in mine if (r.release, r.kind) == (k, kind)])
                for k in range(1, len(RELEASES) + 1)
            ]
            for kind in ("absolute", "incremental")
        ]
        title = f"Fig. 6 · the stack, {rate:g} Mbit/s"
        short = [label for _, label in RELEASES]
        panels.append(Panel(title, short, times[0], times[1], ("all", "update")))
    return panels


def read(folder: Path) -> Report:
    """OSError or ValueError (with the reason) when there is no whole report there."""
    sizes = _rows(folder / TABLE1, Size)
    panels = _fig5(_rows(folder / FIG5, Pull))
    if (folder / FIG6).exists():  # reports before Fig. 6 was measured have none
        panels += _fig6(_rows(folder / FIG6, Release))
    markdown = (folder / MARKDOWN).read_text()
    tail = markdown.split(CLAIMS, 1)[1] if CLAIMS in markdown else ""
    claims = [line[2:] for line in tail.splitlines() if line.startswith("- ")]
    return Report(folder, sizes, panels, claims)
