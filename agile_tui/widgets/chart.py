"""The live chart: textual-plotext's PlotextPlot, drawn straight from plotext's matrix.

PlotextPlot has plotext write the whole figure out as ANSI codes, parses them back with
Rich and has Textual turn that Text into lines: most of an idle Data section's CPU at
one frame a second. This makes the lines from the matrix of characters and colours
itself, turning each distinct colour triple into a Rich style once (through the very
same ANSI parse, so the picture is unchanged: the snapshot tests hold it)."""

from functools import lru_cache
from typing import Any

import plotext._utility as plotext_utility
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import _RenderCache
from textual_plotext import PlotextPlot


@lru_cache(maxsize=256)
def _style(colors: tuple[object, object, object]) -> Style | None:
    ansi = plotext_utility.colors_to_ansi(*colors)
    spans = Text.from_ansi(f"{ansi}x{plotext_utility.ansi_end}").spans
    return spans[0].style if spans else None  # type: ignore[return-value]  # parsed ANSI: Styles


def _frozen(color: object) -> object:
    return tuple(color) if isinstance(color, list) else color  # rgb lists: hashable


class Chart(PlotextPlot):
    def _runs(self) -> list[list[tuple[str, Style | None]]]:
        """The figure's rows, top first, as runs of characters of one style."""
        plot: Any = self.plt  # plotext's figure, whose steps used here are typed nowhere
        plot.plotsize(self.size.width, self.size.height)
        plot._set_size(self.size.width, self.size.height)  # as PlotextPlot does (its #5)
        plot.theme(self._get_plotext_theme_name(self.app.theme))
        plot._set_sizes()
        plot._build_matrix()
        matrix = plot.monitor.matrix
        rows = []
        for row in reversed(matrix.Rows):  # plotext counts rows upwards
            markers, fg, style, bg = (
                matrix.marker[row],
                matrix.fullground[row],
                matrix.style[row],
                matrix.background[row],
            )
            runs = []
            start = 0
            for col in range(1, matrix.cols + 1):
                if col == matrix.cols or (fg[col], style[col], bg[col]) != (
                    fg[start],
                    style[start],
                    bg[start],
                ):
                    colors = (_frozen(fg[start]), _frozen(style[start]), _frozen(bg[start]))
                    runs.append(("".join(markers[start:col]), _style(colors)))
                    start = col
            rows.append(runs)
        return rows

    def _render_content(self) -> None:
        # Textual 8.2.8's own hook (textual is pinned exactly): lines straight to the
        # render cache, where Widget._render_content would go through render() and a
        # Visual made of the Text.
        width, height = self.size
        base = self.visual_style.rich_style
        strips = [
            Strip([Segment(t, base + s if s else base) for t, s in runs]).adjust_cell_length(
                width, base
            )
            for runs in self._runs()[:height]
        ]
        strips += [Strip.blank(width, base)] * (height - len(strips))
        self._render_cache = _RenderCache(self.size, strips)
        self._dirty_regions.clear()
