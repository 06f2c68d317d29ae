"""Edit the recording policy of one stream: record, interval, retention, encryption."""

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label

from agile_tui.client.storage import DAY_MS, format_duration_ms, parse_duration_ms


class PolicyModal(ModalScreen[dict[str, bool | int] | None]):
    """Dismisses with the policy fields for Storage.SetPolicy, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="policy.cancel"),
        Binding("ctrl+s", "save", "Save", id="policy.save"),
    ]

    def __init__(self, stream: str, policy: dict[str, Any] | None) -> None:
        super().__init__()
        self.stream = stream
        self.policy = policy or {"record": False, "interval_ms": 0, "retention_ms": 7 * DAY_MS}

    def compose(self) -> ComposeResult:
        p = self.policy
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = f"Recording of {self.stream}"
            yield Checkbox("Record this stream", bool(p.get("record")), id="record")
            yield Label("Keep at most one value every (0: all)", classes="field")
            yield Input(
                format_duration_ms(int(p.get("interval_ms", 0))) if p.get("interval_ms") else "0",
                id="interval",
            )
            yield Label("Keep for", classes="field")
            yield Input(format_duration_ms(int(p.get("retention_ms", 7 * DAY_MS))), id="retention")
            yield Checkbox("Encrypt at rest (AES-GCM)", bool(p.get("encrypt")), id="encrypt")
            yield Label("", id="error", classes="hint")
            yield Label(
                "tab: next  space: tick  ctrl+s or enter: save  esc: cancel", classes="hint"
            )

    def on_mount(self) -> None:
        self.query_one("#record", Checkbox).focus()

    @on(Input.Submitted)
    def action_save(self) -> None:
        try:
            interval = parse_duration_ms(self.query_one("#interval", Input).value or "0")
            retention = parse_duration_ms(self.query_one("#retention", Input).value)
        except ValueError as exc:
            self.query_one("#error", Label).update(str(exc))
            return
        if retention <= 0:
            self.query_one("#error", Label).update("keep data for longer than 0")
            return
        self.dismiss(
            {
                "record": self.query_one("#record", Checkbox).value,
                "interval_ms": interval,
                "retention_ms": retention,
                "encrypt": self.query_one("#encrypt", Checkbox).value,
            }
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
