"""Builds of one architecture take turns on a machine (the update service's Build, the
CLI and a benchmark may start one at once); builds for another do not wait."""

import os
import subprocess
from collections.abc import Iterator

import pytest

from buildhost.worklock import one_at_a_time
from services.paths import WORK


def held_elsewhere(what: str) -> bool:
    """Whether another process finds the lock taken (flock -n fails at once)."""
    probe = ["flock", "--nonblock", str(WORK / f"{what}.lock"), "true"]
    return subprocess.run(probe, timeout=30).returncode != 0


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """Two locks of this test's own (the suite's builds take the real ones meanwhile)."""
    mine = (f"test-{os.getpid()}-amd64", f"test-{os.getpid()}-arm64")
    yield mine
    for name in mine:
        (WORK / f"{name}.lock").unlink(missing_ok=True)


def test_a_lock_is_held_until_its_block_ends_and_only_under_its_name(names) -> None:
    one, other = names
    with one_at_a_time(one):
        assert held_elsewhere(one)
        assert not held_elsewhere(other)
    assert not held_elsewhere(one)
