"""Images · the paper report: the latest `./dev bench paper` run — Table I, Fig. 5 (per
service and link rate), Fig. 6 (the stack's releases, per link rate), build times and a
fix's way to the gateway as bar charts, and whether each of the paper's claims holds
here.

The bars are drawn here in text, one a row with its name and seconds beside it: plotext
placed the names under upright bars differently from one run to the next, and merged
rows of sideways bars at 80x24."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Static

from agile_tui.client.errors import ClientError
from agile_tui.client.paper import CLAIMS, Report, load_report, report_dir
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable

SIZE_COLUMNS = ("Service", "Strategy", "Arch", "MB here", "Paper MB")
BAR = 40  # characters of the longest bar


class PaperReportScreen(GatewayScreen):
    BINDINGS = [
        Binding("n", "next_panel", "Next chart", id="paper.next"),
        Binding("u", "reload", "Reload", id="paper.reload"),
        Binding("escape", "back", "Back", id="paper.back"),
    ]
    DEFAULT_CSS = """
    PaperReportScreen #sizes { height: auto; max-height: 8; }
    PaperReportScreen #chart { height: auto; min-height: 4; border: round $primary; }
    PaperReportScreen #claims { height: 1fr; min-height: 4; border: round $primary; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.report: Report | None = None
        self.panel = 0

    def compose(self) -> ComposeResult:
        yield GatewayBar("Images")
        with Vertical():
            sizes = LiveTable(SIZE_COLUMNS, id="sizes")
            sizes.border_title = "Table I · image size per strategy"
            yield sizes
            yield Static(id="chart")
            with VerticalScroll(id="claims"):
                yield Static(id="claims-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#claims", VerticalScroll).border_title = CLAIMS.removeprefix("## ")
        self.action_reload()

    def action_reload(self) -> None:
        folder = report_dir()
        try:
            self.report = load_report(folder)
        except ClientError as exc:
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
                f"{s.service}/{s.strategy}/{s.arch}": (
                    s.service,
                    s.strategy,
                    s.arch,
                    f"{s.bytes / 1e6:.1f}",
                    s.paper_core_mb,
                )
                for s in report.sizes
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
        chart = self.query_one("#chart", Static)
        panels = self.report.panels if self.report else []
        if not panels:
            chart.border_title = "Download time"
            chart.update("no pulls measured")
            return
        p = panels[self.panel]
        chart.border_title = f"{p.title} · {p.unit}" + (
            f" · {self.panel + 1}/{len(panels)} (n: next)" if len(panels) > 1 else ""
        )
        longest = max([*p.absolute_s, *p.incremental_s, 1e-9])
        rows = []
        for group, absolute, incremental in zip(
            p.groups, p.absolute_s, p.incremental_s, strict=True
        ):
            for kind, seconds, colour in (
                (p.kinds[0], absolute, "$primary"),
                (p.kinds[1], incremental, "$accent"),
            ):
                eighths = round(BAR * 8 * seconds / longest)
                bar = "█" * (eighths // 8) + ("", *"▏▎▍▌▋▊▉")[eighths % 8]
                name = group if kind == p.kinds[0] else ""
                took = f"[{colour}]{bar or '▏'}[/] {seconds:.2f} s" if seconds else "—"
                rows.append(f"{name:<11}{kind:<13}{took}")
        chart.update("\n".join(rows))
