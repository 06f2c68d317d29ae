"""Updates of the container stack: per service the bytes its update will download (before
anything is pulled), the stack's total, per-layer pull progress, and rollbacks said.

Everything runs in the gateway's update service: this screen starts operations, shows
what they say, and finds a running one again when it opens (after a dropped session)."""

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, RichLog, Static

from agile_tui.client.errors import ClientError
from agile_tui.client.gateway import UpdaterEvent
from agile_tui.client.stack import format_bytes
from agile_tui.client.updates import UpdateCheck, UpdaterClient, updater_of
from agile_tui.roles import lacking
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable
from services import contract as c

SERVICE_COLUMNS = ("Service", "Running", "Registry", "Pull", "Delta")
USED = "▸ "  # marks the way the update will download: the smaller one
PULL_COLUMNS = ("Layer", "Pulled", "Bytes")
BAR = 20
BUSY = {
    "update": "updating",
    "rollback": "rolling back",
    "recover": "recovering a cut-off update",
    "build": "building",
    "prune": "pruning",
}


def pull_bar(done: int, total: int) -> str:
    filled = BAR * done // total if total else 0
    return f"{'█' * filled}{'░' * (BAR - filled)} {100 * done // max(total, 1):>3}%"


class UpdatesScreen(GatewayScreen):
    BINDINGS = [
        Binding("c", "check", "Check", id="updates.check"),
        Binding("u", "update", "Update", id="updates.update"),
        Binding("a", "update_all", "Update all", id="updates.all"),
        Binding("r", "rollback", "Roll back", id="updates.rollback"),
        Binding("x", "cancel", "Cancel", id="updates.cancel"),
        Binding("escape", "back", "Back", id="updates.back"),
    ]
    DEFAULT_CSS = """
    UpdatesScreen #services { height: auto; max-height: 9; }
    UpdatesScreen #pull { height: auto; max-height: 8; }
    UpdatesScreen #said { height: 1fr; border: round $primary 50%; overflow-y: auto; }
    UpdatesScreen .message { height: auto; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.result: UpdateCheck | None = None
        self.busy = ""  # what runs: "", "checking", "updating", "rolling back", ...
        self.operation = ""  # the id of the update service's operation this screen shows
        self.pull_rows: dict[str, tuple[str, str, str]] = {}
        self.said: list[str] = []  # what the operation said, as text

    def compose(self) -> ComposeResult:
        yield GatewayBar("Images")
        yield Static(id="note", classes="message")
        services = LiveTable(SERVICE_COLUMNS, id="services")
        services.border_title = "Updates of the service images"
        yield services
        pull = LiveTable(PULL_COLUMNS, id="pull")
        pull.border_title = "Pull"
        yield pull
        # Wrapped: the engine's errors are long, and the operator needs all of them.
        said = RichLog(id="said", max_lines=1000, wrap=True)
        said.border_title = "Update log"
        yield said
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#services").focus()
        self.follow(self.app.events.updater, self._heard)
        self.watch(self.app, "bus_state", self._bus_state_changed, init=False)
        self._set_busy("checking")
        self.attach()

    def _bus_state_changed(self, state: str) -> None:
        if state == "connected":
            self.attach()  # the bus came back: where is the operation now?

    def _updater(self) -> UpdaterClient:
        return updater_of(self.app.session)

    # -- finding the update service's operation --

    @work(exclusive=True, group="updates")
    async def attach(self) -> None:
        """Show the running operation if there is one (started by another client, or by
        this operator before the session dropped); else check the registry."""
        try:
            op = await self._updater().current()
        except ClientError as exc:  # said on the screen, which stays usable
            self.show_problem(str(exc))
            self._set_busy("")
            return
        if op.running:
            self._show_lines(op)
            self.operation = op.id
            self._set_busy(BUSY.get(op.kind, op.kind))
        elif op.id and op.id == self.operation:  # ours ended while the bus was away
            self._ended(op.state, op.message)
        else:
            self._show_lines(op)  # the last one: how it ended, whoever started it
            self.check()

    def _show_lines(self, op: c.Operation) -> None:
        if not op.id or (op.id == self.operation and op.running):
            return  # shown as it came
        self._clear()
        for line in op.lines:
            self.say(line)
        log = self.query_one("#said", RichLog)
        log.border_subtitle = (
            f"{op.kind} of {op.target}: running"
            if op.running
            else f"last: {op.kind} of {op.target}, {op.state}"
        )

    # -- checking --

    def action_check(self) -> None:
        if not self.busy:
            self._set_busy("checking")
            self.check()

    @work(exclusive=True, group="updates")
    async def check(self) -> None:
        try:
            registry, strategy, plans = await self._updater().plan(self.app.session.registry or "")
        except ClientError as exc:  # said on the screen, which stays usable
            self.show_problem(str(exc))
        else:
            self.show_check(UpdateCheck(registry, strategy, plans))
        self._set_busy("")

    def show_problem(self, text: str) -> None:
        self.result = None
        self.query_one("#note", Static).update(text)
        self.query_one("#services", LiveTable).sync({})
        self.query_one("#services", LiveTable).border_subtitle = ""

    def show_check(self, result: UpdateCheck) -> None:
        self.result = result
        rows = {}
        problems, notes = [], []
        for s in result.services:
            if not s.has_plan:
                state, pull, delta = s.short, "", ""
                problems.append(f"{s.service}: {s.problem}")
            elif s.up_to_date:
                state, pull, delta = "up to date", "0 B", ""
            else:
                state = f"→ {s.version}" if s.version else "newer"
                pull = f"{s.pull_bytes:,} B"
                delta = f"{s.delta_bytes:,} B" if s.delta_bytes else "none"
                if s.method == "delta":
                    delta = USED + delta
                elif s.method == "layers":
                    pull = f"{USED}{s.download_bytes:,} B"
                    notes.append(
                        f"{s.service}: only the layers not here"
                        f" (the engine's pull: {format_bytes(s.pull_bytes)})"
                    )
                else:
                    pull = USED + pull
            rows[s.service] = (s.service, s.running or "not built", state, pull, delta)
        table = self.query_one("#services", LiveTable)
        table.sync(rows)
        pending = result.pending
        table.border_subtitle = (
            f"stack: {result.total_bytes:,} B ({format_bytes(result.total_bytes)}) "
            f"in {len(pending)} update{'s' if len(pending) != 1 else ''}"
            + (f" {result.predicted}" if result.predicted else "")
            if pending
            else "stack up to date"
        )
        self.query_one("#note", Static).update(
            f"registry {result.registry} · {result.strategy} images"
            + "".join(f"\n{line}" for line in (problems + notes)[:1])
        )

    # -- operations --

    def _selected(self) -> str | None:
        return self.query_one("#services", LiveTable).selected_key()

    def action_update(self) -> None:
        service = self._selected()
        if service is None or self.result is None or self.busy:
            return
        if service not in self.result.pending:
            self.notify(f"{service}: nothing to update", severity="warning")
            return
        self._start("updating", [service])

    def action_update_all(self) -> None:
        if self.result is None or self.busy:
            return
        if not self.result.pending:
            self.notify("the stack is up to date")
            return
        self._start("updating", self.result.pending)  # the service puts the bus last

    def action_rollback(self) -> None:
        service = self._selected()
        if service is None or self.busy or self.result is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._start("rolling back", [service])

        self.app.push_screen(
            ConfirmModal(f"Put {service} back on the image it ran before its last update?"),
            answered,
        )

    def _start(self, busy: str, services: list[str]) -> None:
        self._set_busy(busy)
        self._clear()
        self.start_operation(busy, services)

    def _clear(self) -> None:
        self.said.clear()
        self.query_one("#said", RichLog).clear()
        self.query_one("#said", RichLog).border_subtitle = ""
        self.pull_rows = {}
        self.query_one("#pull", LiveTable).sync({})

    @work(exclusive=True, group="updates")
    async def start_operation(self, busy: str, services: list[str]) -> None:
        updater = self._updater()
        try:
            if busy == "updating":
                registry = self.result.registry if self.result else ""
                self.operation = await updater.update(services, registry)
            else:
                self.operation = await updater.rollback(services[0])
        except ClientError as exc:
            self._failed(str(exc))
            self._set_busy("")

    @work(exclusive=True, group="cancel")
    async def action_cancel(self) -> None:
        if not self.busy or self.busy == "checking":
            return
        try:
            stopped = await self._updater().cancel()
        except ClientError as exc:
            self._failed(str(exc))
            return
        self.notify(
            "cancelled: nothing was changed"
            if stopped
            else "too late to cancel: it finishes, or rolls back if unhealthy",
            severity="information" if stopped else "warning",
        )

    def _heard(self, event: UpdaterEvent) -> None:
        op_id, *args = event.body
        if event.member == "Started" and not self.operation:
            self._clear()  # ours (before its call answered), or another client's: watch it
            self.operation = op_id
            self._set_busy(BUSY.get(args[0], args[0]))
        if op_id != self.operation:
            return
        if event.member == "Log":
            self.say(args[0])
        elif event.member == "Progress":
            self.pulled(*args)
        elif event.member == "Ended":
            self._ended(*args)

    def _ended(self, state: str, message: str) -> None:
        if state == c.OperationState.ROLLED_BACK:
            self.notify(message, severity="warning", timeout=10)
        elif state == c.OperationState.FAILED:
            self.notify(message, severity="error", timeout=10)
        self.query_one("#said", RichLog).border_subtitle = f"ended: {state}"
        self.operation = ""
        self._set_busy("checking")
        self.check()

    def say(self, line: str) -> None:
        self.said.append(line)
        self.query_one("#said", RichLog).write(line)

    def pulled(self, layer: str, done: int, total: int) -> None:
        bytes_text = f"{format_bytes(done)} / {format_bytes(total)}"
        self.pull_rows[layer] = (layer, pull_bar(done, total), bytes_text)
        self.query_one("#pull", LiveTable).sync(self.pull_rows)

    def _failed(self, text: str) -> None:
        self.say(text)
        self.notify(text, severity="error", timeout=10)

    def _set_busy(self, what: str) -> None:
        self.busy = what
        self.query_one("#services", LiveTable).border_title = (
            f"Updates of the service images · {what}" if what else "Updates of the service images"
        )
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if lacking(self, action):
            return None
        if action in ("update", "update_all", "rollback", "check"):
            return None if self.busy else True  # shown dimmed while something runs
        if action == "cancel":
            return True if self.busy and self.busy != "checking" else None
        return True

    def action_back(self) -> None:
        self.dismiss()
