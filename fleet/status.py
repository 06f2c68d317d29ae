"""Each gateway of the fleet watched on its own: reachable or not (and why), its
services up of all, devices registered, each service image's running version, the bytes
its pending updates download, when it last answered. One slow or dead gateway never
holds the others up: each has its own loop, and every step of it a deadline."""

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import DBusError
from dbus_fast.aio import MessageBus

from fleet.gateways import Gateway
from fleet.tunnel import Tunnel, TunnelError
from services import contract as c
from services.bus import call, connect, error_text, name_has_owner
from services.images.recipes import LABEL

POLL_TIMEOUT_S = 8.0  # a gateway that takes longer is said to be unresponsive
PLAN_EVERY_S = 60.0  # the update plan asks the registry: not at every refresh
ENGINE_RETRY_S = 60.0  # a gateway without an engine (native) is not asked at every refresh


@dataclass
class GatewayStatus:
    name: str
    reachable: bool = False
    problem: str = ""  # why not reachable, or what part did not answer
    short: str = ""  # the same in a few words
    services_up: int = 0
    services_total: int = 0
    devices: int = 0
    versions: dict[str, str] = field(default_factory=dict)  # service image -> version
    pending_bytes: int = 0  # what the pending updates download
    pending: list[str] = field(default_factory=list)  # the services with one
    update_problem: str = ""  # why the update service has no plan (e.g. no stack there)
    # Releases its trust policy refuses ("storage expired"), and pending ones it would
    # take unsigned (updater:allow-unsigned is on there).
    refused: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)
    role: str = ""  # what the gateway lets this user do there ("" : not said)
    last_seen: float = 0.0  # wall clock of its last answer (0: never)


COLUMNS = ("Gateway", "State", "Services", "Devices", "Versions", "Pending", "Last seen")


def row(status: GatewayStatus, now: float) -> tuple[str, ...]:
    """The fleet table's row of a gateway (agile-tui's Fleet section, `fleet status`)."""
    state = "up" if status.reachable else f"✗ {status.short}" if status.short else "…"
    versions = sorted(set(status.versions.values()))
    if len(versions) > 1:
        shown = " ".join(f"{s} {v}" for s, v in sorted(status.versions.items()))
    else:
        shown = versions[0] if versions else "—"
    if status.pending:
        pending = f"{', '.join(status.pending)}: {status.pending_bytes / 1e6:.1f} MB"
        if status.unsigned:
            pending += f" UNSIGNED {', '.join(status.unsigned)}"
    else:
        pending = "n/a" if status.update_problem else "none" if status.last_seen else "—"
    if status.refused:
        pending = f"✗ {', '.join(status.refused)}" + ("" if pending == "none" else f"; {pending}")
    if not status.last_seen:
        seen = "never"
    elif (ago := now - status.last_seen) < 2:
        seen = "now"
    else:
        seen = f"{ago:.0f} s ago" if ago < 120 else f"{ago / 60:.0f} min ago"
    services = f"{status.services_up}/{status.services_total}" if status.services_total else "—"
    devices = str(status.devices) if status.last_seen else "—"
    if status.reachable and status.role:
        state = f"up · {status.role}"  # what this user may do there
    return (status.name, state, services, devices, shown, pending, seen)


