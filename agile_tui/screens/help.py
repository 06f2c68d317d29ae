"""Every key of every section, as currently bound (the config file can rebind them)."""

import importlib
from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable

from agile_tui.client.access import needs
from agile_tui.gateway_app import GatewayApp, gateway_app
from agile_tui.roles import role_of
from agile_tui.sections import SECTIONS
from agile_tui.widgets.live_table import LiveTable

SCREENS = ("containers", "devices", "data", "images")
# Screens opened from a section, with keys of their own.
INNER_SCREENS = ("logs", "audit", "build", "updates")  # their modules are named so


def key_rows(app: GatewayApp) -> list[tuple[str, str, str, str]]:
    keymap = app.config.keys
    rows = []

    def add(place: str, bindings: Iterable[object]) -> None:
        for b in bindings:
            if isinstance(b, Binding) and b.description:
                keys = keymap.get(b.id or "", b.key).split(",")
                shown = ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys)
                need = needs(role_of(app), b.id or "")
                said = b.description if need is None else f"{b.description} (needs {need})"
                rows.append((place, shown, said, b.id or ""))

    add("everywhere", app.BINDINGS)
    add("tables", LiveTable.BINDINGS)
    for mode in SCREENS:
        add(mode, SECTIONS[mode].screen_class().BINDINGS)
    for place in INNER_SCREENS:
        # Imported when the help opens: these screens stay out of the start-up.
        module = importlib.import_module(f"agile_tui.screens.{place}")
        screen = getattr(module, f"{place.capitalize()}Screen")
        add(place, screen.BINDINGS)
    rows.append(("everywhere", "ctrl+p", "Command palette", ""))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen DataTable { height: auto; max-height: 20; }
    """

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(cursor_type="row", classes="dialog")
        table.border_title = "Keys"
        table.border_subtitle = "esc to close"
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Where", "Key", "Action", "Binding id")
        for row in key_rows(gateway_app(self)):
            table.add_row(*row)
        table.focus()
