"""The gateway's audit log: what people did there (and were refused), newest first,
gathered from every service (admins only)."""

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from agile_tui.client.errors import BusError, ClientError
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable
from services import contract as c

COLUMNS = ("When", "Who", "Service", "Outcome", "Call")
SHOWN = 500  # the newest entries
OUTCOME_WIDTH = 24


def audit_row(entry: c.AuditEntry) -> tuple[str, ...]:
    when = time.strftime("%m-%d %H:%M:%S", time.localtime(entry.when))
    # The outcome before the call, whose arguments may run past the screen's edge.
    outcome = entry.outcome.removeprefix(c.PREFIX + ".exception.")
    outcome = outcome if len(outcome) <= OUTCOME_WIDTH else outcome[: OUTCOME_WIDTH - 1] + "…"
    return (when, entry.user, entry.service, outcome, f"{entry.call}({entry.arguments})")


class AuditScreen(GatewayScreen):
    BINDINGS = [
        Binding("u", "reload", "Reload", id="audit.reload"),
        Binding("escape", "back", "Back", id="audit.back"),
    ]

    def compose(self) -> ComposeResult:
        yield GatewayBar("Audit log")
        yield Static(id="said")
        table = LiveTable(COLUMNS, id="audit")
        table.border_title = "Audit log"
        yield table
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(LiveTable).focus()
        self.action_reload()

    @work(exclusive=True, group="audit")
    async def action_reload(self) -> None:
        gateway = self.app.session.gateway
        said = self.query_one("#said", Static)
        try:
            if gateway is None or not gateway.connected:
                raise BusError("the gateway bus is not connected")
            entries, problems = await gateway.audit()
        except ClientError as exc:
            said.update(f"[red]{exc!s}[/]")
            return
        newest = list(reversed(entries))[:SHOWN]
        table = self.query_one(LiveTable)
        table.sync({str(i): audit_row(e) for i, e in enumerate(newest)})
        table.border_subtitle = f"{len(newest)} of {len(entries)}" if entries else "none yet"
        said.update("\n".join(f"[yellow]{p}[/]" for p in problems))

    def action_back(self) -> None:
        self.dismiss()
