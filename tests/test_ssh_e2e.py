"""End to end as an operator works: ssh into the gateway, run agile-tui --demo in tmux, pair."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path: Path):
    """A private sshd on 127.0.0.1 that accepts one generated key."""
    assert Path(SSHD).exists(), "openssh-server is needed (.ci/run installs it)"
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / "host"], check=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / "client"], check=True
    )
    shutil.copy(keys / "client.pub", keys / "authorized_keys")
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
        f"SetEnv PATH={os.environ['PATH']}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield port, keys / "client"
    proc.terminate()
    proc.wait(5)


class Tmux:
    """A private tmux server (its own socket folder) with one session."""

    def __init__(self, name: str, socket_dir: Path) -> None:
        self.name = name
        self.env = {**os.environ, "TMUX_TMPDIR": str(socket_dir)}

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", *args], capture_output=True, text=True, env=self.env, check=check
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name).stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys, check=True)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")

    def alive(self) -> bool:
        return self.run("has-session", "-t", self.name).returncode == 0


def demo_over_ssh(sshd: tuple[int, Path], tmp_path: Path, name: str) -> Tmux:
    """A tmux session in which an operator ssh'es in and runs `agile-tui --demo`."""
    port, key = sshd
    remote = f"cd {ROOT} && TERM=xterm-256color .venv/bin/agile-tui --demo"
    ssh = (
        f"ssh -tt -i {key} -p {port} -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 '{remote}'"
    )
    tmux = Tmux(name, tmp_path)
    tmux.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", ssh, check=True)
    return tmux


def test_operator_pairs_a_device_over_ssh(sshd, tmp_path: Path) -> None:
    tmux = demo_over_ssh(sshd, tmp_path, f"agile-e2e-{os.getpid()}")
    try:
        tmux.wait_for("Discovered", timeout=60)
        tmux.wait_for("bus ●")
        tmux.keys("d")
        tmux.wait_for("Dummy Thermometer 2")  # the Dummy protocol's devices
        # The BLE environmental sensor sorts first (BLE, then address): once it is listed
        # nothing arrives above it, and the cursor stays on its row while others arrive.
        tmux.wait_for("AGILE Env 1")
        tmux.keys("g", "p")  # the first row; single keys (no escape sequence to split)
        tmux.wait_for("Pair AGILE Env 1")
        tmux.keys("Enter", "Enter")  # the proposed type, the proposed name
        # the registered table's row (its right end may sit under a notification)
        tmux.wait_for("bleC0FFEE000001  AGILE Env 1")
        tmux.keys("q")
        deadline = time.monotonic() + 20
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not tmux.alive(), "agile-tui did not exit on q"
    finally:
        tmux.run("kill-server")


def demo_gateways() -> set[int]:
    out = subprocess.run(
        ["pgrep", "-f", "services.runtime.cli up --native --simulate --state-dir /tmp/agile-demo-"],
        capture_output=True,
        text=True,
    ).stdout
    return {int(pid) for pid in out.split()}


def test_dropped_ssh_session_leaves_no_demo_gateway_behind(sshd, tmp_path: Path) -> None:
    before = demo_gateways()
    tmux = demo_over_ssh(sshd, tmp_path, f"agile-drop-{os.getpid()}")
    try:
        tmux.wait_for("Discovered", timeout=60)
        started = demo_gateways() - before
        assert started, "the demo gateway did not start"
    finally:
        tmux.run("kill-server")  # the connection drops: sshd hangs up on agile-tui
    deadline = time.monotonic() + 20
    while demo_gateways() & started and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not demo_gateways() & started, "the demo gateway outlived its agile-tui"
