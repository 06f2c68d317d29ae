"""A line that stays on screen while something this section needs is unreachable or
failing."""

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

    HEADINGS = {
        "bus": "Gateway bus unreachable",
        "engine": "Docker engine unreachable",
        "storage": "Storage cannot write",
    }

    def __init__(self, needs: str) -> None:
        """`needs` is one of HEADINGS; the app's `<needs>_problem` says what is wrong."""
        super().__init__()
        self.needs = needs

    def on_mount(self) -> None:
        self.watch(self.app, f"{self.needs}_problem", self._show)

    def _show(self, problem: str) -> None:
        self.display = bool(problem)
        self.update(f"[b]{self.HEADINGS[self.needs]}[/]: {problem}")
