"""Every `./dev bench NAME` runs here at its smallest size, so that none rots between the
runs that measure: a benchmark that would crash after 18 minutes of a full run is found
by the suite. What they measure is not checked here (their goals are for full runs)."""

import subprocess
import sys

import pytest

from services.paths import ROOT

# name -> (its smallest size's arguments, a line its results print)
ALONE = {
    "ble": (["--quick"], "records/s received"),
    "zigbee": (["--quick"], "join+interview"),
    "mqtt": (["--quick"], "bridge / ceiling"),
    "storage": (["--quick"], "store/SQLite"),
    "fleet": (["--sizes", "1", "--rounds", "1"], "agile-tui, Fleet section on 1 gateways"),
}
ON_THE_ENGINE = {
    "tui": (["--quick"], "idle CPU on Data with a 1 Hz chart"),
    "images": (["--quick"], "vs multistage"),
    "deltas": (["--quick"], "peak RSS of this process"),
    "trust": (["--quick"], "fleet rollout, 2 gateways"),
}
# Run at their smallest size by a test of their own.
ELSEWHERE = {"paper": "tests/images/test_bench_paper.py"}
# bare_app: the tui benchmark's baseline; paper_*: the paper benchmark's parts (its
# quick run covers them).
NOT_BENCHMARKS = {
    "__init__",
    "bare_app",
    "paper_builds",
    "paper_fix",
    "paper_history",
    "paper_series",
}


def run(name: str, args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_every_benchmark_has_a_smallest_size_the_suite_runs() -> None:
    names = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - NOT_BENCHMARKS
    assert names == set(ALONE) | set(ON_THE_ENGINE) | set(ELSEWHERE)


@pytest.mark.timeout(660)
@pytest.mark.parametrize("name", sorted(ALONE))
def test_the_benchmark_runs_at_its_smallest_size(name: str) -> None:
    args, printed = ALONE[name]
    assert printed in run(name, args)


@pytest.mark.timeout(660)
@pytest.mark.parametrize("name", sorted(ON_THE_ENGINE))
def test_the_engine_benchmark_runs_at_its_smallest_size(name: str, docker_client) -> None:
    args, printed = ON_THE_ENGINE[name]
    assert printed in run(name, args)
