"""Pair a discovered device: pick its device type and name it."""

from dataclasses import dataclass

from textual import events, on
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
        self._chosen_once = False  # enter was pressed on the type list

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
        types.highlighted = 0  # the proposed type: enter takes it
        types.focus()

    @on(OptionList.OptionSelected, "#types")
    def _type_chosen(self) -> None:
        if self._chosen_once:
            # Enter twice at once: the second reached the list before the focus moved on.
            # It means what it would have meant a moment later: pair with this name.
            self._submit()
            return
        self._chosen_once = True
        self.query_one("#name", Input).focus()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget.id == "types":  # back on the list: enter picks a type again
            self._chosen_once = False

    @on(Input.Submitted, "#name")
    def _submit(self) -> None:
        chosen = self.query_one("#types", OptionList).highlighted or 0
        name = self.query_one("#name", Input).value.strip() or self.overview.name
        self.dismiss(PairChoice(self.types[chosen], name))

    def action_cancel(self) -> None:
        self.dismiss(None)
