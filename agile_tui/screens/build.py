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
from agile_tui.client.updates import updater_of
from agile_tui.models.build import BuildModel
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
        self.model = BuildModel(lambda: updater_of(self.app.session), service, strategy)
        self._started = 0.0
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        yield GatewayBar("Images")
        with Horizontal(id="progress"):
            yield ProgressBar(total=None, show_eta=False)
            yield Label(id="state")
        yield Label(id="error")
        log = Log(max_lines=BUFFER_LINES, id="log")
        log.border_title = f"Build of agile/{self.model.service}:{self.model.strategy}"
        yield log
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self._started = self.app.session.clock()
        self._show_state()
        self._ticker = self.set_interval(1, self._show_state)
        self.subscribe(self.app.events.updater, self._heard)
        self.run_build()

    @work(exclusive=True, group="build")
    async def run_build(self) -> None:
        try:
            await self.model.start()
        except ClientError as exc:  # no bus, no update service, another operation runs
            self.model.finished(c.OperationState.FAILED, str(exc))
            self._finished()

    def _heard(self, event: UpdaterEvent) -> None:
        heard = self.model.heard_build(event)
        if heard == "log":
            self.add_line(self.model.operation.said[-1])
        elif heard == "ended":
            self._finished()

    def add_line(self, line: str) -> None:
        if step := self.model.step:
            self.query_one(ProgressBar).update(total=step[1], progress=step[0] - 1)
            self._show_state()
        self.query_one(Log).write_line(line)

    def _finished(self) -> None:
        bar = self.query_one(ProgressBar)
        if bar.total is None:  # ended before the first step: stop the pulsing
            bar.update(total=1, progress=0)
        if self.model.outcome == "built":
            bar.update(progress=bar.total or 1)
        elif self.model.outcome == "failed":
            self.query_one("#error", Label).update(self.model.error)
            self.add_class("failed")
            self.notify(f"{self.model.service}: {self.model.error}", severity="error", timeout=10)
        if self._ticker is not None:
            self._ticker.stop()
        self._show_state()
        self.refresh_bindings()

    def _show_state(self) -> None:
        elapsed = int(self.app.session.clock() - self._started)
        step = self.model.step
        model = self.model
        text = {
            "running": f"building · {f'step {step[0]}/{step[1]}' if step else 'preparing'}"
            f" · {elapsed} s",
            "built": f"built in {elapsed} s · agile/{model.service}:{model.strategy}",
            "failed": f"failed after {elapsed} s",
            "cancelled": "cancelled · nothing was tagged, the running containers are untouched",
        }[model.outcome]
        state = self.query_one("#state", Label)
        state.update(text)
        state.set_classes(model.outcome)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_build":
            return None if lacking(self, action) else self.model.outcome == "running"
        return True

    def action_cancel_build(self) -> None:
        if self.model.outcome != "running":
            return
        self.model.cancelling()
        self._show_state()
        self.refresh_bindings()
        # The app's worker, not the screen's: leaving the screen must not drop the cancel.
        self.app.run_worker(self._cancel(), group="build-cancel")

    async def _cancel(self) -> None:
        try:
            stopped = await self.model.cancel()
        except ClientError as exc:
            self.app.notify(f"cancel: {exc}", severity="error")
            return
        if not stopped:
            self.app.notify("the build had ended; nothing to cancel", severity="warning")

    def action_back(self) -> None:
        if self.model.outcome != "running":
            self.dismiss()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.action_cancel_build()
                self.dismiss()

        self.app.push_screen(ConfirmModal("A build is running. Cancel it?"), answered)
