"""`./dev bench paper --quick`: the paper's evaluation on a small scale (storage, its last
two versions from this project's history, multi-stage and squashed, one run), through
the emulated link to a gateway engine of its own; what it writes and what it finds."""

import csv
from pathlib import Path

import pytest

from benchmarks import paper

pytestmark = pytest.mark.timeout(1800)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_the_quick_paper_benchmark_measures_table_1_and_fig_5(
    docker_client, stack_images, tmp_path
):
    assert paper.main(["--quick", "--out", str(tmp_path)]) == 0

    sizes = {r["strategy"]: int(r["bytes"]) for r in rows(tmp_path / "table1.csv")}
    assert set(sizes) == {"multistage", "squashed"} and all(sizes.values())

    pulls = rows(tmp_path / "fig5.csv")
    got = {(p["strategy"], p["version"], p["kind"]): p for p in pulls}
    assert set(got) == {
        (strategy, version, kind)
        for strategy in ("multistage", "squashed")
        for version, kind in (("1", "absolute"), ("2", "incremental"), ("2", "absolute"))
    }
    for p in pulls:
        planned, down = int(p["planned_bytes"]), int(p["link_bytes"])
        # What went down the link is what the plan said, plus the registry's answers.
        assert planned <= down <= planned + 100_000, p
        assert float(p["measured_s"]) > 0, p
    # Predicted as the update service predicts: from the pulls before (none before the first).
    assert float(pulls[0]["predicted_s"]) == 0
    assert all(float(p["predicted_s"]) > 0 for p in pulls[1:]), pulls
    whole = int(got[("multistage", "2", "absolute")]["planned_bytes"])
    code_only = int(got[("multistage", "2", "incremental")]["planned_bytes"])
    squashed_update = int(got[("squashed", "2", "incremental")]["planned_bytes"])
    assert code_only < whole / 10  # a code change is the code layer only
    assert squashed_update > 10 * code_only  # squashing takes that away

    assert (tmp_path / "fig5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.md").read_text()
    assert "## Table I" in report and "## Fig. 5" in report
    assert "squashing forces the whole image to be downloaded again" in report
    assert "predicted download time" in report
