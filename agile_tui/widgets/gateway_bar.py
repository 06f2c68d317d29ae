"""The top line of every screen: the sections with their keys, and what is reachable."""

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from agile_tui.gateway_app import gateway_app
from agile_tui.sections import SECTIONS

STATE_MARK = {"connected": "[green]●[/]", "unreachable": "[red]✗[/]"}


class GatewayBar(Horizontal):
    DEFAULT_CSS = """
    GatewayBar {
        dock: top;
        height: 1;
        background: $panel;
    }
    GatewayBar #sections { width: 1fr; padding: 0 1; }
    GatewayBar #status { width: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, section: str) -> None:
        super().__init__()
        self.section = section

    def compose(self) -> ComposeResult:
        parts = []
        for section in SECTIONS.values():
            key, name = section.key, section.label
            if name == "Fleet" and not gateway_app(self).gateways:
                continue  # no fleet configured: key 5 still says how to make one
            if self.section.startswith(name):
                parts.append(f"[reverse] {key} {self.section} [/]")
            else:
                parts.append(f"[dim]{key}[/] {name}")
        yield Static(" ".join(parts), id="sections")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.watch(self.app, "bus_state", self._show)
        self.watch(self.app, "engine_state", self._show)
        self.watch(self.app, "role", self._show)

    def _show(self, _value: str = "") -> None:
        app = gateway_app(self)
        session = app.session

        def mark(state: str) -> str:
            return STATE_MARK.get(state, "[yellow]…[/]")

        status = self.query("#status")
        if not status:  # the app is closing
            return
        # The user's role once the gateway said it (the runtime is in the Containers
        # section's title); with a fleet, whose fifth section takes the room at 80
        # columns, only a role short of admin (the Fleet section shows each gateway's).
        role = app.role
        if app.gateways:
            shown = f" · {role}" if role and role != "admin" else ""
        else:
            shown = f" · {role or session.runtime}"
        status.first(Static).update(
            f"{session.hostname}{shown} · bus {mark(app.bus_state)} · "
            f"engine {mark(app.engine_state)}"
        )
