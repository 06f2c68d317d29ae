"""The latest paper benchmark report (`./dev bench paper`), read from its output folder
for the Images section: Table I, Fig. 5's and Fig. 6's series and the paper's claims."""

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


# Fig. 6's stack releases, short enough for a chart's row (the report says them whole).
RELEASES = ("v1 own", "v2 shared", "v3 multi", "v4 code")


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
class PaperReport:
    folder: Path
    sizes: list[tuple[str, str, int, str]]  # service, strategy, bytes, the paper's MB
    panels: list[Panel]
    claims: list[str] = field(default_factory=list)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _mean(values: list[float]) -> float:
    return statistics.mean(values) if values else 0.0


def _fig5(pulls: list[dict[str, str]]) -> list[Panel]:
    """Per service and rate: each strategy's newest version whole, and its code changes
    (the paper's incremental case) as updates."""
    panels = []
    for service, rate in dict.fromkeys((p["service"], p["rate_mbit"]) for p in pulls):
        mine = [p for p in pulls if (p["service"], p["rate_mbit"]) == (service, rate)]
        newest = str(max(int(p["version"]) for p in mine))
        strategies = list(dict.fromkeys(p["strategy"] for p in mine))
        whole, update = [], []
        for strategy in strategies:
            ours = [p for p in mine if p["strategy"] == strategy]
            whole.append(
                _mean(
                    [
                        float(p["measured_s"])
                        for p in ours
                        if p["kind"] == "absolute" and p["version"] == newest
                    ]
                )
            )
            update.append(
                _mean(
                    [
                        float(p["measured_s"])
                        for p in ours
                        if p["kind"] == "incremental" and p.get("change", "code") == "code"
                    ]
                )
            )
        title = f"Fig. 5 · {service}, {float(rate):g} Mbit/s"
        panels.append(Panel(title, strategies, whole, update, ("all (newest)", "code update")))
    return panels


def _fig6(releases: list[dict[str, str]]) -> list[Panel]:
    """Per rate: each stack release whole, and onto the release before."""
    panels = []
    for rate in dict.fromkeys(r["rate_mbit"] for r in releases):
        mine = [r for r in releases if r["rate_mbit"] == rate]
        times = [
            [
                _mean(
                    [
                        float(r["measured_s"])
                        for r in mine
                        if (r["release"], r["kind"]) == (str(k), kind)
                    ]
                )
                for k in range(1, len(RELEASES) + 1)
            ]
            for kind in ("absolute", "incremental")
        ]
        title = f"Fig. 6 · the stack, {float(rate):g} Mbit/s"
        panels.append(Panel(title, list(RELEASES), times[0], times[1], ("all", "update")))
    return panels


def load_report(folder: Path) -> PaperReport:
    """OSError or ValueError (with the reason) when there is no whole report there."""
    sizes = [
        (r["service"], r["strategy"], int(r["bytes"]), r["paper_core_mb"])
        for r in _rows(folder / "table1.csv")
    ]
    panels = _fig5(_rows(folder / "fig5.csv"))
    if (folder / "fig6.csv").exists():  # reports before Fig. 6 was measured have none
        panels += _fig6(_rows(folder / "fig6.csv"))
    claims: list[str] = []
    markdown = (folder / "report.md").read_text()
    if "## The paper's claims here" in markdown:
        tail = markdown.split("## The paper's claims here", 1)[1]
        claims = [line[2:] for line in tail.splitlines() if line.startswith("- ")]
    return PaperReport(folder, sizes, panels, claims)
