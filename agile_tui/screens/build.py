"""Building one service image: the build log as it comes, its steps as progress, cancel.

The build runs in the gateway's update service (a Build operation), not in agile-tui:
it goes on if the operator's session drops. Cancelling ends it on the engine. A failed
or cancelled build tags nothing, so the running containers keep their images.
"""

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Footer, Label, Log, ProgressBar

from agile_tui.client.errors import ClientError
from agile_tui.client.gateway import UpdaterEvent
from agile_tui.client.images import build_step
from agile_tui.client.updates import updater_of
from agile_tui.roles import lacking
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from services import contract as c

BUFFER_LINES = 5000


class BuildScreen(GatewayScreen):
    BINDINGS = [
        Binding("x", "cancel_build", "Cancel build", id="build.stop"),
        Binding("escape", "back", "Back", id="build.back"),
    ]
    DEFAULT_CSS = """
    BuildScreen #progress { height: 1; padding: 0 1; }
    BuildScreen ProgressBar { width: 44; }
    BuildScreen #state { width: 1fr; padding: 0 1; }
    BuildScreen #state.built { color: $success; }
    BuildScreen #error { width: 1fr; height: auto; padding: 0 1; color: $error; display: none; }
    BuildScreen.failed #error { display: block; }
    BuildScreen #log { height: 1fr; border: round $primary 50%; overflow: auto auto; }
    """

    def __init__(self, service: str, strategy: str) -> None:
        super().__init__()
        self.service = service
        self.strategy = strategy
        self.outcome = ""  # running | built | failed | cancelled
        self.error = ""
        self.operation = ""  # the update service's Build operation
        self.ended = False  # the operation has ended (built, failed or cancelled)
        self._started = 0.0
        self._step = ""
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        yield GatewayBar("Images")
        with Horizontal(id="progress"):
            yield ProgressBar(total=None, show_eta=False)
            yield Label(id="state")
        yield Label(id="error")
        log = Log(max_lines=BUFFER_LINES, id="log")
        log.border_title = f"Build of agile/{self.service}:{self.strategy}"
        yield log
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self._started = self.app.session.clock()
        self.outcome = "running"
        self._show_state()
        self._ticker = self.set_interval(1, self._show_state)
        self.follow(self.app.events.updater, self._heard)
        self.run_build()

    @work(exclusive=True, group="build")
    async def run_build(self) -> None:
        try:
            updater = updater_of(self.app.session)
            self.operation = await updater.build(self.service, self.strategy)
        except ClientError as exc:  # no bus, no update service, another operation runs
            self._finished(c.OperationState.FAILED, str(exc))

    def _heard(self, event: UpdaterEvent) -> None:
        op_id, *args = event.body
        if event.member == "Started" and not self.operation and args[0] == "build":
            self.operation = op_id  # its lines may come before the call's answer
        if op_id != self.operation or self.outcome not in ("running", "cancelled"):
            return
        if event.member == "Log":
            self.add_line(args[0])
        elif event.member == "Ended":
            self._finished(*args)

    def add_line(self, line: str) -> None:
        if step := build_step(line):
            bar = self.query_one(ProgressBar)
            bar.update(total=step[1], progress=step[0] - 1)
            self._step = f"step {step[0]}/{step[1]}"
            self._show_state()
        self.query_one(Log).write_line(line)

    def _finished(self, state: str, message: str) -> None:
        self.ended = True
        bar = self.query_one(ProgressBar)
        if bar.total is None:  # ended before the first step: stop the pulsing
            bar.update(total=1, progress=0)
        if state == c.OperationState.CANCELLED:
            self.outcome = "cancelled"
        elif state == c.OperationState.SUCCEEDED:
            self.outcome = "built"
            bar.update(progress=bar.total)
        else:
            self.outcome = "failed"
            self.error = message
            self.query_one("#error", Label).update(self.error)
            self.add_class("failed")
            self.notify(f"{self.service}: {self.error}", severity="error", timeout=10)
        if self._ticker is not None:
            self._ticker.stop()
        self._show_state()
        self.refresh_bindings()

    def _show_state(self) -> None:
        elapsed = int(self.app.session.clock() - self._started)
        text = {
            "running": f"building · {self._step or 'preparing'} · {elapsed} s",
            "built": f"built in {elapsed} s · agile/{self.service}:{self.strategy}",
            "failed": f"failed after {elapsed} s",
            "cancelled": "cancelled · nothing was tagged, the running containers are untouched",
        }[self.outcome]
        state = self.query_one("#state", Label)
        state.update(text)
        state.set_classes(self.outcome)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_build":
            return None if lacking(self, action) else self.outcome == "running"
        return True

    def action_cancel_build(self) -> None:
        if self.outcome != "running":
            return
        self.outcome = "cancelled"  # the Ended signal confirms it
        self._show_state()
        self.refresh_bindings()
        # The app's worker, not the screen's: leaving the screen must not drop the cancel.
        self.app.run_worker(self._cancel(), group="build-cancel")

    async def _cancel(self) -> None:
        try:
            stopped = await updater_of(self.app.session).cancel()
        except ClientError as exc:
            self.app.notify(f"cancel: {exc}", severity="error")
            return
        if not stopped:
            self.app.notify("the build had ended; nothing to cancel", severity="warning")

    def action_back(self) -> None:
        if self.outcome != "running":
            self.dismiss()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.action_cancel_build()
                self.dismiss()

        self.app.push_screen(ConfirmModal("A build is running. Cancel it?"), answered)
