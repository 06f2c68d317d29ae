"""Containers: the engine's containers by compose project, and the native service processes."""

import threading
from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import Footer

from agile_tui.client.errors import BusError, ClientError
from agile_tui.client.stack import StackRow, format_bytes, format_cpu, format_uptime
from agile_tui.models.containers import ContainersModel
from agile_tui.roles import lacking
from agile_tui.screens.audit import AuditScreen
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.screens.inspect import InspectScreen
from agile_tui.screens.logs import LogsScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable
from agile_tui.widgets.problem_banner import ProblemBanner

COLUMNS = ("Project", "Name", "State", "Health", "Uptime", "CPU", "Memory")
CONTAINER_ONLY = ("remove",)


class ContainersScreen(GatewayScreen):
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
        self.model = ContainersModel(lambda: self.app.session.native, lambda: self.app.engine)
        self._timer: Timer | None = None
        self._events_stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield GatewayBar("Containers")
        yield ProblemBanner("engine")
        table = LiveTable(COLUMNS, id="stack")
        runtime = self.app.session.runtime
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
        call = self.app.call_from_thread
        try:
            if not self.is_current:
                return
            try:
                rows = self.model.fetch()
            except ClientError as exc:  # the engine went away: the processes all the same
                call(self.notify, f"Docker engine: {exc}", severity="error")
                rows = self.model.fetch_native()
            call(self._show, self.model.fetched, rows)
            try:
                for batch in self.model.stats(rows):
                    call(self._show, self.model.sampled, batch)
            except ClientError as exc:  # the engine went away mid-way: the rows stay
                call(self.notify, f"Docker engine: {exc}", severity="error")
        finally:
            call(self._schedule)

    def _schedule(self) -> None:
        if self._timer:
            self._timer.stop()
        self._timer = self.set_timer(self.app.config.refresh_seconds, self.refresh_rows)

    def _show(self, apply: Callable[..., None], *what: object) -> None:
        """What came applied to the model (on this thread), then the rows shown."""
        apply(*what)
        self._show_rows()

    def _show_rows(self) -> None:
        now = self.app.session.clock()
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
                for key, r in self.model.rows.items()
            }
        )
        count = len(self.model.rows)
        table.border_subtitle = f"{count} units" if count else "nothing running here"
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="containers-events")
    def follow_events(self) -> None:
        try:
            for cid, row in self.model.events(self._events_stop):
                self.app.call_from_thread(self._show, self.model.changed, cid, row)
        except ClientError as exc:
            self.app.call_from_thread(
                self.notify, f"Docker events stopped: {exc}", severity="warning"
            )

    # -- actions --

    def _selected(self) -> StackRow | None:
        # check_action runs before compose has finished, when there is no table yet
        table = self.query(LiveTable).first() if self.query(LiveTable) else None
        key = table.selected_key() if table else None
        return self.model.rows.get(key) if key else None

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
        try:
            getattr(self.app.engine_or_error(), verb)(row.key)
        except ClientError as exc:
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
        gateway = self.app.session.gateway
        try:
            if gateway is None or not gateway.connected:
                raise BusError("the gateway bus is not connected")
            await gateway.runtime(verb.capitalize(), row.name)
        except ClientError as exc:
            self.notify(str(exc), title=row.name, severity="error")
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