class Member:
    """One gateway: its tunnel, bus connection and engine client, kept between polls."""

    def __init__(
        self,
        gateway: Gateway,
        timeout_s: float = POLL_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.gateway = gateway
        self.timeout_s = timeout_s
        self.clock = clock
        self.executor = executor  # for ssh's blocking start (None: asyncio's default)
        self.status = GatewayStatus(gateway.name)
        self.tunnel: Tunnel | None = None
        self.bus: MessageBus | None = None
        self.engine: Any = None  # docker.DockerClient, imported late (a heavy import)
        self.planned_at = 0.0
        self.no_engine_at = 0.0  # when the engine was last found not there
        self.registry = ""  # where updates come from ("" : the stack's own)
        self._who: tuple[MessageBus, c.CallerInfo | None] | None = None

    async def poll(self) -> GatewayStatus:
        """Asks the gateway once, within the deadline; the status (also kept)."""
        status = GatewayStatus(
            self.gateway.name,
            last_seen=self.status.last_seen,
            versions=self.status.versions,
            pending_bytes=self.status.pending_bytes,
            pending=self.status.pending,
            update_problem=self.status.update_problem,
            refused=self.status.refused,
            unsigned=self.status.unsigned,
            role=self.status.role,
        )
        try:
            await asyncio.wait_for(self._poll(status), self.timeout_s)
        except TimeoutError:
            status.problem, status.short = f"no answer in {self.timeout_s:g} s", "no answer"
            await self.drop()
        except TunnelError as exc:
            status.problem, status.short = str(exc), exc.short
            await self.drop()
        except (OSError, DBusError, EOFError) as exc:
            status.problem = f"its bus: {error_text(exc) or type(exc).__name__}"
            status.short = "bus lost"
            await self.drop()
        else:
            status.reachable = True
            status.last_seen = self.clock()
        self.status = status
        return status

    async def connect(self) -> MessageBus:
        """The gateway's bus through its tunnel, made anew if either went."""
        if self.tunnel is None or not self.tunnel.alive():
            await self.drop()
            self.tunnel = Tunnel(self.gateway, self.timeout_s)  # drop() closes it if this times out
            await asyncio.get_running_loop().run_in_executor(self.executor, self.tunnel.open)
        if self.bus is None or not self.bus.connected:
            self.bus = await connect(self.tunnel.bus_address, self.timeout_s)
        return self.bus

    async def who(self) -> c.CallerInfo | None:
        """Who the gateway takes this user for (asked once per connection); None from a
        gateway that does not say."""
        bus = await self.connect()
        if self._who is None or self._who[0] is not bus:
            try:
                (wire,) = await call(
                    bus,
                    c.DEVICE_MANAGER_NAME,
                    c.ACCESS_PATH,
                    c.ACCESS_IFACE,
                    "WhoAmI",
                    timeout=self.timeout_s,
                )
                self._who = (bus, c.CallerInfo.from_wire(wire))
            except DBusError:
                self._who = (bus, None)
        return self._who[1]

    async def _poll(self, status: GatewayStatus) -> None:
        bus = await self.connect()
        who = await self.who()
        status.role = str(who.role) if who is not None else ""
        if await name_has_owner(bus, c.DEVICE_MANAGER_NAME):
            (devices,) = await call(
                bus, c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "Devices"
            )
            status.devices = len(devices)
        containers = await asyncio.get_running_loop().run_in_executor(
            self.executor, self._containers
        )
        if containers:
            status.services_total = len(containers)
            status.services_up = sum(up for up, _, _ in containers)
            status.versions = {image: version for _, image, version in containers if image}
        elif await name_has_owner(bus, c.RUNTIME_NAME):  # the native runtime's services
            (services,) = await call(
                bus, c.RUNTIME_NAME, c.RUNTIME_PATH, c.RUNTIME_IFACE, "Services"
            )
            status.services_total = len(services)
            status.services_up = sum(info["state"].value == "running" for _, info in services)
        if time.monotonic() - self.planned_at > PLAN_EVERY_S or not self.planned_at:
            await self._plan(bus, status)

    def _containers(self) -> list[tuple[bool, str, str]]:
        """(up, image's service, version) of each of the stack's containers there."""
        from services.engine import connect, said
        from services.errors import EngineError

        if self.no_engine_at and time.monotonic() - self.no_engine_at < ENGINE_RETRY_S:
            return []
        try:
            if self.engine is None:
                assert self.tunnel is not None
                self.engine = connect(self.tunnel.engine_url, timeout=10, ping=False)
            with said("listing the stack's containers"):
                found = self.engine.containers.list(all=True, filters={"label": f"{LABEL}.service"})
            self.no_engine_at = 0.0
        except EngineError:
            self.engine = None
            self.no_engine_at = time.monotonic()
            return []  # no engine there (a native gateway) or none reachable: the bus says
        seen = []
        for container in found:
            labels = container.labels
            health = container.attrs.get("State", {}).get("Health", {}).get("Status", "")
            up = container.status == "running" and health in ("", "healthy")
            seen.append(
                (up, labels.get(f"{LABEL}.service", ""), labels.get(f"{LABEL}.version", ""))
            )
        return seen

    async def _plan(self, bus: MessageBus, status: GatewayStatus) -> None:
        from services.updater.client import UpdaterClient

        self.planned_at = time.monotonic()
        status.update_problem, status.pending, status.pending_bytes = "", [], 0
        status.refused, status.unsigned = [], []
        if not await name_has_owner(bus, c.UPDATER_NAME):
            status.update_problem = "no update service"
            return
        try:
            _, _, plans = await UpdaterClient(bus, self.timeout_s).plan(self.registry)
        except DBusError as exc:
            status.update_problem = error_text(exc)
            return
        pending = [p for p in plans if not p.problem and not p.up_to_date]
        status.pending = [p.service for p in pending]
        status.unsigned = [p.service for p in pending if p.unsigned]
        # Not those with no signed release at all (an image never published, as much as
        # one pushed unsigned): what the table says is a release held back or tampered.
        status.refused = [
            f"{p.service} {p.short}" for p in plans if p.refused and p.short != "unsigned"
        ]
        status.pending_bytes = sum(p.download_bytes for p in pending)

    async def drop(self) -> None:
        """Forget the connections: the next poll makes them anew."""
        if self.bus is not None:
            with contextlib.suppress(Exception):
                self.bus.disconnect()
            self.bus = None
        if self.engine is not None:
            with contextlib.suppress(Exception):
                self.engine.close()
            self.engine = None
        if self.tunnel is not None:
            tunnel, self.tunnel = self.tunnel, None
            await asyncio.get_running_loop().run_in_executor(self.executor, tunnel.close)


class Fleet:
    """Every gateway polled in a loop of its own; `on_status` hears each answer (or its
    absence) as it comes."""

    def __init__(
        self,
        gateways: list[Gateway],
        on_status: Callable[[GatewayStatus], None] = lambda _status: None,
        period_s: float = 2.0,
        timeout_s: float = POLL_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # A thread per gateway for its blocking steps (ssh's start, the engine's API):
        # asyncio's default pool (cores + 4) would open 50 gateways a few at a time.
        self.executor = ThreadPoolExecutor(max(1, min(64, len(gateways))), "fleet")
        self.members = {g.name: Member(g, timeout_s, clock, self.executor) for g in gateways}
        self.on_status = on_status
        self.period_s = period_s
        self.tasks: list[asyncio.Task[None]] = []

    def statuses(self) -> list[GatewayStatus]:
        return [m.status for m in self.members.values()]

    async def poll_all(self) -> list[GatewayStatus]:
        """Every gateway asked once, at the same time."""
        return list(await asyncio.gather(*(m.poll() for m in self.members.values())))

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._loop(m)) for m in self.members.values()]

    async def _loop(self, member: Member) -> None:
        while True:
            self.on_status(await member.poll())
            await asyncio.sleep(self.period_s)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(m.drop() for m in self.members.values()))
        self.executor.shutdown(wait=False)
