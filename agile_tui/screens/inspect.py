"""Everything the engine (or the native runtime) knows about one unit, as selectable JSON."""

import json

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, TextArea

from agile_tui.client.errors import ClientError
from agile_tui.client.stack import StackRow
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.widgets.gateway_bar import GatewayBar


class InspectScreen(GatewayScreen):
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
                native = self.app.session.native
                assert native is not None  # where process rows come from
                status = native.status() or {}
                data = status.get("services", {}).get(self.row.name, {})
            else:
                data = self.app.engine_or_error().inspect(self.row.key)
        except ClientError as exc:
            data = {"error": str(exc)}
        self.app.call_from_thread(
            self.query_one(TextArea).load_text, json.dumps(data, indent=2, sort_keys=True)
        )
