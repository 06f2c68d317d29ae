"""A staged rollout of one service image across the fleet, through each gateway's own
update service: one canary gateway first, through its health window, then the rest in
waves of N. The first gateway whose new version fails its health gate (its update
service then puts the previous version back) stops the rollout: the rest of its wave
is rolled back too, and no later wave starts.

Each step runs in the gateway's update service, not here: a rollout whose operator's
laptop sleeps (or whose link drops) finds the step's outcome from the service when the
gateway answers again."""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from dbus_fast import DBusError

from fleet.status import Member
from fleet.tunnel import TunnelError
from services import contract as c
from services.bus import error_text
from services.updater.client import UpdaterClient

STEP_TIMEOUT_S = 1800.0  # one gateway's update: a slow link's pull and the health window
RECONNECT_S = 2.0
FAILURES = (TunnelError, OSError, DBusError, EOFError, TimeoutError)


class State:
    WAITING = "waiting"
    UPDATING = "updating"
    HEALTHY = "healthy"  # the new version passed its health gate
    ROLLED_BACK = "rolled back"  # back on the previous version
    FAILED = "failed"
    NOT_STARTED = "not started"  # the rollout stopped before this gateway's wave
    UNREACHABLE = "unreachable"  # not updated: no answer when the rollout began
    UP_TO_DATE = "up to date"
    REFUSED = "refused"  # its update service refuses the release (unsigned, expired, ...)


@dataclass
class Step:
    """One gateway's part of the rollout, as the table shows it."""

    gateway: str
    wave: int  # 0: the canary
    state: str = State.WAITING
    predicted_bytes: int = 0  # what its update service planned to download
    pulled_bytes: int = 0
    message: str = ""


STEP_COLUMNS = ("Gateway", "Wave", "State", "Predicted", "Pulled", "Message")


def step_row(step: Step) -> tuple[str, ...]:
    """The rollout table's row of a gateway (agile-tui's Fleet section, `fleet rollout`)."""
    return (
        step.gateway,
        "canary" if step.wave == 0 else str(step.wave),
        step.state,
        f"{step.predicted_bytes / 1e6:.1f} MB",
        f"{step.pulled_bytes / 1e6:.1f} MB",
        step.message,
    )


def waves(names: list[str], canary: str, size: int) -> list[list[str]]:
    rest = [n for n in names if n != canary]
    return [[canary]] + [rest[i : i + size] for i in range(0, len(rest), size)]


