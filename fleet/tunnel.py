"""The way to one gateway: one SSH connection (an OpenSSH control master) that carries
the gateway bus — its unix socket forwarded to one here — and the Docker engine's API —
`docker system dial-stdio` on the gateway for each engine connection, relayed from a
unix socket here (docker's own ssh:// transport, on this connection, with its host key
check and identity). Nothing runs on the gateway beyond sshd and what runs there anyway,
and no port opens on it. Host keys are checked as ssh checks them, never accepted."""

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from fleet.gateways import Gateway
from services.errors import AgileError

CONNECT_TIMEOUT_S = 10.0
ALIVE_INTERVAL_S = 5  # ssh's keep-alive: a gateway gone quiet is dropped in 3 of these
CHUNK = 1 << 16


class TunnelError(AgileError, ConnectionError):
    """No way to the gateway; the message says why, in the operator's words, `short` in
    a few (for a table's cell)."""

    def __init__(self, message: str, short: str = "unreachable") -> None:
        super().__init__(message)
        self.short = short


def ssh_problem(gateway: Gateway, stderr: str) -> TunnelError:
    host = gateway.ssh.rpartition("@")[2]
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return TunnelError(
            f"{gateway.ssh}: its host key has CHANGED since it was last seen; not connecting "
            f"(someone may be in between; if the gateway was reinstalled, check its new key "
            f"and remove the old one: ssh-keygen -R {host})",
            "HOST KEY CHANGED",
        )
    if "Host key verification failed" in stderr:
        return TunnelError(
            f"{gateway.ssh}: its host key is unknown; not connecting (check the key, then "
            f"add it to known_hosts, e.g. by connecting once with ssh)",
            "host key unknown",
        )
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return TunnelError(f"{gateway.ssh}: {lines[-1] if lines else 'ssh ended'}", "ssh failed")


