"""Pick what to build: a service image and a build strategy."""

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from agile_tui.client.images import SERVICES, STRATEGIES


class BuildModal(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (service, strategy), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="build.cancel")]

    def __init__(self, service: str = "storage", strategy: str = "multistage") -> None:
        super().__init__()
        self.service = service
        self.strategy = strategy

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = "Build an image"
            yield Label("Service", classes="field")
            yield OptionList(
                *(Option(f"{name:<8} {s.about}", id=name) for name, s in SERVICES.items()),
                id="service",
            )
            yield Label("Strategy", classes="field")
            yield OptionList(
                *(Option(f"{name:<13}{about}", id=name) for name, about in STRATEGIES.items()),
                id="strategy",
            )
            yield Label("tab: next list  enter: build  esc: cancel", classes="hint")

    def on_mount(self) -> None:
        services = self.query_one("#service", OptionList)
        services.highlighted = services.get_option_index(self.service)
        strategies = self.query_one("#strategy", OptionList)
        strategies.highlighted = strategies.get_option_index(self.strategy)
        services.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "service":
            self.query_one("#strategy", OptionList).focus()
            return
        service = self.query_one("#service", OptionList)
        picked = service.get_option_at_index(service.highlighted or 0).id
        self.dismiss((str(picked), str(event.option.id)))

    def action_cancel(self) -> None:
        self.dismiss(None)
