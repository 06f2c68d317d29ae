"""The latest paper benchmark report (`./dev bench paper`), read from its output folder
for the Images section: Table I, Fig. 5's series and the paper's claims."""

import csv
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from services.paths import ROOT

REPORT_ENV = "AGILE_PAPER_REPORT"


def report_dir() -> Path:
    """$AGILE_PAPER_REPORT, else where the benchmark writes by default."""
    return Path(os.environ.get(REPORT_ENV) or ROOT / "build" / "paper")


@dataclass(frozen=True)
class Panel:
    """Fig. 5 for one service at one link rate: per strategy, the newest version's
    absolute download time and the mean incremental one (s)."""

    service: str
    rate_mbit: float
    strategies: list[str]
    absolute_s: list[float]
    incremental_s: list[float]


@dataclass(frozen=True)
class PaperReport:
    folder: Path
    sizes: list[tuple[str, str, int, str]]  # service, strategy, bytes, the paper's MB
    panels: list[Panel]
    claims: list[str] = field(default_factory=list)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _mean_s(pulls: list[dict[str, str]], strategy: str, kind: str) -> float:
    """Mean measured time of a strategy's incremental pulls, or of its newest version's
    absolute ones."""
    newest = max(int(p["version"]) for p in pulls)
    times = [
        float(p["measured_s"])
        for p in pulls
        if p["strategy"] == strategy
        and p["kind"] == kind
        and (kind == "incremental" or int(p["version"]) == newest)
    ]
    return statistics.mean(times) if times else 0.0


def load_report(folder: Path) -> PaperReport:
    """OSError or ValueError (with the reason) when there is no whole report there."""
    sizes = [
        (r["service"], r["strategy"], int(r["bytes"]), r["paper_core_mb"])
        for r in _rows(folder / "table1.csv")
    ]
    pulls = _rows(folder / "fig5.csv")
    panels = []
    for service, rate in dict.fromkeys((p["service"], p["rate_mbit"]) for p in pulls):
        mine = [p for p in pulls if (p["service"], p["rate_mbit"]) == (service, rate)]
        strategies = list(dict.fromkeys(p["strategy"] for p in mine))
        panels.append(
            Panel(
                service,
                float(rate),
                strategies,
                [_mean_s(mine, s, "absolute") for s in strategies],
                [_mean_s(mine, s, "incremental") for s in strategies],
            )
        )
    claims: list[str] = []
    markdown = (folder / "report.md").read_text()
    if "## The paper's claims here" in markdown:
        tail = markdown.split("## The paper's claims here", 1)[1]
        claims = [line[2:] for line in tail.splitlines() if line.startswith("- ")]
    return PaperReport(folder, sizes, panels, claims)