class EngineRelay:
    """A unix socket here; each connection to it is a `docker system dial-stdio` on the
    gateway, through the tunnel's ssh."""

    def __init__(self, path: Path, command: list[str]) -> None:
        self.command = command
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(16)
        self.procs: set[subprocess.Popen[bytes]] = set()
        threading.Thread(target=self._serve, daemon=True, name=f"relay {path}").start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.procs.add(proc)
            threading.Thread(target=self._up, args=(conn, proc), daemon=True).start()
            threading.Thread(target=self._down, args=(conn, proc), daemon=True).start()

    @staticmethod
    def _up(conn: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):
            while data := conn.recv(CHUNK):
                proc.stdin.write(data)
                proc.stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()  # the engine's side then ends the stream

    def _down(self, conn: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            while data := os.read(proc.stdout.fileno(), CHUNK):
                conn.sendall(data)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        self.procs.discard(proc)

    def close(self) -> None:
        self.server.close()
        for proc in list(self.procs):
            with contextlib.suppress(OSError):
                proc.kill()


class Tunnel:
    """Open with `open()` (blocking, at most `timeout_s` to connect); then the gateway's
    bus is at `bus_address` and its engine at `engine_url`, until `close()`."""

    def __init__(self, gateway: Gateway, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.gateway = gateway
        self.timeout_s = timeout_s
        # Unix socket paths are short (108 bytes): a short folder of its own.
        self.folder = Path(tempfile.mkdtemp(prefix="agile-fleet-", dir="/tmp"))
        self.control = self.folder / "ssh"
        self.bus_socket = self.folder / "bus"
        self.engine_socket = self.folder / "engine"
        self.master: subprocess.Popen[bytes] | None = None
        self.relay: EngineRelay | None = None
        # close() may come from another thread while open() still runs (a poll that
        # gave up waiting): whatever open() starts after that is stopped at once.
        self._lock = threading.Lock()
        self._closed = False

    @property
    def bus_address(self) -> str:
        return f"unix:path={self.bus_socket}"

    @property
    def engine_url(self) -> str:
        return f"unix://{self.engine_socket}"

    def ssh(self, *args: str) -> list[str]:
        gw = self.gateway
        options = {
            "BatchMode": "yes",  # never a prompt: a password or a key question is a no
            "StrictHostKeyChecking": "yes",
            "ConnectTimeout": str(max(1, round(self.timeout_s))),
            "ServerAliveInterval": str(ALIVE_INTERVAL_S),
            "ServerAliveCountMax": "3",
            "ControlPath": str(self.control),
        }
        if gw.identity:
            options["IdentityFile"] = str(gw.identity)
            options["IdentitiesOnly"] = "yes"
        if gw.known_hosts:
            options["UserKnownHostsFile"] = str(gw.known_hosts)
        flags = [f for key, value in options.items() for f in ("-o", f"{key}={value}")]
        return ["ssh", *flags, "-p", str(gw.port), *args, gw.ssh]

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        """A command on the gateway, on the open connection."""
        return subprocess.run(
            [*self.ssh(), command],
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            stdin=subprocess.DEVNULL,
        )

    def open(self) -> None:
        try:
            self._connect()
            self._forward_bus(self._remote_bus())
            engine = "docker system dial-stdio"
            if self.gateway.engine:
                engine = f"DOCKER_HOST={shlex.quote(self.gateway.engine)} {engine}"
            with self._lock:
                if self._closed:
                    raise TunnelError(f"{self.gateway.ssh}: closed")
                self.relay = EngineRelay(self.engine_socket, [*self.ssh(), engine])
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        log = self.folder / "ssh.log"  # a file: a pipe nobody reads fills and stops ssh
        with self._lock, log.open("wb") as stderr:
            if self._closed:
                raise TunnelError(f"{self.gateway.ssh}: closed")
            self.master = subprocess.Popen(
                self.ssh("-M", "-N", "-o", "ExitOnForwardFailure=yes"),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # the operator's ^C goes to the TUI, not to ssh
            )
        deadline = time.monotonic() + self.timeout_s + 5
        while not self.control.exists():
            if self.master.poll() is not None:
                raise ssh_problem(self.gateway, log.read_text(errors="replace"))
            if time.monotonic() > deadline:
                raise TunnelError(
                    f"{self.gateway.ssh}: no answer in {self.timeout_s:g} s", "no answer"
                )
            time.sleep(0.02)

    def _remote_bus(self) -> str:
        """The gateway bus's socket there, from its state folder's bus.address (a user of
        a role group, let through the folder to the socket but not to its files, finds
        the socket beside it)."""
        folder = shlex.quote(self.gateway.state_dir.rstrip("/"))
        where = f"{self.gateway.state_dir.rstrip('/')}/bus.address"
        got = self.run(
            f"cat {folder}/bus.address || {{ test -S {folder}/bus.sock && "
            f'echo "unix:path=$(cd {folder} && pwd)/bus.sock"; }}'
        )
        if got.returncode != 0:
            raise TunnelError(
                f"{self.gateway.ssh}: no gateway bus there ({where}: "
                f"{got.stderr.strip() or 'unreadable'}); is agile-gateway up?",
                "no gateway bus",
            )
        address = got.stdout.strip()
        for part in address.split(";")[0].partition(":")[2].split(","):
            key, _, value = part.partition("=")
            if address.startswith("unix:") and key == "path":
                return value
        raise TunnelError(
            f"{self.gateway.ssh}: its bus {address!r} is not a unix socket path", "no gateway bus"
        )

    def _forward_bus(self, remote: str) -> None:
        got = subprocess.run(
            self.ssh("-O", "forward", "-L", f"{self.bus_socket}:{remote}"),
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
        )
        if got.returncode != 0:
            raise ssh_problem(self.gateway, got.stderr)

    def alive(self) -> bool:
        return self.master is not None and self.master.poll() is None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self.relay is not None:
            self.relay.close()
        if self.master is not None and self.master.poll() is None:
            self.master.terminate()
            try:
                self.master.wait(5)
            except subprocess.TimeoutExpired:
                self.master.kill()
                self.master.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
