"""`./dev bench paper --quick`: the paper's evaluation on a small scale (storage, its last
two versions from this project's history, multi-stage and squashed; a stack of the bus
and storage in four releases; one run), through the emulated link to a gateway engine
of its own; build times, a fix's way to a gateway and the history's last update on the
smallest case; what it writes and what it finds, and a resumed run. And the version
series a full run builds."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from buildhost import versions as history
from services.paths import ROOT

pytestmark = pytest.mark.timeout(1800)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def quick(out: Path, *parts: str, more: tuple[str, ...] = ()) -> str:
    """`./dev bench paper --quick` of `parts` into `out`; what it printed."""
    only = [arg for part in parts for arg in ("--only", part)]
    command = [sys.executable, "-m", "benchmarks.paper", "--quick", "--out", str(out), *only]
    done = subprocess.run([*command, *more], cwd=ROOT, capture_output=True, text=True, timeout=1700)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


# Each part on a worker of its own beside the engine's other tests (and each other): the
# versions they build take their own tags only (build's `retag` off; the build-time runs'
# bases a namespace of their own), their registries and gateway engines are their own,
# and builds on this machine take turns (buildhost.worklock).
@pytest.mark.xdist_group("paper")
def test_the_quick_paper_benchmark_measures_table_1_and_fig_5_and_fig_6(hierarchy, tmp_path):
    quick(tmp_path, "table1", "fig5", "fig6")

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
    squashed_whole = int(got[("squashed", "2", "absolute")]["planned_bytes"])
    squashed_update = int(got[("squashed", "2", "incremental")]["planned_bytes"])
    assert code_only < whole / 10  # a code change is the code layer only
    # Squashing takes that away: the wheels come again with the code, over a tenth of it.
    assert squashed_update > squashed_whole / 10

    # Fig. 6: the stack's releases, each onto the one before and from v2 on whole too.
    releases = rows(tmp_path / "fig6.csv")
    got6 = {(r["release"], r["kind"]): int(r["planned_bytes"]) for r in releases}
    assert set(got6) == {("1", "absolute")} | {
        (k, kind) for k in "234" for kind in ("absolute", "incremental")
    }
    assert all(r["images"] == "2" and float(r["measured_s"]) > 0 for r in releases)
    # Each technique cuts the stack's download; the shared hierarchy's own layers come
    # as an update, and a code-only release is its code layer.
    assert got6[("1", "absolute")] > got6[("2", "absolute")] > got6[("3", "absolute")]
    assert got6[("2", "incremental")] < got6[("2", "absolute")]
    assert got6[("4", "incremental")] < got6[("3", "absolute")] / 10

    for chart in ("fig5.png", "fig6.png"):
        assert (tmp_path / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.md").read_text()
    assert "## Table I" in report and "## Fig. 5" in report and "## Fig. 6" in report
    assert "each release's technique cuts its download" in report
    assert "squashing forces the whole image to be downloaded again" in report
    assert "predicted download time" in report


@pytest.mark.xdist_group("paper-builds")
def test_the_quick_paper_benchmark_times_cold_and_code_change_builds(hierarchy, tmp_path):
    """Storage alone, cold and after a code change, on its own bases and on the shared
    hierarchy (one image: the same work, nothing shared to gain)."""
    quick(tmp_path, "builds")
    built = {(b["bases"], b["step"]): float(b["seconds"]) for b in rows(tmp_path / "builds.csv")}
    assert set(built) == {(bases, step) for bases in ("own", "shared") for step in ("cold", "code")}
    # Timed, not compared: on a loaded machine any one build can take longer than another.
    assert all(seconds > 0 for seconds in built.values())
    assert (tmp_path / "builds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.md").read_text()
    assert "## Build times" in report and "build times (amd64, multistage, 1 image(s))" in report


@pytest.mark.xdist_group("paper-fix")
def test_the_quick_paper_benchmark_takes_a_fix_and_the_last_update_and_resumes(hierarchy, tmp_path):
    quick(tmp_path, "fix", "history")
    # A fix's way: a one-line change, commit to healthy on a gateway of its own, by delta.
    (fix,) = rows(tmp_path / "fix.csv")
    assert fix["method"] == "delta" and int(fix["download_bytes"]) < 100_000
    # The gateway's first delta after its first version: its basis from the engine's save.
    # Predicted at the link's rate as set (a fix's few KB teach none).
    assert fix["basis"] == "engine" and float(fix["predicted_s"]) > 0
    steps = [float(fix[f"{step}_s"]) for step in ("build", "publish", "plan", "transfer")]
    steps += [float(fix[f"{step}_s"]) for step in ("apply", "switch", "health")]
    assert all(step > 0 for step in steps)
    assert sum(steps) == pytest.approx(float(fix["total_s"]), rel=0.05)
    # The last update of the project's history, as a gateway takes it: the bundle.
    (update,) = rows(tmp_path / "history.csv")
    assert update["method"] == "delta"
    assert int(update["fetched_bytes"]) == int(update["delta_bytes"]) < int(update["pull_bytes"])
    assert (tmp_path / "fix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.md").read_text()
    assert "## A fix's way to the gateway" in report and "## Delta updates over" in report

    # Resumed, the history again over two updates: the kept series stay, and it is the
    # one run.
    series = {p.name for p in (tmp_path / "series").iterdir()}
    printed = quick(tmp_path, "history", more=("--resume", "--history", "2"))
    assert "a fix's way" not in printed and "over its last 2 update(s)" in printed
    assert len(rows(tmp_path / "history.csv")) == 3 and rows(tmp_path / "fix.csv") == [fix]
    assert series < {p.name for p in (tmp_path / "series").iterdir()}


def storage_code(tree: Path) -> dict[str, bytes]:
    folder = tree / "services" / "storage"
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*.py"))}


def test_a_services_version_series_ends_with_a_dependency_and_a_base_change(tmp_path):
    versions = history.series("storage", 5, tmp_path)

    assert [v.change for v in versions] == ["", "code", "code", "dependency", "base"]
    # Consecutive commits that changed storage's code, each with today's dependencies.
    codes = [storage_code(v.code) for v in versions[:3]]
    assert codes[0] != codes[1] != codes[2]
    today = (ROOT / "pyproject.toml").read_text()
    assert all((v.code / "pyproject.toml").read_text() == today for v in versions[:3])
    assert all(v.recipes is None for v in versions[:4])
    # The dependency change: the newest code with one wheel more.
    assert storage_code(versions[3].code) == codes[2]
    changed = (versions[3].code / "pyproject.toml").read_text()
    assert changed.replace(f'    "{history.DEPENDENCY}",\n', "", 1) == today != changed
    # The base change: that, with the runtime image rebuilt with one Debian package more.
    assert versions[4].code == versions[3].code and versions[4].recipes is not None
    runtime = (versions[4].recipes / "base" / "python.Dockerfile").read_text()
    assert f"ca-certificates {history.BASE_PACKAGE}" in runtime
