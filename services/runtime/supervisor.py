"""The native runtime: the gateway bus and every service as its own child process.

The process boundaries are those of the containers, so a crash or a kill -9
behaves the same way in both runtimes: the supervisor restarts the service with
exponential backoff and the service registers itself again.
"""

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dbus_fast import DBusError, Variant
from dbus_fast.service import ServiceInterface, dbus_method

from services import contract as c
from services.access import group_id, guard, role_groups
from services.bus import ADDRESS_FILE, connect, list_names, request_names
from services.busconfig import SOCKET_NAME, start_bus_daemon
from services.catalog import ServiceSpec
from services.lifetime import dies_with_parent
from services.private import admit_groups
from services.runtime.logfile import RotatingLog

log = logging.getLogger(__name__)

STATUS_FILE = "runtime.json"
LOG_DIR = "logs"
LINE_LIMIT = 1 << 20  # a service's longest log line (a long traceback line stays whole)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class ChildState:
    name: str
    pid: int | None = None
    state: str = "starting"  # starting | running | restarting | stopped
    restarts: int = 0  # after the service exited on its own (crashes)
    started_at: float | None = None
    last_exit: int | None = None
    log: str = ""


@dataclass
class Control:
    """What was asked of one service through the runtime's bus object."""

    held: bool = False  # stopped on request: not restarted until Start
    restart_now: bool = False  # stopped on request to start again at once
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Supervisor:
    state_dir: Path
    specs: list[ServiceSpec]
    simulate: bool = False
    options: dict[str, list[str]] = field(default_factory=dict)  # service -> ["k=v", ...]
    min_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    stable_after_s: float = 30.0
    stop_timeout_s: float = 5.0
    log_max_bytes: int = 1 << 20
    log_backups: int = 3

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        self.log_dir = self.state_dir / LOG_DIR
        self.children = {
            s.name: ChildState(s.name, log=str(self.log_dir / f"{s.name}.log")) for s in self.specs
        }
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.control = {s.name: Control() for s in self.specs}
        self.bus_proc: subprocess.Popen[bytes] | None = None
        self.address = f"unix:path={self.state_dir / SOCKET_NAME}"
        # With simulated radios, BlueZ lives on a private "system bus" of its own.
        self.system_bus_dir = self.state_dir / "system-bus"
        self.system_bus_address = (
            f"unix:path={self.system_bus_dir / SOCKET_NAME}"
            if self.simulate and any(s.system_bus for s in self.specs)
            else None
        )
        self.system_bus_proc: subprocess.Popen[bytes] | None = None
        self.stopping = asyncio.Event()
        self.started = time.time()

    # -- status file read by `agile-gateway status` and the TUI --

    def write_status(self) -> None:
        status = {
            "runtime": "native",
            "simulate": self.simulate,
            "pid": os.getpid(),
            "state": "stopped" if self.stopping.is_set() else "running",
            "bus": self.address,
            "system_bus": self.system_bus_address,
            "started_at": self.started,
            "services": {n: asdict(c) for n, c in self.children.items()},
        }
        try:
            write_atomically(self.state_dir / STATUS_FILE, json.dumps(status, indent=1))
        except OSError as exc:  # a full disk: the bus object still says how things are
            log.error("%s not written: %s", STATUS_FILE, exc)

    # -- the bus --

    def _start_bus(self) -> None:
        self.bus_proc, _ = start_bus_daemon(
            self.state_dir, log_file=self.log_dir / "dbus-daemon.log", with_parent=True
        )
        # The role groups' members reach the socket through the otherwise private folder.
        gids = [g for g in map(group_id, role_groups().values()) if g is not None]
        if gids:
            admit_groups(self.state_dir, gids)
        # Without the daemon's guid, the address stays valid across daemon restarts.
        write_atomically(self.state_dir / ADDRESS_FILE, self.address + "\n")

    def _start_system_bus(self) -> None:
        self.system_bus_proc, _ = start_bus_daemon(
            self.system_bus_dir,
            log_file=self.log_dir / "system-bus.log",
            names=["org.bluez"],
            with_parent=True,
        )

    async def _keep_daemon(self, attr: str, start: Callable[[], None]) -> None:
        """Restart a bus daemon that dies; the services reconnect on their own."""
        while not self.stopping.is_set():
            proc = getattr(self, attr)
            while proc.poll() is None and not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), 0.5)
            if self.stopping.is_set():
                return
            log.error("%s exited with %s; restarting it", attr, proc.returncode)
            start()

    # -- services --

    def _command(self, spec: ServiceSpec) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "services.runtime.cli",
            "service",
            spec.name,
            "--bus",
            self.address,
            "--state-dir",
            str(self.state_dir),
        ]
        if self.simulate:
            cmd.append("--simulate")
        for opt in self.options.get(spec.name, []):
            cmd += ["--option", opt]
        return cmd

    async def _keep(self, spec: ServiceSpec) -> None:
        """The service runs, or waits its backoff or a Start; nothing that goes wrong
        here ends the keeping of it (a keeper that died left its service unsupervised)."""
        while not self.stopping.is_set():
            try:
                await self._keep_once(spec)
                return
            except Exception:
                log.exception("keeping %s failed; keeping it again", spec.name)
                await self._pause(self.min_backoff_s)

    async def _keep_once(self, spec: ServiceSpec) -> None:
        child = self.children[spec.name]
        backoff = self.min_backoff_s
        env = dict(os.environ)
        if spec.system_bus and self.system_bus_address:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.system_bus_address
        control = self.control[spec.name]
        output = RotatingLog(Path(child.log), self.log_max_bytes, self.log_backups)
        while not self.stopping.is_set():
            if control.held:
                child.state = "stopped"
                self.write_status()
                log.info("%s stopped on request", spec.name)
                await self._wait_for(control, lambda: not control.held)
                if self.stopping.is_set():
                    break
                backoff = self.min_backoff_s
            proc = await asyncio.create_subprocess_exec(
                *self._command(spec),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=dies_with_parent(),
                env=env,
                limit=LINE_LIMIT,
            )
            self.procs[spec.name] = proc
            child.pid, child.state, child.started_at = proc.pid, "running", time.time()
            self.write_status()
            began = time.monotonic()
            try:
                await _copy_lines(proc, output)
            finally:
                if proc.returncode is None and self.procs.get(spec.name) is proc:
                    await _drain(proc)
            code = await proc.wait()
            child.last_exit, child.pid = code, None
            if self.stopping.is_set():
                break
            if control.held:
                continue  # stopped on request: the loop's top waits for Start
            if control.restart_now:
                control.restart_now = False
                log.info("%s restarting on request", spec.name)
                continue
            if time.monotonic() - began > self.stable_after_s:
                backoff = self.min_backoff_s
            child.restarts += 1
            child.state = "restarting"
            self.write_status()
            log.warning(
                "%s exited with %s; restart %d in %.1f s", spec.name, code, child.restarts, backoff
            )
            # A Start or Restart asked meanwhile cuts the backoff short.
            await self._wait_for(control, lambda: False, backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
        child.state = "stopped"

    async def _wait_for(
        self, control: Control, done: Callable[[], bool], timeout_s: float | None = None
    ) -> None:
        """Until `done()`, the gateway stops, a request wakes us, or `timeout_s` passes."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not done() and not self.stopping.is_set():
            control.wake.clear()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            waiters = {asyncio.ensure_future(control.wake.wait())}
            waiters.add(asyncio.ensure_future(self.stopping.wait()))
            woken, pending = await asyncio.wait(
                waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                w.cancel()
            if woken and timeout_s is not None:
                return  # asked to start at once

    # -- requests through the runtime's bus object --

    def _spec(self, name: str) -> ServiceSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise c.InvalidArgs(
            f"no service {name!r} in this gateway (services: {', '.join(self.children)})"
        )

    def request_stop(self, name: str) -> None:
        self._spec(name)
        control = self.control[name]
        if control.held:
            raise c.NoResult(f"{name} is stopped already")
        control.held = True
        control.wake.set()  # cuts a backoff short: it is held at once
        self._terminate(name)

    def _running(self, name: str) -> bool:
        """The process this supervisor started, checked, never a pid read back."""
        proc = self.procs.get(name)
        return proc is not None and proc.returncode is None

    def request_start(self, name: str) -> None:
        self._spec(name)
        control = self.control[name]
        if not control.held and self._running(name):
            raise c.NoResult(f"{name} is running already")
        control.held = False
        control.wake.set()

    def request_restart(self, name: str) -> None:
        self._spec(name)
        control = self.control[name]
        control.held = False
        proc = self.procs.get(name)
        if proc is None or proc.returncode is not None:
            control.wake.set()  # stopped or waiting out a backoff: start it now
            return
        control.restart_now = True
        self._terminate(name)

    def _terminate(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()

    async def _serve_control(self) -> None:
        """The runtime's bus object, on the gateway bus (again after a daemon restart)."""
        while not self.stopping.is_set():
            try:
                bus = await connect(self.address)
                exports = guard(bus, self.state_dir, "runtime")
                exports.export(c.RUNTIME_PATH, RuntimeInterface(self))
                await request_names(bus, [c.RUNTIME_NAME])
            except (OSError, TimeoutError, DBusError, RuntimeError) as exc:
                log.debug("runtime object not on the bus yet: %s", exc)
                await self._pause(0.5)
                continue
            lost = asyncio.ensure_future(bus.wait_for_disconnect())
            stop = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait({lost, stop}, return_when=asyncio.FIRST_COMPLETED)
            for w in (lost, stop):
                w.cancel()
            if bus.connected:
                bus.disconnect()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until every service owns its bus names."""
        wanted = {n for s in self.specs for n in s.bus_names}
        deadline = time.monotonic() + timeout_s
        bus = await connect(self.address)
        try:
            while time.monotonic() < deadline:
                if wanted <= set(await list_names(bus)):
                    return True
                await asyncio.sleep(0.05)
            return False
        finally:
            bus.disconnect()

    async def _stop_children(self) -> None:
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        if running:
            _, pending = await asyncio.wait(
                [asyncio.create_task(p.wait()) for p in running], timeout=self.stop_timeout_s
            )
            for proc in running:
                if proc.returncode is None:
                    log.warning("pid %s ignored SIGTERM; killing it", proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            if pending:
                await asyncio.wait(pending, timeout=self.stop_timeout_s)

    async def run(
        self,
        on_ready: Callable[[bool, float], None] | None = None,
        ready_timeout_s: float = 60.0,
    ) -> int:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self._start_bus()
        tasks = [asyncio.create_task(self._keep_daemon("bus_proc", self._start_bus))]
        if self.system_bus_address:
            self._start_system_bus()
            tasks.append(
                asyncio.create_task(self._keep_daemon("system_bus_proc", self._start_system_bus))
            )
        tasks += [asyncio.create_task(self._keep(spec)) for spec in self.specs]
        tasks.append(asyncio.create_task(self._serve_control()))
        ready = await self.wait_ready(ready_timeout_s)
        elapsed = time.time() - self.started
        if ready:
            log.info("gateway up in %.2f s on %s", elapsed, self.address)
        else:
            log.error(
                "not every service came up within %g s; see %s", ready_timeout_s, self.log_dir
            )
        if on_ready:
            on_ready(ready, elapsed)
        await self.stopping.wait()
        log.info("stopping the gateway")
        await self._stop_children()
        await asyncio.gather(*tasks, return_exceptions=True)
        for daemon in (self.bus_proc, self.system_bus_proc):
            if daemon and daemon.poll() is None:
                daemon.terminate()
                try:
                    daemon.wait(self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    daemon.kill()
        (self.state_dir / ADDRESS_FILE).unlink(missing_ok=True)
        self.write_status()
        return 0


async def _drain(proc: asyncio.subprocess.Process) -> None:
    """Read what the process still writes, unkept: a full pipe would stop it."""
    assert proc.stdout is not None
    with contextlib.suppress(Exception):
        while await proc.stdout.read(65536):
            pass


async def _copy_lines(proc: asyncio.subprocess.Process, output: RotatingLog) -> None:
    """A service's output into its log, a line at a time (rotation keeps lines whole)."""
    assert proc.stdout is not None
    while True:
        try:
            line = await proc.stdout.readline()
        except ValueError:  # longer than LINE_LIMIT: keep what fits, drop the rest
            line = (await proc.stdout.read(LINE_LIMIT)) + b"\n"
        if not line:
            return
        output.write(line)


class RuntimeInterface(ServiceInterface):
    """`org.eclipse.agail.Runtime` (addition): the native runtime's services, and
    starting, stopping and restarting them, so that no client signals a pid it read."""

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__(c.RUNTIME_IFACE)
        self.supervisor = supervisor

    @dbus_method()
    def Services(self) -> c.NamedInfoListWire:
        return [
            [
                name,
                {
                    "state": Variant("s", child.state),
                    "pid": Variant("u", child.pid or 0),
                    "restarts": Variant("u", child.restarts),
                    "started_at": Variant("d", child.started_at or 0.0),
                    "log": Variant("s", child.log),
                },
            ]
            for name, child in self.supervisor.children.items()
        ]

    @dbus_method()
    def Stop(self, service: c.Str) -> None:
        self.supervisor.request_stop(service)

    @dbus_method()
    def Start(self, service: c.Str) -> None:
        self.supervisor.request_start(service)

    @dbus_method()
    def Restart(self, service: c.Str) -> None:
        self.supervisor.request_restart(service)
