"""The live chart: agile_tui.widgets.plot's braille lines, in the theme's colours, each
line drawn once a figure and kept until the next."""

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from agile_tui.widgets.plot import AXIS, TITLE, Series, draw


class Chart(Widget):
    DEFAULT_CSS = "Chart { height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._series: Sequence[Series] = ()
        self._xlabel = ""
        self._title = ""
        self._strips: list[Strip] | None = None

    def plot(self, series: Sequence[Series], xlabel: str, title: str = "") -> None:
        self._series, self._xlabel, self._title = series, xlabel, title
        self._strips = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips = None  # a theme of other colours, say

    def on_resize(self) -> None:
        self._strips = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._strips is None or (self._strips and self._strips[0].cell_length != width):
            self._strips = self._draw()
        return self._strips[y] if y < len(self._strips) else Strip.blank(width, self.rich_style)

    def _draw(self) -> list[Strip]:
        base = self.rich_style
        theme = self.app.current_theme
        palette = [
            base + Style(color=color)
            for color in (theme.accent, theme.success, theme.error, theme.secondary, theme.primary)
            if color
        ]
        styles = {AXIS: base + Style(color=theme.foreground, dim=True), TITLE: base}
        width, height = self.size
        return [
            Strip(
                [
                    Segment(text, styles.get(index) or palette[index % len(palette)])
                    for text, index in runs
                ],
                width,
            )
            for runs in draw(width, height, self._series, self._xlabel, self._title)
        ]
