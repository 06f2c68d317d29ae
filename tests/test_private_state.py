"""The gateway's state is private, tried as another local user (uid 65534) would: the
native runtime's tree admits only the gateway's user and group, the ZigBee network key
only its user, and a tree an older version left open (0755/0644) is mended at start."""

import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.bus import connect
from tests.helpers import eventually, protocol

NOBODY = 65534


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user can reach (pytest's own are root's alone: a test there could
    not fail)."""
    top = Path(tempfile.mkdtemp(prefix="agile-private-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, user=NOBODY, group=NOBODY, capture_output=True, text=True, timeout=30
    )


async def test_the_state_tree_is_private_and_an_open_one_is_mended(
    gateway_factory, open_folder
) -> None:
    state = open_folder / "gw"
    (state / "zigbee").mkdir(parents=True)
    for folder in (state, state / "zigbee"):
        folder.chmod(0o755)
    for name in ("notes.txt", "zigbee/old-backup.json"):
        (state / name).write_text("{}")
        (state / name).chmod(0o644)
    assert as_nobody("cat", str(state / "zigbee/old-backup.json")).returncode == 0  # open

    gw = gateway_factory(state_dir=state)
    bus = await connect(gw.address)
    try:
        await eventually(lambda: protocol(bus, "ZB", "Status"))
    finally:
        bus.disconnect()
    key_files = ["zigbee/zigbee.db", "zigbee/virtual-radio.json", "zigbee/old-backup.json"]
    assert all((state / name).exists() for name in key_files)
    for path in (state, *state.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink() or path.is_socket():
            continue
        assert not mode & 0o007, f"{path} is open to others: {mode:04o}"
    assert stat.S_IMODE((state / "zigbee").stat().st_mode) == 0o700  # the network key

    assert as_nobody("ls", str(state)).returncode != 0
    for name in key_files:
        assert "Permission denied" in as_nobody("cat", str(state / name)).stderr
    busctl = as_nobody("busctl", f"--address={gw.address}", "list")
    assert busctl.returncode != 0
    assert as_nobody("ls", str(open_folder)).returncode == 0  # the check itself can pass
