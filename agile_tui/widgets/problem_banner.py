"""A line that stays on screen while something this section needs is unreachable."""

from textual.widgets import Static


class ProblemBanner(Static):
    DEFAULT_CSS = """
    ProblemBanner {
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $error 25%;
        color: $text;
        display: none;
    }
    """

    def __init__(self, needs: str) -> None:
        """`needs` is "bus" or "engine"."""
        super().__init__()
        self.needs = needs

    def on_mount(self) -> None:
        self.watch(self.app, f"{self.needs}_problem", self._show)

    def _show(self, problem: str) -> None:
        self.display = bool(problem)
        what = "Gateway bus" if self.needs == "bus" else "Docker engine"
        self.update(f"[b]{what} unreachable[/]: {problem}")
