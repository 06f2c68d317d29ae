"""The baseline of benchmarks/tui.py: a bare Textual app with Header, DataTable and Footer."""

import sys

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header


class BareApp(App[None]):
    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Protocol", "Name", "Address", "Status", "Found", "Paired")
        for i in range(self.rows):
            table.add_row(
                "Dummy",
                f"Dummy Thermometer {i + 1}",
                f"D0:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}",
                "AVAILABLE",
                "0s",
                "",
                key=str(i),
            )
        table.focus()


if __name__ == "__main__":
    BareApp(int(sys.argv[1]) if len(sys.argv) > 1 else 0).run()
