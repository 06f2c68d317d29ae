"""Updates of the container stack: per service the bytes its update will download (before
anything is pulled), the stack's total, per-layer pull progress, and rollbacks said."""

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from agile_tui.client.stack import format_bytes
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable

if TYPE_CHECKING:  # the Docker SDK stays out of the TUI's start-up
    from agile_tui.client.updates import UpdateCheck

SERVICE_COLUMNS = ("Service", "Running", "Registry", "Layers", "Download")
PULL_COLUMNS = ("Layer", "Pulled", "Bytes")
BAR = 20


def pull_bar(done: int, total: int) -> str:
    filled = BAR * done // total if total else 0
    return f"{'█' * filled}{'░' * (BAR - filled)} {100 * done // max(total, 1):>3}%"


class UpdatesScreen(Screen[None]):
    BINDINGS = [
        Binding("c", "check", "Check", id="updates.check"),
        Binding("u", "update", "Update", id="updates.update"),
        Binding("a", "update_all", "Update all", id="updates.all"),
        Binding("r", "rollback", "Roll back", id="updates.rollback"),
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
        self.busy = ""  # what runs: "", "checking", "updating", "rolling back"
        self.pull_rows: dict[str, tuple[str, str, str]] = {}
        self.said: list[str] = []  # what the update said, as text

    def compose(self) -> ComposeResult:
        yield GatewayBar("Images")
        yield Static(id="note", classes="message")
        services = LiveTable(SERVICE_COLUMNS, id="services")
        services.border_title = "Updates of the service images"
        yield services
        pull = LiveTable(PULL_COLUMNS, id="pull")
        pull.border_title = "Pull"
        yield pull
        # Wrapped: compose's errors are long, and the operator needs all of them.
        said = RichLog(id="said", max_lines=1000, wrap=True)
        said.border_title = "Update log"
        yield said
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#services").focus()
        self.action_check()

    # -- checking --

    def action_check(self) -> None:
        if not self.busy:
            self._recheck()

    def _recheck(self) -> None:
        """Check again; after an update or a rollback, straight from being busy with it."""
        self._set_busy("checking")
        self.check()

    @work(thread=True, exclusive=True, group="updates")
    def check(self) -> None:
        from agile_tui.client.updates import check

        engine = self.app.engine  # type: ignore[attr-defined]
        session = self.app.session  # type: ignore[attr-defined]
        try:
            if engine is None:
                raise RuntimeError(f"Docker engine {self.app.engine_state}")  # type: ignore[attr-defined]
            result = check(engine.client, session.state_dir, session.registry)
        except Exception as exc:  # said on the screen, which stays usable
            self.app.call_from_thread(self._checked, None, str(exc))
            return
        self.app.call_from_thread(self._checked, result, "")

    def _checked(self, result: "UpdateCheck | None", problem: str) -> None:
        if result is None:
            self.show_problem(problem)
        else:
            self.show_check(result)
        self._set_busy("")

    def show_problem(self, text: str) -> None:
        self.result = None
        self.query_one("#note", Static).update(text)
        self.query_one("#services", LiveTable).sync({})
        self.query_one("#services", LiveTable).border_subtitle = ""

    def show_check(self, result: "UpdateCheck") -> None:
        self.result = result
        rows = {}
        problems = []
        for s in result.services:
            if s.plan is None:
                state, layers, download = s.short, "", ""
                problems.append(f"{s.service}: {s.problem}")
            elif s.plan.up_to_date:
                state, layers, download = "up to date", "", "0 B"
            else:
                state = f"→ {s.plan.version}" if s.plan.version else "newer"
                layers = f"{s.plan.layers_missing} of {s.plan.layers_total}"
                download = f"{s.plan.download_bytes:,} B"
            rows[s.service] = (s.service, s.running or "not built", state, layers, download)
        table = self.query_one("#services", LiveTable)
        table.sync(rows)
        pending = result.pending
        table.border_subtitle = (
            f"stack: {result.total_bytes:,} B ({format_bytes(result.total_bytes)}) "
            f"in {len(pending)} update{'s' if len(pending) != 1 else ''}"
            if pending
            else "stack up to date"
        )
        self.query_one("#note", Static).update(
            f"registry {result.registry} · {result.strategy} images"
            + ("\n" + problems[0] if problems else "")
        )

    # -- updating --

    def _selected(self) -> str | None:
        return self.query_one("#services", LiveTable).selected_key()

    def action_update(self) -> None:
        service = self._selected()
        if service is None or self.result is None or self.busy:
            return
        if service not in self.result.pending:
            self.notify(f"{service}: nothing to update", severity="warning")
            return
        self._start_update([service])

    def action_update_all(self) -> None:
        if self.result is None or self.busy:
            return
        if not self.result.pending:
            self.notify("the stack is up to date")
            return
        # The bus last: every other service reconnects when it restarts.
        pending = sorted(self.result.pending, key=lambda s: s == "bus")
        self._start_update(pending)

    def _start_update(self, services: list[str]) -> None:
        self._set_busy("updating")
        self.pull_rows = {}
        self.query_one("#pull", LiveTable).sync({})
        self.run_updates(services)

    @work(thread=True, exclusive=True, group="updates")
    def run_updates(self, services: list[str]) -> None:
        from agile_tui.client.updates import UpdateError, update

        engine = self.app.engine  # type: ignore[attr-defined]
        session = self.app.session  # type: ignore[attr-defined]
        assert self.result is not None
        for service in services:
            try:
                ok = update(
                    engine.client,
                    session.state_dir,
                    self.result.registry,
                    service,
                    say=lambda line: self.app.call_from_thread(self.say, line),
                    progress=lambda layer, done, total: self.app.call_from_thread(
                        self.pulled, layer, done, total
                    ),
                )
            except UpdateError as exc:
                self.app.call_from_thread(self._failed, str(exc))
                break
            if not ok:
                self.app.call_from_thread(
                    self.notify,
                    f"{service}: the new version was not healthy; rolled back",
                    severity="warning",
                    timeout=10,
                )
        self.app.call_from_thread(self._recheck)

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

    def action_rollback(self) -> None:
        service = self._selected()
        if service is None or self.busy or self.result is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._set_busy("rolling back")
                self.run_rollback(service)

        self.app.push_screen(
            ConfirmModal(f"Put {service} back on the image it ran before its last update?"),
            answered,
        )

    @work(thread=True, exclusive=True, group="updates")
    def run_rollback(self, service: str) -> None:
        from agile_tui.client.updates import UpdateError, rollback

        engine = self.app.engine  # type: ignore[attr-defined]
        try:
            rollback(engine.client, self.app.session.state_dir, service)  # type: ignore[attr-defined]
            self.app.call_from_thread(self.say, f"{service}: back on agile/{service}:previous")
        except UpdateError as exc:
            self.app.call_from_thread(self._failed, str(exc))
        self.app.call_from_thread(self._recheck)

    def _set_busy(self, what: str) -> None:
        self.busy = what
        self.query_one("#services", LiveTable).border_title = (
            f"Updates of the service images · {what}" if what else "Updates of the service images"
        )
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("update", "update_all", "rollback", "check"):
            return None if self.busy else True  # shown dimmed while something runs
        return True

    def action_back(self) -> None:
        self.dismiss()
