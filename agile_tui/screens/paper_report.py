"""Images · the paper report: the latest `./dev bench paper` run — Table I, Fig. 5 as a
chart per service and link rate, and whether each of the paper's claims holds here."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from agile_tui.client.paper import PaperReport, load_report, report_dir
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable

SIZE_COLUMNS = ("Service", "Strategy", "MB here", "Paper MB")


class PaperReportScreen(Screen[None]):
    BINDINGS = [
        Binding("n", "next_panel", "Next chart", id="paper.next"),
        Binding("u", "reload", "Reload", id="paper.reload"),
        Binding("escape", "back", "Back", id="paper.back"),
    ]
    DEFAULT_CSS = """
    PaperReportScreen #sizes { height: auto; max-height: 8; }
    PaperReportScreen #fig5 { height: 1fr; min-height: 8; border: round $primary; }
    PaperReportScreen #claims { height: auto; max-height: 8; border: round $primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.report: PaperReport | None = None
        self.panel = 0

    def compose(self) -> ComposeResult:
        from agile_tui.widgets.chart import Chart  # plotext is heavy: only when this opens

        yield GatewayBar("Images")
        with Vertical():
            sizes = LiveTable(SIZE_COLUMNS, id="sizes")
            sizes.border_title = "Table I · image size per strategy"
            yield sizes
            yield Chart(id="fig5")
            with VerticalScroll(id="claims"):
                yield Static(id="claims-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#claims", VerticalScroll).border_title = "The paper's claims here"
        self.action_reload()

    def action_reload(self) -> None:
        folder = report_dir()
        try:
            self.report = load_report(folder)
        except (OSError, ValueError, KeyError) as exc:
            self.report = None
            self.query_one("#sizes", LiveTable).sync({})
            self.query_one("#sizes", LiveTable).border_subtitle = f"no report in {folder}"
            self.query_one("#claims-text", Static).update(
                f"No paper report in {folder} ({exc}).\n"
                "Run ./dev bench paper (or --quick) on this gateway, or set "
                "$AGILE_PAPER_REPORT to a report's folder."
            )
            self._draw()
            return
        report = self.report
        table = self.query_one("#sizes", LiveTable)
        table.border_subtitle = ""
        table.sync(
            {
                f"{service}/{strategy}": (service, strategy, f"{size / 1e6:.1f}", paper)
                for service, strategy, size, paper in report.sizes
            }
        )
        self.query_one("#claims-text", Static).update(
            "\n".join(f"• {claim}" for claim in report.claims) or "no claims in the report"
        )
        self.panel = min(self.panel, max(len(report.panels) - 1, 0))
        self._draw()

    def action_next_panel(self) -> None:
        if self.report and self.report.panels:
            self.panel = (self.panel + 1) % len(self.report.panels)
            self._draw()

    def action_back(self) -> None:
        self.app.pop_screen()

    def _draw(self) -> None:
        chart = self.query_one("#fig5")
        plt = chart.plt  # type: ignore[attr-defined]
        plt.clear_data()
        plt.clear_figure()
        panels = self.report.panels if self.report else []
        if not panels:
            chart.border_title = "Fig. 5 · download time"
            plt.title("no pulls measured")
            chart.refresh()
            return
        p = panels[self.panel]
        chart.border_title = (
            f"Fig. 5 · {p.service}, {p.rate_mbit:g} Mbit/s · s to download all (newest) "
            "/ an update"
            + (f" · {self.panel + 1}/{len(panels)} (n: next)" if len(panels) > 1 else "")
        )
        # One bar per strategy and kind, named below it: a legend would cover the bars.
        names, times = [], []
        for strategy, absolute, incremental in zip(
            p.strategies, p.absolute_s, p.incremental_s, strict=True
        ):
            names += [f"{strategy} all", f"{strategy} update"]
            times += [absolute, incremental]
        plt.bar(names, times, width=0.6)
        chart.refresh()
