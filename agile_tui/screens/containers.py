"""Containers: the engine's containers by compose project, and the native service processes."""

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from dbus_fast import DBusError
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from agile_tui.client.gateway import error_text
from agile_tui.client.stack import StackRow, format_bytes, format_cpu, format_uptime
from agile_tui.roles import lacking
from agile_tui.screens.audit import AuditScreen
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.screens.inspect import InspectScreen
from agile_tui.screens.logs import LogsScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable
from agile_tui.widgets.problem_banner import ProblemBanner

if TYPE_CHECKING:  # the Docker SDK stays out of the TUI's start-up
    from agile_tui.client.engine import Engine

COLUMNS = ("Project", "Name", "State", "Health", "Uptime", "CPU", "Memory")
STATS_BATCH_S = 0.25  # stats coming in are shown together at most this often
CONTAINER_ONLY = ("remove",)


class ContainersScreen(Screen[None]):
    BINDINGS = [
        Binding("s", "start", "Start", id="containers.start"),
        Binding("t", "stop", "Stop", id="containers.stop"),
        Binding("R", "restart", "Restart", id="containers.restart"),
        Binding("delete", "remove", "Remove", id="containers.remove"),
        Binding("i", "inspect", "Inspect", id="containers.inspect"),
        Binding("l", "logs", "Logs", id="containers.logs"),
        Binding("A", "audit", "Audit", id="containers.audit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StackRow] = {}
        self._timer: Timer | None = None
        self._events_stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield GatewayBar("Containers")
        yield ProblemBanner("engine")
        table = LiveTable(COLUMNS, id="stack")
        runtime = self.app.session.runtime  # type: ignore[attr-defined] # AgileApp's (a cycle)
        table.border_title = f"Stack ({runtime})"
        yield table
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(LiveTable).focus()
        self.watch(self.app, "engine_state", self._engine_changed)
        self.refresh_rows()  # ScreenResume may not come for the first screen

    def on_screen_resume(self) -> None:
        self.refresh_rows()

    def on_unmount(self) -> None:
        self._events_stop.set()

    def _engine_changed(self, state: str) -> None:
        if state == "connected":
            self.follow_events()
            self.refresh_rows()

    # -- data --

    @work(thread=True, exclusive=True, group="containers-poll")
    def refresh_rows(self) -> None:
        """The list at once, then stats as they come (CPU needs periodic samples); between
        refreshes the list follows engine events."""
        try:
            if not self.is_current:
                return
            rows = []
            session = self.app.session  # type: ignore[attr-defined]
            if session.native is not None:
                rows += session.native.rows()
            engine = self.app.engine  # type: ignore[attr-defined]
            containers: list[StackRow] = []
            if engine is not None:
                try:
                    containers = engine.containers()
                except Exception as exc:  # the engine went away
                    self.app.call_from_thread(
                        self.notify, f"Docker engine: {exc}", severity="error"
                    )
            self.app.call_from_thread(self._show, rows + containers)
            if containers:
                self._fill_stats(engine, containers)
        finally:
            self.app.call_from_thread(self._schedule)

    def _fill_stats(self, engine: "Engine", containers: list[StackRow]) -> None:
        batch: list[StackRow] = []
        shown = time.monotonic()
        try:
            for row in engine.stats(containers):
                batch.append(row)
                if time.monotonic() - shown >= STATS_BATCH_S:  # one repaint per batch
                    self.app.call_from_thread(self._apply_stats, batch)
                    batch, shown = [], time.monotonic()
        except Exception as exc:  # the engine went away mid-way: the rows stay
            self.app.call_from_thread(self.notify, f"Docker engine: {exc}", severity="error")
        if batch:
            self.app.call_from_thread(self._apply_stats, batch)

    def _apply_stats(self, rows: list[StackRow]) -> None:
        for row in rows:
            old = self.rows.get(row.key)
            if old is not None:  # an event may have changed it meanwhile: keep that
                self.rows[row.key] = replace(old, cpu_pct=row.cpu_pct, mem_bytes=row.mem_bytes)
        self._show_rows()

    def _schedule(self) -> None:
        if self._timer:
            self._timer.stop()
        self._timer = self.set_timer(self.app.config.refresh_seconds, self.refresh_rows)  # type: ignore[attr-defined]

    def _show(self, rows: list[StackRow]) -> None:
        self.rows = {
            r.key: r for r in sorted(rows, key=lambda r: (r.group != "native", r.group, r.name))
        }
        self._show_rows()

    def _show_rows(self) -> None:
        now = self.app.session.clock()  # type: ignore[attr-defined]
        table = self.query(LiveTable).first() if self.query(LiveTable) else None
        if table is None:  # the app is closing
            return
        table.sync(
            {
                key: (
                    r.group or "-",
                    r.name,
                    r.state,
                    r.health or "-",
                    format_uptime(r.started_at, now),
                    format_cpu(r.cpu_pct),
                    format_bytes(r.mem_bytes),
                )
                for key, r in self.rows.items()
            }
        )
        table.border_subtitle = f"{len(self.rows)} units" if self.rows else "nothing running here"
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="containers-events")
    def follow_events(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        if engine is None:
            return
        try:
            for action, cid in engine.container_events(self._events_stop):
                row = None if action == "destroy" else engine.container(cid, with_stats=False)
                self.app.call_from_thread(self._apply_event, cid, row)
        except Exception as exc:
            self.app.call_from_thread(
                self.notify, f"Docker events stopped: {exc}", severity="warning"
            )

    def _apply_event(self, cid: str, row: StackRow | None) -> None:
        if row is None:
            self.rows.pop(cid, None)
        else:
            old = self.rows.get(cid)
            if old is not None:  # keep the last stats until the next sample
                row = StackRow(
                    **{
                        **row.__dict__,
                        "cpu_pct": old.cpu_pct,
                        "mem_bytes": old.mem_bytes if row.state == "running" else None,
                    }
                )
            self.rows[cid] = row
        self._show_rows()

    # -- actions --

    def _selected(self) -> StackRow | None:
        # check_action runs before compose has finished, when there is no table yet
        table = self.query(LiveTable).first() if self.query(LiveTable) else None
        key = table.selected_key() if table else None
        return self.rows.get(key) if key else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in CONTAINER_ONLY:
            row = self._selected()
            return row is not None and row.kind == "container"
        if action == "audit":
            return None if lacking(self, action) else True
        if action in ("start", "stop", "restart"):
            row = self._selected()  # a process: the native runtime's, a bus call
            return None if row and row.kind == "process" and lacking(self, action) else True
        return True

    def on_data_table_row_highlighted(self) -> None:
        self.refresh_bindings()

    @work(thread=True, group="containers-action")
    def _engine_action(self, verb: str, row: StackRow) -> None:
        from agile_tui.client.engine import EngineError

        engine = self.app.engine  # type: ignore[attr-defined]
        try:
            getattr(engine, verb)(row.key)
        except EngineError as exc:
            self.app.call_from_thread(self.notify, str(exc), title=row.name, severity="error")
            return
        self.app.call_from_thread(self.notify, f"{verb} done", title=row.name)

    def action_start(self) -> None:
        self._act("start")

    def action_stop(self) -> None:
        self._act("stop")

    def action_restart(self) -> None:
        self._act("restart")

    def _act(self, verb: str) -> None:
        row = self._selected()
        if row is None:
            return
        if row.kind == "process":
            self._process_action(verb, row)
        else:
            self._engine_action(verb, row)

    @work(group="containers-action")
    async def _process_action(self, verb: str, row: StackRow) -> None:
        """Through the native runtime's supervisor on the bus (never a signal to a pid
        read from a file, which may be stale)."""
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        try:
            if gateway is None or not gateway.connected:
                raise ConnectionError("the gateway bus is not connected")
            await gateway.runtime(verb.capitalize(), row.name)
        except (DBusError, ConnectionError) as exc:
            self.notify(error_text(exc), title=row.name, severity="error")
            return
        self.notify(f"{verb} asked", title=row.name)

    @work(group="containers-action")
    async def action_remove(self) -> None:
        row = self._selected()
        if row is None:
            return
        if await self.app.push_screen_wait(ConfirmModal(f"Remove container {row.name}?")):
            self._engine_action("remove", row)

    def action_inspect(self) -> None:
        if row := self._selected():
            self.app.push_screen(InspectScreen(row))

    def action_audit(self) -> None:
        self.app.push_screen(AuditScreen())

    def action_logs(self) -> None:
        if row := self._selected():
            self.app.push_screen(LogsScreen(row))
