"""The gateway as an operator installs it: the built wheel in a clean virtual
environment, run from anywhere but the checkout, runs the native gateway, builds a
service image and brings up the container stack from its packaged recipes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildhost import project
from buildhost.build import WHEELHOUSE, code_version
from buildhost.hierarchy import HOST_ARCH
from services.images.recipes import LABEL

pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-wheel"


@pytest.fixture
def installed(stack_images, tmp_path: Path):  # type: ignore[no-untyped-def]
    """`agile-gateway` from the wheel in a fresh venv (dependencies from the wheelhouse
    the image builds made: no network needed); runs it in an empty folder."""
    dist = tmp_path / "dist"
    project.build_wheel(dist)
    [wheel] = dist.glob("agile_gateway-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(WHEELHOUSE / HOST_ARCH),
            f"{wheel}[ble,zigbee,updater]",
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "agile-gateway"), *args],
            capture_output=True,
            text=True,
            cwd=away,
            env=env,
            timeout=600,
        )

    return run


def test_the_installed_wheel_runs_builds_and_brings_up_the_stack(
    installed, docker_client, tmp_path
) -> None:
    native = tmp_path / "native"
    up = installed("up", "--native", "--simulate", "--wait", "--state-dir", str(native))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        status = installed("status", "--state-dir", str(native), "--json")
        report = json.loads(status.stdout)
        assert report["bus"] == "reachable"
        assert {s["name"] for s in report["services"] if s["state"] == "running"} >= {
            "protocolmanager",
            "storage",
            "zigbee",
            "updater",
        }
    finally:
        down = installed("down", "--native", "--state-dir", str(native))
        assert down.returncode == 0, down.stderr

    built = installed("images", "build", "storage")
    assert built.returncode == 0, built.stdout + built.stderr
    image = docker_client.images.get("agile/storage:multistage")
    assert image.labels[f"{LABEL}.version"] == code_version()  # the checkout's code
    assert (tmp_path / "cache" / "agile-gateway" / "images").is_dir()  # not the checkout

    stack = tmp_path / "stack"
    stack.mkdir()
    up = installed(
        "up", "--containers", "--simulate", "--project", PROJECT, "--state-dir", str(stack)
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = installed("status", "--state-dir", str(stack), "--json")
        assert json.loads(status.stdout)["bus"] == "reachable"
    finally:
        down = installed(
            "down", "--containers", "--simulate", "--project", PROJECT, "--state-dir", str(stack)
        )
    assert down.returncode == 0, down.stdout + down.stderr
