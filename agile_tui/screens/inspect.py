"""Everything the engine (or the native runtime) knows about one unit, as selectable JSON."""

import json

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, TextArea

from agile_tui.client.stack import StackRow
from agile_tui.widgets.gateway_bar import GatewayBar


class InspectScreen(Screen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Back", id="inspect.back")]

    def __init__(self, row: StackRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        yield GatewayBar(f"Inspect · {self.row.name}")
        text = TextArea("loading…", read_only=True, id="json")
        text.border_title = self.row.name
        yield text
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        self.load()

    @work(thread=True)
    def load(self) -> None:
        try:
            if self.row.kind == "process":
                status = self.app.session.native.status() or {}  # type: ignore[attr-defined]
                data = status.get("services", {}).get(self.row.name, {})
            else:
                data = self.app.engine.inspect(self.row.key)  # type: ignore[attr-defined]
        except Exception as exc:
            data = {"error": str(exc)}
        self.app.call_from_thread(
            self.query_one(TextArea).load_text, json.dumps(data, indent=2, sort_keys=True)
        )