class Rollout:
    def __init__(
        self,
        members: list[Member],
        service: str,
        registry: str = "",
        wave_size: int = 1,
        window_s: float = 0.0,
        canary: str = "",
        on_change: Callable[[list[Step]], None] = lambda _steps: None,
    ) -> None:
        if not members:
            raise ValueError("no gateways to roll out to")
        if wave_size < 1:
            raise ValueError("a wave is at least one gateway")
        self.members = {m.gateway.name: m for m in members}
        if canary and canary not in self.members:
            raise ValueError(f"no gateway {canary!r} (known: {', '.join(self.members)})")
        self.service = service
        self.registry = registry
        self.window_s = window_s
        self.on_change = on_change
        plan = waves(list(self.members), canary or next(iter(self.members)), wave_size)
        self.steps = {n: Step(n, i) for i, wave in enumerate(plan) for n in wave}
        self.waves = plan

    def _said(self, name: str, **changes: object) -> None:
        step = self.steps[name]
        for key, value in changes.items():
            setattr(step, key, value)
        self.on_change(list(self.steps.values()))

    async def run(self) -> bool:
        """True when every gateway runs the new version (or already did)."""
        # An admin on every gateway, or nothing starts: a rollout refused half-way
        # would leave the fleet on two versions.
        await asyncio.gather(*(self._check_role(name) for name in self.members))
        if any(s.state == State.FAILED for s in self.steps.values()):
            for step in self.steps.values():
                if step.state == State.WAITING:
                    self._said(step.gateway, state=State.NOT_STARTED)
            return False
        await asyncio.gather(*(self._plan(name) for name in self.members))
        canary = self.waves[0][0]
        # A release any gateway refuses (unsigned, expired, a replay) starts nowhere.
        refused = any(s.state == State.REFUSED for s in self.steps.values())
        if refused or self.steps[canary].state == State.UNREACHABLE:
            for step in self.steps.values():
                if step.state == State.WAITING:
                    self._said(step.gateway, state=State.NOT_STARTED)
            return False
        for wave in self.waves:
            todo = [n for n in wave if self.steps[n].state == State.WAITING]
            await asyncio.gather(*(self._update(name) for name in todo))
            if any(self.steps[n].state not in (State.HEALTHY, State.UP_TO_DATE) for n in todo):
                await asyncio.gather(
                    *(self._rollback(n) for n in todo if self.steps[n].state == State.HEALTHY)
                )
                for step in self.steps.values():
                    if step.state == State.WAITING:
                        self._said(step.gateway, state=State.NOT_STARTED)
                return False
        return all(s.state in (State.HEALTHY, State.UP_TO_DATE) for s in self.steps.values())

    async def _check_role(self, name: str) -> None:
        member = self.members[name]
        try:
            who = await asyncio.wait_for(member.who(), member.timeout_s)
        except FAILURES as exc:
            await member.drop()
            self._said(name, state=State.UNREACHABLE, message=error_text(exc) or "no answer")
            return
        if who is not None and who.role < c.Role.ADMIN:
            has = f"the {who.role} role" if who.role else "no role"
            self._said(
                name,
                state=State.FAILED,
                message=f"updates need the admin role there; {who.user} has {has}",
            )

    async def _plan(self, name: str) -> None:
        member = self.members[name]
        try:
            bus = await asyncio.wait_for(member.connect(), member.timeout_s)
            _, _, plans = await UpdaterClient(bus, member.timeout_s).plan(self.registry)
        except FAILURES as exc:
            await member.drop()
            self._said(name, state=State.UNREACHABLE, message=error_text(exc) or "no answer")
            return
        mine = [p for p in plans if p.service == self.service]
        if mine and mine[0].refused:
            self._said(name, state=State.REFUSED, message=mine[0].problem)
        elif not mine or mine[0].problem:
            why = mine[0].problem if mine else f"no {self.service} there"
            self._said(name, state=State.UNREACHABLE, message=why)
        elif mine[0].up_to_date:
            self._said(name, state=State.UP_TO_DATE, message=mine[0].running)
        else:
            p = mine[0]
            signed = f"release {p.release}, key {p.signed_by}" if not p.unsigned else "UNSIGNED"
            self._said(
                name,
                predicted_bytes=p.download_bytes,
                message=" · ".join(filter(None, (p.version, signed))),
            )

    async def _update(self, name: str) -> None:
        member = self.members[name]
        self._said(name, state=State.UPDATING)
        # Progress by operation: its first signals may come before its id does.
        progress: dict[str, dict[str, int]] = {}
        mine = ""

        def heard(signal: str, body: list) -> None:
            if signal == "Progress":
                progress.setdefault(body[0], {})[body[1]] = int(body[2])
                if body[0] == mine:
                    self._said(name, pulled_bytes=sum(progress[mine].values()))

        try:
            bus = await member.connect()
            updater = UpdaterClient(bus, member.timeout_s)
            await updater.watch(heard)
            mine = await updater.update([self.service], self.registry, self.window_s)
        except FAILURES as exc:
            self._said(name, state=State.FAILED, message=f"not started: {error_text(exc)}")
            return
        self._said(name, pulled_bytes=sum(progress.get(mine, {}).values()))
        op = await self._outcome(member, mine)
        outcomes: dict[str, str] = {
            c.OperationState.SUCCEEDED: State.HEALTHY,
            c.OperationState.ROLLED_BACK: State.ROLLED_BACK,
        }
        self._said(name, state=outcomes.get(op.state, State.FAILED), message=op.message)

    async def _outcome(self, member: Member, op_id: str) -> c.Operation:
        """The operation's end, as the gateway's update service says it: asked again
        and again, through a new connection whenever the old one went."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                bus = await asyncio.wait_for(member.connect(), member.timeout_s)
                op = await UpdaterClient(bus, member.timeout_s).current()
            except FAILURES:
                await member.drop()
                await asyncio.sleep(RECONNECT_S)
                continue
            if op.id != op_id:  # another operation since: this one's end is gone
                return c.Operation(
                    op_id, state=c.OperationState.FAILED, message="its outcome was lost"
                )
            if op.state != c.OperationState.RUNNING:
                return op
            await asyncio.sleep(0.5)
        return c.Operation(op_id, state=c.OperationState.FAILED, message="no end in sight")

    async def _rollback(self, name: str) -> None:
        member = self.members[name]
        self._said(name, state=State.UPDATING, message="rolling back: its wave failed")
        try:
            bus = await member.connect()
            op_id = await UpdaterClient(bus, member.timeout_s).rollback(self.service)
        except FAILURES as exc:
            self._said(name, state=State.FAILED, message=f"rollback not started: {error_text(exc)}")
            return
        op = await self._outcome(member, op_id)
        if op.state == c.OperationState.SUCCEEDED:
            self._said(name, state=State.ROLLED_BACK, message="its wave failed: rolled back")
        else:
            self._said(name, state=State.FAILED, message=op.message)

    async def close(self) -> None:
        """Its connections to the gateways."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*(m.drop() for m in self.members.values()))
