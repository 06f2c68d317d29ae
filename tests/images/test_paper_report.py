"""The paper report's one format: what the benchmark writes is what agile-tui reads."""

import pytest

from buildhost import paper_report as report
from buildhost.paper_rows import (
    FIX,
    TABLE1,
    BuildTime,
    Fix,
    HistoryUpdate,
    Pull,
    Release,
    Results,
    Size,
    read_rows,
)


def test_a_written_report_reads_back_as_its_rows_panels_and_claims(tmp_path) -> None:
    sizes = [Size("storage", "multistage", 186_813_347, "348")]
    pulls = [
        Pull("storage", "multistage", 20.0, 1, 1, "absolute", 9, 9, 3.0, 3.5),
        Pull("storage", "multistage", 20.0, 1, 2, "incremental", 9, 9, 0.4, 0.5, "code"),
        Pull("storage", "multistage", 20.0, 1, 2, "absolute", 9, 9, 3.0, 4.5),
    ]
    releases = [Release(k, 200.0, 1, "absolute", 2, 9, 9, 1.0, float(k)) for k in (1, 2, 3, 4)]
    markdown = "\n".join(["# x", "", *report.claims_section(["smaller: yes", "faster: no"])])
    builds = [
        BuildTime("amd64", "multistage", bases, 1, "cold", 1, seconds)
        for bases, seconds in (("own", 60.0), ("shared", 40.0))
    ]
    fixes = [Fix("storage", "multistage", 2.0, 1, "delta", 9, 9, 0.0, 10, 5, 0, 0, 1, 0, 1, 17.0)]
    report.write(tmp_path, Results(sizes, pulls, releases, fixes, builds), markdown)

    read = report.read(tmp_path)
    assert read.sizes == sizes
    assert read.claims == ["smaller: yes", "faster: no"]
    fig5, fig6, built, fixed = read.panels
    assert (fig5.groups, fig5.absolute_s, fig5.incremental_s) == (["multistage"], [4.5], [0.5])
    assert fig6.groups == [short for _, short in report.RELEASES]
    assert fig6.absolute_s == [1.0, 2.0, 3.0, 4.0]
    assert (built.groups, built.absolute_s, built.incremental_s) == (["multistage"], [60], [40])
    assert built.unit == "seconds to build"
    assert (fixed.absolute_s, fixed.incremental_s) == ([17.0], [2.0])  # on the gateway: 2 s


def test_the_claims_say_whether_the_later_parts_hold() -> None:
    builds = [
        BuildTime("amd64", "multistage", bases, run, step, 6, seconds)
        for run, jitter in ((1, 0.0), (2, 1.0))
        for bases, step, seconds in (
            ("own", "cold", 600.0),
            ("own", "base", 300.0),
            ("shared", "cold", 200.0),
            ("shared", "base", 60.0),
        )
        for seconds in [seconds + jitter]
    ]
    slow = Fix("storage", "multistage", 2.0, 1, "delta", 9, 9, 0.0, 50, 9, 0, 0.1, 2.5, 0, 1, 62.6)
    history = [
        HistoryUpdate("storage", "multistage", "a", 5_000, 1_100_000, 1_100_000, "delta", 5_000),
        # A delta dearer than the pull: not taken, the pull was.
        HistoryUpdate(
            "storage", "multistage", "b", 9_000_000, 8_000_000, 8_000_000, "pull", 8_000_000
        ),
    ]
    said = report.claims(Results(builds=builds, fixes=[slow], history=history))
    (built,) = [c for c in said if c.startswith("build times")]
    assert "261 s against 901 s" in built and built.endswith("holds")
    (goal,) = [c for c in said if "commit to healthy at most" in c]
    assert "62.6 s" in goal and "2.50 s" in goal and goal.endswith("not met")
    (over,) = [c for c in said if "over 2 updates" in c]
    assert "the smallest way each time — holds" in over and "1 cost more than the pull" in over


def test_the_fix_goal_is_judged_on_the_deltas_that_found_their_basis_kept(tmp_path) -> None:
    """A gateway's first delta after a pull reads its basis with docker save; the goal is
    for the fixes after it, and the first is said apart (not hidden)."""

    def fix(run: int, apply_s: float, basis: str) -> Fix:
        return Fix("storage", "multistage", 2.0, run, "delta", 9, 9, 0, 20, 8, 0.2, 0.03,
                   apply_s, 0.4, 1.5, 31.0, basis)  # fmt: skip

    kept = [fix(2, 0.6, "kept"), fix(3, 0.7, "kept")]
    (goal,) = [
        c for c in report.claims(Results(fixes=[fix(1, 2.9, "engine"), *kept])) if "most" in c
    ]
    assert "0.70 s (< 2 s)" in goal and "met; the first delta after a pull" in goal
    assert goal.endswith("docker save: 2.90 s")
    (goal,) = [c for c in report.claims(Results(fixes=[fix(1, 2.9, "engine")])) if "most" in c]
    assert goal.endswith("2.90 s (< 2 s) over 1 run(s) — not met")
    report.write(tmp_path, Results(fixes=[fix(1, 2.9, "engine"), *kept]), "")
    assert [f.basis for f in read_rows(tmp_path / FIX, Fix)] == ["engine", "kept", "kept"]


def test_a_row_that_does_not_fit_is_said_with_its_file(tmp_path) -> None:
    report.write(tmp_path, Results(sizes=[Size("storage", "squashed", 1, "")]), "")
    (tmp_path / TABLE1).write_text("service,strategy,bytes,paper_core_mb\ns,q,lots,\n")
    with pytest.raises(ValueError, match=r"table1\.csv"):
        report.read(tmp_path)
