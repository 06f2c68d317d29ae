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
from agile_tui.client.updates import updater_of
from agile_tui.models.updates import BUSY, UpdatesModel
from agile_tui.roles import lacking
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable
from services import contract as c

SERVICE_COLUMNS = ("Service", "Running", "Registry", "Pull", "Delta", "Signed")
USED = "▸ "  # marks the way the update will download: the smaller one
PULL_COLUMNS = ("Layer", "Pulled", "Bytes")
BAR = 20


def signed_cell(s: c.ServicePlan) -> str:
    """The release a plan rests on: its number, or why it must not run."""
    if s.refused:
        return "✗"  # why: in the Registry column and the note
    if not s.has_plan:
        return ""
    return "UNSIGNED" if s.unsigned else f"r{s.release}"


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
        self.model = UpdatesModel(lambda: updater_of(self.app.session), "")

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
        self.model.registry = self.app.session.registry or ""
        self.query_one("#services").focus()
        self.subscribe(self.app.events.updater, self._heard)
        self.watch(self.app, "bus_state", self._bus_state_changed, init=False)
        self._set_busy("checking")
        self.attach()

    def _bus_state_changed(self, state: str) -> None:
        if state == "connected":
            self.attach()  # the bus came back: where is the operation now?

    # -- finding the update service's operation --

    @work(exclusive=True, group="updates")
    async def attach(self) -> None:
        """Show the running operation if there is one (started by another client, or by
        this operator before the session dropped); else check the registry."""
        try:
            where, op = await self.model.attach()
        except ClientError as exc:  # said on the screen, which stays usable
            self.model.result, self.model.problem = None, str(exc)
            self.show_check()
            self._set_busy("")
            return
        if where == "ended":  # ours ended while the bus was away
            self._ended(op.state, op.message)
            return
        self.show_operation()
        if where == "running":
            self._set_busy(self.model.busy)
        else:
            self.check()

    # -- checking --

    def action_check(self) -> None:
        if not self.model.busy:
            self._set_busy("checking")
            self.check()

    @work(exclusive=True, group="updates")
    async def check(self) -> None:
        await self.model.check()
        self.show_check()
        self._set_busy("")

    def show(self) -> None:
        """Everything as the model has it."""
        self.show_check()
        self.show_operation()
        self._set_busy(self.model.busy)

    def show_check(self) -> None:
        table = self.query_one("#services", LiveTable)
        result = self.model.result
        if result is None:
            self.query_one("#note", Static).update(self.model.problem)
            table.sync({})
            table.border_subtitle = ""
            return
        rows = {}
        problems, notes, keys, expiries = [], [], set(), []
        for s in result.services:
            signed = signed_cell(s)
            if s.signed_by:
                keys.add(s.signed_by)
                expiries.append(s.expires)
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
            rows[s.service] = (s.service, s.running or "not built", state, pull, delta, signed)
        table.sync(rows)
        pending = result.pending
        table.border_subtitle = (
            f"stack: {result.total_bytes:,} B ({format_bytes(result.total_bytes)}) "
            f"in {len(pending)} update{'s' if len(pending) != 1 else ''}"
            + (f" {result.predicted}" if result.predicted else "")
            if pending
            else "stack up to date"
        )
        if any(s.unsigned and s.has_plan for s in result.services):
            trust = "[b reverse red] updater:allow-unsigned is on: UNSIGNED images run here [/]"
        elif keys:
            until = min(expiries)[5:16].replace("T", " ")  # ISO 8601, UTC
            trust = f"signed {', '.join(sorted(keys))} till {until}Z"
        else:
            trust = ""
        self.query_one("#note", Static).update(
            " · ".join(filter(None, (f"registry {result.registry}", result.strategy, trust)))
            + "".join(f"\n{line}" for line in (problems + notes)[:1])
        )

    def show_operation(self) -> None:
        operation = self.model.operation
        log = self.query_one("#said", RichLog)
        log.clear()
        for line in operation.said:
            log.write(line)
        log.border_subtitle = operation.title
        self._show_pulls()

    def _show_pulls(self) -> None:
        self.query_one("#pull", LiveTable).sync(
            {
                layer: (
                    layer,
                    pull_bar(done, total),
                    f"{format_bytes(done)} / {format_bytes(total)}",
                )
                for layer, (done, total) in self.model.operation.pulls.items()
            }
        )

    # -- operations --

    def _selected(self) -> str | None:
        return self.query_one("#services", LiveTable).selected_key()

    def action_update(self) -> None:
        service = self._selected()
        result = self.model.result
        if service is None or result is None or self.model.busy:
            return
        if service not in result.pending:
            self.notify(f"{service}: nothing to update", severity="warning")
            return
        self.start_operation("updating", [service])

    def action_update_all(self) -> None:
        result = self.model.result
        if result is None or self.model.busy:
            return
        if not result.pending:
            self.notify("the stack is up to date")
            return
        self.start_operation("updating", result.pending)  # the service puts the bus last

    def action_rollback(self) -> None:
        service = self._selected()
        if service is None or self.model.busy or self.model.result is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_operation("rolling back", [service])

        self.app.push_screen(
            ConfirmModal(f"Put {service} back on the image it ran before its last update?"),
            answered,
        )

    def start_operation(self, busy: str, services: list[str]) -> None:
        self.model.begin(busy)  # the log cleared before its lines come
        self._set_busy(busy)
        self.show_operation()
        self._start(services)

    @work(exclusive=True, group="updates")
    async def _start(self, services: list[str]) -> None:
        try:
            await self.model.start(services)
        except ClientError as exc:
            self._failed(str(exc))
            self._set_busy("")

    @work(exclusive=True, group="cancel")
    async def action_cancel(self) -> None:
        if not self.model.busy or self.model.busy == "checking":
            return
        try:
            stopped = await self.model.cancel()
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
        # Another client's operation is watched as well, when none of ours runs.
        heard = self.model.heard(event, adopt=lambda _kind: True)
        if heard == "started":
            kind = event.body[1]
            self._set_busy(BUSY.get(kind, kind))
            self.show_operation()
        elif heard == "log":
            self.query_one("#said", RichLog).write(self.model.operation.said[-1])
        elif heard == "progress":
            self._show_pulls()
        elif heard == "ended":
            self._ended(*event.body[1:])

    def _ended(self, state: str, message: str) -> None:
        if state == c.OperationState.ROLLED_BACK:
            self.notify(message, severity="warning", timeout=10)
        elif state == c.OperationState.FAILED:
            self.notify(message, severity="error", timeout=10)
        self.model.ended(state)
        self.query_one("#said", RichLog).border_subtitle = self.model.operation.title
        self._set_busy("checking")
        self.check()

    def _failed(self, text: str) -> None:
        self.model.say(text)
        self.query_one("#said", RichLog).write(text)
        self.notify(text, severity="error", timeout=10)

    def _set_busy(self, what: str) -> None:
        self.model.busy = what
        self.query_one("#services", LiveTable).border_title = (
            f"Updates of the service images · {what}" if what else "Updates of the service images"
        )
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if lacking(self, action):
            return None
        if action in ("update", "update_all", "rollback", "check"):
            return None if self.model.busy else True  # shown dimmed while something runs
        if action == "cancel":
            return True if self.model.busy and self.model.busy != "checking" else None
        return True

    def action_back(self) -> None:
        self.dismiss()
