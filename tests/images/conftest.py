"""The base-image hierarchy, built once per test session on the real engine (cached
by recipe digest, so a machine that has it builds nothing)."""

import subprocess
import sys

import pytest

from services.images.build import ROOT, build
from services.images.hierarchy import ensure_hierarchy


@pytest.fixture(scope="session")
def hierarchy(docker_client) -> list[str]:
    return ensure_hierarchy(docker_client)


@pytest.fixture(scope="session")
def stack_images(docker_client, hierarchy) -> None:
    """The multi-stage image of every service of the stack."""
    for service in ("bus", "core", "storage", "ble", "zigbee"):
        for _ in build(docker_client, service, say=lambda _line: None):
            pass


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
