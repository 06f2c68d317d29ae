"""Streaming logs of one container or service, with a filter and a bounded buffer."""

import re
import threading
import time
from collections import deque
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, Log

from agile_tui.client.errors import ClientError
from agile_tui.client.stack import StackRow
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.widgets.gateway_bar import GatewayBar

BUFFER_LINES = 5000


class LogsScreen(GatewayScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="logs.filter"),
        Binding("escape", "back", "Back", id="logs.back"),
        Binding("f", "toggle_follow", "Follow", id="logs.follow"),
    ]

    def __init__(self, row: StackRow) -> None:
        super().__init__()
        self.row = row
        self.lines: deque[str] = deque(maxlen=BUFFER_LINES)
        self.pattern: re.Pattern[str] | None = None
        self.follow = True
        self._stop = threading.Event()
        self._close = lambda: None

    def compose(self) -> ComposeResult:
        yield GatewayBar(f"Logs · {self.row.name}")
        yield Input(
            placeholder="filter (regular expression), enter to apply, esc to clear", id="filter"
        )
        log = Log(max_lines=BUFFER_LINES, id="log")
        log.border_title = self.row.name
        yield log
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self.stream()

    def on_unmount(self) -> None:
        self._stop.set()
        self._close()

    @work(thread=True, exclusive=True)
    def stream(self) -> None:
        if self.row.kind == "process":
            native = self.app.session.native
            assert native is not None  # where process rows come from
            self._tail_file(native.log_file(self.row.name))
            return
        try:
            stream = self.app.engine_or_error().logs(self.row.key)
            self._close = stream.close
            for line in stream:
                if self._stop.is_set():
                    break
                self.app.call_from_thread(self.add_line, line)
        except ClientError as exc:
            if not self._stop.is_set():  # not the stream closed on leaving
                self.app.call_from_thread(self.notify, str(exc), severity="error")

    def _tail_file(self, path: Path) -> None:
        try:
            f = path.open(errors="replace")
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"{path}: {exc.strerror}", severity="error")
            return
        with f:
            for line in f.readlines()[-500:]:
                self.app.call_from_thread(self.add_line, line.rstrip("\n"))
            while not self._stop.is_set():
                line = f.readline()
                if line:
                    self.app.call_from_thread(self.add_line, line.rstrip("\n"))
                else:
                    time.sleep(0.25)

    def add_line(self, line: str) -> None:
        self.lines.append(line)
        if self.pattern is None or self.pattern.search(line):
            self.query_one(Log).write_line(line, scroll_end=self.follow)

    def _redraw(self) -> None:
        log = self.query_one(Log)
        log.clear()
        log.write_lines(
            [x for x in self.lines if self.pattern is None or self.pattern.search(x)],
            scroll_end=self.follow,
        )
        log.border_subtitle = f"filter: {self.pattern.pattern}" if self.pattern else ""

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Submitted, "#filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        try:
            self.pattern = re.compile(event.value, re.IGNORECASE) if event.value else None
        except re.error as exc:
            self.notify(f"not a regular expression: {exc}", severity="error")
            return
        self._redraw()
        self.query_one(Log).focus()

    def action_back(self) -> None:
        filter_input = self.query_one("#filter", Input)
        if filter_input.has_focus and filter_input.value:
            filter_input.value = ""
            self.pattern = None
            self._redraw()
            self.query_one(Log).focus()
        else:
            self.dismiss()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify("following the log" if self.follow else "not following")
