"""An operator's session: a private sshd on 127.0.0.1, and tmux to type into ssh and
read the screen."""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def private_sshd(folder: Path, settings: str = "") -> Iterator[tuple[int, Path]]:
    """A private sshd on 127.0.0.1 that accepts one generated key: (port, the key).
    `settings`: more sshd_config lines."""
    assert Path(SSHD).exists(), "openssh-server is needed (.ci/run installs it)"
    keys = folder / "ssh"
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
        f"SetEnv PATH={os.environ['PATH']}\n{settings}"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield port, keys / "client"
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    with private_sshd(tmp_path) as port_and_key:
        yield port_and_key


def known_hosts(sshd: tuple[int, Path], folder: Path) -> Path:
    """A known_hosts file with the private sshd's host key."""
    port, key = sshd
    host_key = (key.parent / "host.pub").read_text().split()[:2]
    path = folder / "known_hosts"
    path.write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    return path


def reacher(sshd: tuple[int, Path], folder: Path):  # type: ignore[no-untyped-def]
    """`reach(name, state_dir, **settings)`: a fleet entry for a gateway on this machine
    (its state folder), reached as an operator reaches it: through the private sshd, as
    root with the generated key, its host key known."""
    from fleet.gateways import Gateway

    port, key = sshd
    hosts = known_hosts(sshd, folder)

    def reach(name: str, state_dir: Path, **settings: object) -> Gateway:
        fields = {"port": port, "identity": key, "known_hosts": hosts, "state_dir": str(state_dir)}
        return Gateway(name, "root@127.0.0.1", **{**fields, **settings})  # type: ignore[arg-type]

    return reach


@pytest.fixture
def reach(sshd, tmp_path):  # type: ignore[no-untyped-def]
    return reacher(sshd, tmp_path)


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

    def shown(self, text: str, timeout: float) -> str | None:
        """The screen once `text` is on it; None if it is not within `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        return None

    def wait_for(self, text: str, timeout: float = 30) -> str:
        screen = self.shown(text, timeout)
        if screen is None:
            raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")
        return screen

    def wait_for_gone(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text in self.screen():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} stayed; the screen shows:\n{self.screen()}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.run("has-session", "-t", self.name).returncode == 0


def over_ssh(sshd: tuple[int, Path], tmp_path: Path, name: str, remote: str) -> Tmux:
    """A tmux session in which an operator ssh'es into the gateway and runs `remote`."""
    port, key = sshd
    ssh = (
        f"ssh -tt -i {key} -p {port} -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 '{remote}'"
    )
    tmux = Tmux(name, tmp_path)
    tmux.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", ssh, check=True)
    return tmux
