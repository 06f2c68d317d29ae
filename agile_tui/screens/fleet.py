"""Fleet: every gateway of agile-tui's config (and --gateway) over SSH — reachable or
not and why, services up, devices, versions, pending updates, last seen — each asked on
its own, so one slow or dead gateway never stalls the others. Enter (o) opens a gateway in
the four sections, as the local one; R rolls a service's new image out: the selected
gateway first (the canary), then the rest in waves."""

import asyncio
import dataclasses

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static

from agile_tui.client.errors import ClientError
from agile_tui.client.fleet import (
    COLUMNS,
    SERVICE_IMAGES,
    STEP_COLUMNS,
    Fleet,
    GatewayStatus,
    Member,
    Rollout,
    Step,
    open_session,
    row,
    step_row,
)
from agile_tui.screens.choice_modal import ChoiceModal
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.screens.prompt_modal import PromptModal
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable

DRAW_EVERY_S = 0.5
NO_FLEET = (
    'No gateways. Add [gateways.NAME] tables (ssh = "user@host") to agile-tui\'s config '
    "file, or start it with --gateway USER@HOST (repeatable)."
)


class FleetScreen(GatewayScreen):
    BINDINGS = [
        Binding("o", "open_gateway", "Open", id="fleet.open"),  # and enter on a row
        Binding("l", "local", "Local gateway", id="fleet.local"),
        Binding("R", "rollout", "Roll out", id="fleet.rollout"),
    ]
    DEFAULT_CSS = """
    FleetScreen #gateways { height: 1fr; }
    FleetScreen #detail { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    FleetScreen #rollout { height: auto; max-height: 10; display: none; }
    FleetScreen #rollout.running { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, GatewayStatus] = {}
        self.fleet: Fleet | None = None
        self.rolling = False

    def compose(self) -> ComposeResult:
        yield GatewayBar("Fleet")
        with Vertical():
            table = LiveTable(COLUMNS, id="gateways")
            table.border_title = "Gateways"
            yield table
            yield Static(id="detail")
            yield LiveTable(STEP_COLUMNS, id="rollout")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        gateways = self.app.gateways
        if not gateways:
            self.query_one("#detail", Static).update(NO_FLEET)
            return
        self.statuses = {g.name: GatewayStatus(g.name) for g in gateways}
        self._draw()
        period = self.app.config.refresh_seconds
        clock = self.app.home.clock
        self.fleet = Fleet(gateways, self._heard, period_s=period, clock=clock)
        self.fleet.start()
        self.set_interval(DRAW_EVERY_S, self._draw)  # new answers, and "last seen" ages

    async def on_unmount(self) -> None:
        if self.fleet is not None:
            await self.fleet.stop()

    def _heard(self, status: GatewayStatus) -> None:
        # Drawn with the next tick, not at each answer: fifty gateways answer fifty
        # times a period.
        self.statuses[status.name] = status

    def _draw(self) -> None:
        now = self.app.home.clock()
        table = self.query_one("#gateways", LiveTable)
        table.sync({name: row(s, now) for name, s in self.statuses.items()})
        up = sum(s.reachable for s in self.statuses.values())
        table.border_subtitle = f"{up} of {len(self.statuses)} answering"
        self._detail()

    @on(DataTable.RowHighlighted, "#gateways")
    def _detail(self) -> None:
        name = self.query_one("#gateways", LiveTable).selected_key()
        status = self.statuses.get(name or "")
        if status is None:
            return
        said = [status.problem] if status.problem else []
        if status.versions:
            said.append(
                "versions: " + ", ".join(f"{k} {v}" for k, v in sorted(status.versions.items()))
            )
        if status.update_problem:
            said.append(f"updates: {status.update_problem}")
        self.query_one("#detail", Static).update(f"{name}: " + ("; ".join(said) or "all well"))

    @on(DataTable.RowSelected, "#gateways")
    def _chosen(self) -> None:
        self.action_open_gateway()

    def _selected(self) -> str | None:
        return self.query_one("#gateways", LiveTable).selected_key()

    @work(exclusive=True, group="fleet-open")
    async def action_open_gateway(self) -> None:
        name = self._selected()
        if name is None or self.fleet is None:
            return
        gateway = self.fleet.members[name].gateway
        self.notify(f"connecting to {name} ({gateway.ssh})…")
        try:
            session, tunnel = await asyncio.to_thread(open_session, gateway)
        except ClientError as exc:
            self.notify(str(exc), title=f"{name}: not opened", severity="error")
            return
        await self.app.open_gateway(session, tunnel)

    async def action_local(self) -> None:
        home = dataclasses.replace(self.app.home)
        await self.app.open_gateway(home, None)

    @work(exclusive=True, group="fleet-rollout")
    async def action_rollout(self) -> None:
        canary = self._selected()
        if canary is None or self.fleet is None:
            return
        if self.rolling:
            self.notify("a rollout is running", severity="warning")
            return
        service = await self.app.push_screen_wait(
            ChoiceModal(f"Roll out which service? ({canary} first)", SERVICE_IMAGES)
        )
        if not service:
            return
        size = await self.app.push_screen_wait(PromptModal("Gateways a wave after the canary", "1"))
        if size is None:
            return
        try:
            wave = int(size or "1")
            members = [Member(m.gateway, m.timeout_s) for m in self.fleet.members.values()]
            rollout = Rollout(
                members, service, wave_size=wave, canary=canary, on_change=self._steps
            )
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        self.rolling = True
        table = self.query_one("#rollout", LiveTable)
        table.border_title = f"Rollout · {service} · {canary} first, then waves of {wave}"
        table.add_class("running")
        ok = False
        try:
            ok = await rollout.run()
        finally:
            await rollout.close()
            # Said before `rolling` drops: whoever waits on it reads the outcome at once.
            table.border_subtitle = "done: every gateway healthy" if ok else "stopped"
            self.rolling = False
        self.notify(
            f"{service}: " + ("on every gateway" if ok else "stopped; see the rollout table"),
            severity="information" if ok else "error",
        )

    def _steps(self, steps: list[Step]) -> None:
        self.query_one("#rollout", LiveTable).sync({s.gateway: step_row(s) for s in steps})
