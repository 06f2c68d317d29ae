"""Building one service image: the build log as it comes, its steps as progress, cancel.

The build runs as `agile-gateway images build` in a child process: cancelling is then
ending that process (the engine drops a build whose client went away), and docker-squash
stays out of the TUI. A failed or cancelled build tags nothing, so the running
containers keep their images.
"""

import subprocess

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, Log, ProgressBar

from agile_tui.client.images import build_step, start_build
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.widgets.gateway_bar import GatewayBar

BUFFER_LINES = 5000
ERROR_PREFIX = "agile-gateway images build: "


class BuildScreen(Screen[None]):
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
        self._proc: subprocess.Popen[str] | None = None
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
        self._started = self.app.session.clock()  # type: ignore[attr-defined]
        self.outcome = "running"
        self._show_state()
        self._ticker = self.set_interval(1, self._show_state)
        self.run_build()

    def on_unmount(self) -> None:
        self._stop_process()

    @work(thread=True, exclusive=True, group="build")
    def run_build(self) -> None:
        try:
            proc = start_build(self.service, self.strategy, self.app.session.docker_url)  # type: ignore[attr-defined]
        except OSError as exc:
            self.app.call_from_thread(self._finished, -1, f"cannot start the build: {exc}")
            return
        self._proc = proc
        if self.outcome == "cancelled":  # before the process was there to end
            self._stop_process()
        assert proc.stdout is not None
        error = ""
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(ERROR_PREFIX):
                error = line.removeprefix(ERROR_PREFIX)
            self.app.call_from_thread(self.add_line, line)
        self.app.call_from_thread(self._finished, proc.wait(), error)

    def add_line(self, line: str) -> None:
        if step := build_step(line):
            bar = self.query_one(ProgressBar)
            bar.update(total=step[1], progress=step[0] - 1)
            self._step = f"step {step[0]}/{step[1]}"
            self._show_state()
        self.query_one(Log).write_line(line)

    def _finished(self, code: int, error: str) -> None:
        bar = self.query_one(ProgressBar)
        if bar.total is None:  # ended before the first step: stop the pulsing
            bar.update(total=1, progress=0)
        if self.outcome == "cancelled":
            pass  # said when it was asked for
        elif code == 0:
            self.outcome = "built"
            bar.update(progress=bar.total)
        else:
            self.outcome = "failed"
            self.error = error or f"the build ended with exit code {code}"
            self.query_one("#error", Label).update(self.error)
            self.add_class("failed")
            self.notify(f"{self.service}: {self.error}", severity="error", timeout=10)
        if self._ticker is not None:
            self._ticker.stop()
        self._show_state()
        self.refresh_bindings()

    def _show_state(self) -> None:
        elapsed = int(self.app.session.clock() - self._started)  # type: ignore[attr-defined]
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
            return self.outcome == "running"
        return True

    def _stop_process(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def action_cancel_build(self) -> None:
        if self.outcome != "running":
            return
        self.outcome = "cancelled"
        self._stop_process()
        self._show_state()
        self.refresh_bindings()

    def action_back(self) -> None:
        if self.outcome != "running":
            self.dismiss()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.action_cancel_build()
                self.dismiss()

        self.app.push_screen(ConfirmModal("A build is running. Cancel it?"), answered)
