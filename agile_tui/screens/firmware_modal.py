"""A registered device's firmware: the version it runs, the newest image the gateway
offers for it, and an update's progress (read again every second while open)."""

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar

from agile_tui.client.errors import ClientError
from agile_tui.client.gateway import GatewayClient
from agile_tui.roles import lacking
from services import contract as c

REFRESH_S = 1.0


def version_text(version: int) -> str:
    return f"0x{version:08x}" if version else "unknown"


class FirmwareModal(ModalScreen[None]):
    BINDINGS = [
        Binding("u", "update", "Update", id="firmware.update"),
        Binding("escape", "close", "Close", id="firmware.close"),
    ]

    def __init__(self, gateway: GatewayClient, dev_id: str) -> None:
        super().__init__()
        self.gateway = gateway
        self.dev_id = dev_id
        self.status: c.FirmwareStatus | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = f"Firmware · {self.dev_id}"
            yield Label("asking the gateway…", id="firmware-runs")
            yield Label("", id="firmware-offered")
            yield Label("", id="firmware-state")
            yield ProgressBar(total=None, show_eta=False, id="firmware-progress")
            yield Label("u: update   esc: close", classes="hint")

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(REFRESH_S, self.refresh_status)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if lacking(self, action) else True

    @work(exclusive=True, group="firmware-status")
    async def refresh_status(self) -> None:
        try:
            self.status = await self.gateway.firmware(self.dev_id)
        except ClientError as exc:
            self.query_one("#firmware-runs", Label).update(str(exc))
            return
        self._show(self.status)

    def _show(self, status: c.FirmwareStatus) -> None:
        self.query_one("#firmware-runs", Label).update(f"runs     {version_text(status.version)}")
        offered = version_text(status.available) if status.available else "nothing newer"
        self.query_one("#firmware-offered", Label).update(f"offered  {offered}")
        state = status.state + (f": {status.said}" if status.said else "")
        self.query_one("#firmware-state", Label).update(f"update   {state}")
        bar = self.query_one("#firmware-progress", ProgressBar)
        bar.display = bool(status.total)  # no bar (nor its idle animation) before an update
        bar.update(total=status.total or None, progress=status.done)

    @work(group="firmware-update")
    async def action_update(self) -> None:
        try:
            await self.gateway.update_firmware(self.dev_id)
        except ClientError as exc:
            self.notify(str(exc), title="Firmware", severity="error")
            return
        self.notify("the update starts (a sleepy device: when it wakes)", title=self.dev_id)
        self.refresh_status()

    def action_close(self) -> None:
        self.dismiss(None)
