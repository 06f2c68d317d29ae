"""A second Docker engine of its own (data, socket, namespaces), for tests that crash an
engine: the suite's engine serves every other test and must not go down.

Its own network namespace because dockerd without a bridge deletes the host's docker0
(the suite's engine then cannot run a build step), and its own mount namespace so that
its mounts go with it even when it is killed; its socket is a file, reachable from any
namespace."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from services.engine import connect
from services.errors import EngineUnreachable


class PrivateEngine:
    def __init__(self, folder: Path, data_root: Path | None = None) -> None:
        self.folder = folder
        self.data_root = data_root or folder / "root"  # e.g. on a small disk
        # Sockets live under the exec root, and a unix socket's path is at most 104 bytes.
        self.short = Path(tempfile.mkdtemp(prefix="agd-", dir="/tmp"))
        self.socket = self.short / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        f = self.folder
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--mount",  # and its mounts (data root, layers) vanish with it
                "--",
                "dockerd",
                f"--data-root={self.data_root}",
                f"--exec-root={self.short / 'exec'}",
                f"--pidfile={f / 'dockerd.pid'}",
                f"--host=unix://{self.socket}",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=(f / "dockerd.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its containerd with it: a crash takes both
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                connect(f"unix://{self.socket}", timeout=5).close()
                return
            except EngineUnreachable:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the private dockerd did not start:\n{(f / 'dockerd.log').read_text()}"
                    ) from None
                time.sleep(0.2)

    def listen(self, port: int = 0) -> socket.socket:
        """A listening TCP socket on 127.0.0.1 inside this engine's network namespace (at
        `port`: e.g. a registry's own, so that its address means it on both sides; 0:
        any), held here: what the engine reaches as a registry at that address (loopback:
        an insecure registry by default) is served from outside it, e.g. by a link
        emulator forwarding to a registry of the host. A helper made inside the namespace hands
        the socket over a unix socket (a file: reachable from both sides)."""
        assert self.proc is not None
        path = self.short / "listen.sock"
        with socket.socket(socket.AF_UNIX) as handover:
            handover.bind(str(path))
            handover.listen(1)
            helper = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/proc/{self.proc.pid}/ns/net",
                    "--",
                    sys.executable,
                    "-c",
                    _HANDOVER,
                    str(path),
                    str(port),
                ]
            )
            handover.settimeout(30)
            connection, _ = handover.accept()
            with connection:
                _, fds, _, _ = socket.recv_fds(connection, 16, 1)
            helper.wait(30)
        path.unlink()
        return socket.socket(fileno=fds[0])

    def client(self) -> docker.DockerClient:
        return connect(f"unix://{self.socket}", timeout=300, ping=False)

    def crash(self) -> None:
        """SIGKILL to everything of this engine at once, as a power cut stops it: dockerd,
        its containerd, the containers' shims (which left dockerd's process group) and
        the containers under them. A shim or container left alive would keep the old
        mount namespace, and the restarted engine would start containers on a root
        filesystem nobody mounted for them."""
        assert self.proc is not None
        mine = _tree(self.proc.pid)
        for pid in mine:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in mine) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The exec root is under /run on a gateway: a power cut empties it (and a stale
        # containerd pid file would send the next dockerd to a dead containerd).
        shutil.rmtree(self.short / "exec", ignore_errors=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        shutil.rmtree(self.short, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _tree(dockerd: int) -> set[int]:
    """dockerd, every process in its mount namespace (containerd, the shims, though
    they are reparented away from it) and every descendant of those (the containers)."""
    namespace = os.readlink(f"/proc/{dockerd}/ns/mnt")
    parents: dict[int, int] = {}
    found = {dockerd}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().split(") ")[1].split()[1])
            if os.readlink(entry / "ns" / "mnt") == namespace:
                found.add(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


_HANDOVER = """
import fcntl, socket, struct, sys
# A new network namespace's loopback is down: up (SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP).
with socket.socket() as s:
    flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, struct.pack("16sH14x", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))
listener = socket.create_server(("127.0.0.1", int(sys.argv[2])))
with socket.socket(socket.AF_UNIX) as out:
    out.connect(sys.argv[1])
    socket.send_fds(out, [b"x"], [listener.fileno()])
"""
