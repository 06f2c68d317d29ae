"""`agile-gateway up --wait` and `status --wait`: a script may call every service as soon
as they return."""

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import contract as c
from tests.helpers import agile_gateway

pytestmark = pytest.mark.gateway


def busctl(address: str, name: str, path: str, iface: str, member: str) -> str:
    done = subprocess.run(
        ["busctl", f"--address={address}", "call", name, path, iface, member],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, f"{name}.{member}: {done.stderr}"
    return done.stdout


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state folder whose supervisor, if a test leaves one running, is stopped."""
    folder = tmp_path / "gw"
    yield folder
    with contextlib.suppress(OSError, ValueError, KeyError):
        status = json.loads((folder / "runtime.json").read_text())
        if status["state"] == "running":
            os.kill(status["pid"], signal.SIGTERM)


def test_up_wait_returns_when_every_service_answers(state_dir: Path) -> None:
    up = agile_gateway("up", "--native", "--simulate", "--wait", "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("gateway up; bus unix:path=")
    address = (state_dir / "bus.address").read_text().strip()
    # Right away, from an independent client: no "not provided by any .service files".
    assert busctl(
        address,
        c.PROTOCOL_MANAGER_NAME,
        c.PROTOCOL_MANAGER_PATH,
        c.PROTOCOL_MANAGER_IFACE,
        "Protocols",
    ).startswith("a(ssss) 3 ")
    assert busctl(
        address, c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "Devices"
    ).startswith("a(ssssssa(ss)) 0")
    assert busctl(address, c.STORAGE_NAME, c.STORAGE_PATH, c.STORAGE_IFACE, "Stats").startswith(
        "a{sv}"
    )
    for short in ("Dummy", "BLE", "ZB"):
        status = busctl(
            address, c.protocol_bus_name(short), c.protocol_path(short), c.PROTOCOL_IFACE, "Status"
        )
        assert status.startswith("s ")

    waited = agile_gateway("status", "--wait", "--timeout", "5", "--state-dir", str(state_dir))
    assert waited.returncode == 0, waited.stderr
    assert re.search(r"^devicemanager\s+running", waited.stdout, re.M)

    supervisor = json.loads((state_dir / "runtime.json").read_text())["pid"]
    down = agile_gateway("down", "--native", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert not Path(f"/proc/{supervisor}").exists()
    assert not (state_dir / "bus.address").exists()
    again = agile_gateway("down", "--native", "--state-dir", str(state_dir))
    assert again.returncode == 1 and "no native gateway runs" in again.stderr


def test_up_wait_names_the_service_that_does_not_come_up(state_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("storage cannot make its folder here\n")
    up = agile_gateway(
        "up",
        "--native",
        "--simulate",
        "--wait",
        "--timeout",
        "5",
        "--state-dir",
        str(state_dir),
        "--option",
        f"storage:folder={blocker / 'storage'}",
    )
    assert up.returncode == 1
    assert "not ready within 5 s" in up.stderr
    assert "not up: storage" in up.stderr
    assert "NotADirectoryError" in up.stderr  # the service's own last log lines
    status = json.loads((state_dir / "runtime.json").read_text())
    assert status["state"] == "stopped"  # nothing left running
    assert not Path(f"/proc/{status['pid']}").exists()


def test_status_wait_without_a_gateway_says_so(tmp_path: Path) -> None:
    waited = agile_gateway("status", "--wait", "--timeout", "0.5", "--state-dir", str(tmp_path))
    assert waited.returncode == 1
    assert "not ready within 0.5 s" in waited.stderr and "bus.address" in waited.stderr
