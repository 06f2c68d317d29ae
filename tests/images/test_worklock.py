"""Builds of one architecture take turns on a machine (the update service's Build, the
CLI and a benchmark may start one at once); other architectures' do not wait."""

import subprocess

from buildhost.worklock import one_at_a_time
from services.paths import WORK


def held_elsewhere(what: str) -> bool:
    """Whether another process finds the lock taken (flock -n fails at once)."""
    probe = ["flock", "--nonblock", str(WORK / f"{what}.lock"), "true"]
    return subprocess.run(probe, timeout=30).returncode != 0


def test_a_build_lock_is_held_until_its_block_ends_and_only_for_its_architecture() -> None:
    with one_at_a_time("build-amd64"):
        assert held_elsewhere("build-amd64")
        assert not held_elsewhere("build-arm64")
    assert not held_elsewhere("build-amd64")
