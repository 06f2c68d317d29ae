"""A client of the update service: start, watch, re-attach to and cancel its operations.
agile-tui and `agile-gateway images update|rollback|prune` both use it."""

import asyncio
from collections.abc import Callable
from typing import Any

from dbus_fast.aio import MessageBus

from services import contract as c
from services.bus import call, listen

SIGNALS = ("Started", "Log", "Progress", "Ended")


class UpdaterClient:
    """The update service's calls, on a connected bus."""

    def __init__(self, bus: MessageBus, timeout_s: float = 30.0) -> None:
        self.bus = bus
        self.timeout_s = timeout_s

    async def _call(self, member: str, signature: str = "", *body: Any) -> list[Any]:
        return await call(
            self.bus,
            c.UPDATER_NAME,
            c.UPDATER_PATH,
            c.UPDATER_IFACE,
            member,
            signature,
            body,
            timeout=self.timeout_s,
        )

    async def watch(self, handler: Callable[[str, list[Any]], None]) -> None:
        """`handler(member, body)` for each of the service's signals, from now on."""
        for member in SIGNALS:
            await listen(
                self.bus,
                (c.UPDATER_IFACE, c.UPDATER_PATH, member),
                lambda m: handler(m.member or "", m.body),
                sender=c.UPDATER_NAME,
            )

    async def plan(self, registry: str = "") -> tuple[str, str, list[c.ServicePlan]]:
        # Planning asks the registry for every image: longer than a usual call.
        (wire,) = await self._call("Plan", "s", registry)
        registry, strategy, plans = wire
        return registry, strategy, [c.ServicePlan.from_wire(p) for p in plans]

    async def update(self, services: list[str], registry: str = "", window_s: float = 0) -> str:
        (op_id,) = await self._call("Update", "assd", services, registry, float(window_s))
        return op_id

    async def rollback(self, service: str) -> str:
        (op_id,) = await self._call("Rollback", "s", service)
        return op_id

    async def install_local(self, service: str, window_s: float = 0) -> str:
        (op_id,) = await self._call("InstallLocal", "sd", service, float(window_s))
        return op_id

    async def build(self, service: str, strategy: str) -> str:
        (op_id,) = await self._call("Build", "ss", service, strategy)
        return op_id

    async def prune(self) -> str:
        (op_id,) = await self._call("Prune")
        return op_id

    async def cancel(self) -> bool:
        (stopped,) = await self._call("Cancel")
        return bool(stopped)

    async def current(self) -> c.Operation:
        (wire,) = await self._call("Current")
        return c.Operation.from_wire(wire)


async def follow(
    bus: MessageBus, start: Callable[[UpdaterClient], Any], say: Callable[[str], None]
) -> c.Operation:
    """Start an operation (`start(client)` returns its id), say its log lines as they
    come, and return it once it has ended."""
    client = UpdaterClient(bus)
    ended = asyncio.Event()
    mine: list[str] = []
    early: list[tuple[str, list[Any]]] = []  # signals before the id is known

    def heard(member: str, body: list[Any]) -> None:
        if not mine:
            early.append((member, body))
            return
        if body[0] != mine[0]:
            return
        if member == "Log":
            say(body[1])
        elif member == "Ended":
            ended.set()

    await client.watch(heard)  # before starting: no line is missed
    mine.append(await start(client))
    for member, body in early:
        heard(member, body)
    await ended.wait()
    return await client.current()
