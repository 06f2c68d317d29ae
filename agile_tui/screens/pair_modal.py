"""Pair a discovered device: pick its device type and name it."""

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from services.contract import DeviceOverview, protocol_short_name


@dataclass(frozen=True)
class PairChoice:
    device_type: str
    name: str


class PairModal(ModalScreen[PairChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pair.cancel")]

    def __init__(self, overview: DeviceOverview, types: list[str]) -> None:
        super().__init__()
        self.overview = overview
        self.types = types

    def compose(self) -> ComposeResult:
        o = self.overview
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = f"Pair {o.name or o.id}"
            yield Label(f"{protocol_short_name(o.protocol)} device at {o.id}")
            yield Label("Device type", classes="field")
            yield OptionList(*(Option(t, id=t) for t in self.types), id="types")
            yield Label("Name", classes="field")
            yield Input(o.name, placeholder="a name for this device", id="name")
            yield Label("enter: next / pair   esc: cancel", classes="hint")

    def on_mount(self) -> None:
        types = self.query_one("#types", OptionList)
        types.focus()
        # The list may not hold its options yet on mount: highlight once it has drawn.
        self.call_after_refresh(setattr, types, "highlighted", 0)

    @on(OptionList.OptionSelected, "#types")
    def _type_chosen(self) -> None:
        self.query_one("#name", Input).focus()

    @on(Input.Submitted, "#name")
    def _submit(self) -> None:
        chosen = self.query_one("#types", OptionList).highlighted or 0
        name = self.query_one("#name", Input).value.strip() or self.overview.name
        self.dismiss(PairChoice(self.types[chosen], name))

    def action_cancel(self) -> None:
        self.dismiss(None)
