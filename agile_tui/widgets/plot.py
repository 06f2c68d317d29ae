"""A line chart in braille dots (2x4 a cell), as rows of text runs: a frame with ticks at
round values on the left and below, one line a series, a legend, the x axis's name and a
title. Pure, so that it is tested without a screen; the Chart widget colours the runs.

Drawn here rather than by plotext: plotext built its whole figure anew each frame, 2.8 ms
of the 4.4 ms a 1 Hz live chart took to paint at 40x20, most of an idle Data section's CPU;
this draws it in 0.6 ms."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]
# What a run is drawn as: the frame and its labels, the title, or the nth series (0, 1, ...).
AXIS = -1
TITLE = -2
Run = tuple[str, int]
BRAILLE = 0x2800
# The bit of each dot of a braille cell, by dot column, then dot row from the top.
DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
LEGEND_MARK = "▬ "


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[Point]  # (x, y), x ascending


def ticks(lo: float, hi: float, most: int) -> tuple[list[float], float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten apart) within [lo, hi]: as many as
    fit in `most` but no fewer than two where the span allows; and their step."""
    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo], 1.0
    magnitude = 10.0 ** math.floor(math.log10(span / max(most - 1, 1)))
    for factor in STEPS:
        step = factor * magnitude
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= most:
            return [k * step for k in range(first, last + 1)], step
    return [lo, hi], span  # not reached: ten times the magnitude always fits


def tick_label(value: float, step: float) -> str:
    """The value with as many decimals as the step needs ("2.5", "10", "0.05")."""
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0"


def _bounds(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi > lo:
        return lo, hi
    pad = abs(lo) * 0.05 or 1.0  # one value: a flat line across the middle
    return lo - pad, hi + pad


def draw(
    width: int, height: int, series: Sequence[Series], xlabel: str, title: str
) -> list[list[Run]]:
    """The chart's rows, top first, each a list of runs exactly `width` cells wide; fewer
    rows than `height` (the rest blank) where it does not fit."""
    rows: list[list[Run]] = []
    if title and height > 0:
        rows.append([(title[:width].center(width), TITLE)])
    plot_h = height - len(rows) - 4  # the frame's top and bottom, tick labels, the x name
    points = [p for s in series for p in s.points]
    if points:
        y_lo, y_hi = _bounds([y for _, y in points])
        x_lo, x_hi = _bounds([x for x, _ in points])
        y_ticks, y_step = ticks(y_lo, y_hi, max(2, plot_h // 3))
        y_labels = [tick_label(v, y_step) for v in y_ticks]
        margin = max(map(len, y_labels))
    else:
        y_ticks, y_labels, margin = [], [], 0
    plot_w = width - margin - 2
    if plot_w < 2 or plot_h < 1:
        return rows
    dots_w, dots_h = 2 * plot_w, 4 * plot_h

    bits = [[0] * plot_w for _ in range(plot_h)]
    owner = [[AXIS] * plot_w for _ in range(plot_h)]

    def dot(x: int, y: int, index: int) -> None:
        row, col = y >> 2, x >> 1
        bits[row][col] |= DOTS[x & 1][y & 3]
        owner[row][col] = index

    for index, one in enumerate(series):
        previous: tuple[int, int] | None = None
        for x, y in one.points:
            here = (
                round((x - x_lo) / (x_hi - x_lo) * (dots_w - 1)),
                round((y_hi - y) / (y_hi - y_lo) * (dots_h - 1)),
            )
            for x_dot, y_dot in _line(previous or here, here):
                dot(x_dot, y_dot, index)
            previous = here

    cells = [[chr(BRAILLE + b) if b else " " for b in line] for line in bits]
    legend = [(i, s.label) for i, s in enumerate(series) if s.label and s.points]
    if legend and len(legend) < plot_h and plot_w > len(LEGEND_MARK) + 3:
        for row, (index, label) in enumerate(legend):
            text = LEGEND_MARK + _fit(label, plot_w - len(LEGEND_MARK))
            for col, char in enumerate(text):
                cells[row][col] = char
                owner[row][col] = index if col < len(LEGEND_MARK) else AXIS

    tick_rows = {
        round((y_hi - v) / (y_hi - y_lo) * (dots_h - 1)) >> 2: label
        for v, label in zip(y_ticks, y_labels, strict=True)
    }
    rows.append([(" " * margin + "┌" + "─" * plot_w + "┐", AXIS)])
    for row in range(plot_h):
        tick = tick_rows.get(row, "")
        runs: list[Run] = [(tick.rjust(margin) + ("┤" if tick else "│"), AXIS)]
        start = 0
        for col in range(1, plot_w + 1):
            if col == plot_w or owner[row][col] != owner[row][start]:
                runs.append(("".join(cells[row][start:col]), owner[row][start]))
                start = col
        runs.append(("│", AXIS))
        rows.append(runs)

    bottom = ["─"] * plot_w
    under = [" "] * width
    if points:
        x_ticks, x_step = ticks(x_lo, x_hi, max(2, plot_w // 8))
        free = 0  # the first column a tick's label may take
        for value in x_ticks:
            col = round((value - x_lo) / (x_hi - x_lo) * (dots_w - 1)) >> 1
            bottom[col] = "┬"
            text = tick_label(value, x_step)
            start = min(max(margin + 1 + col - len(text) // 2, 0), width - len(text))
            if start >= free:  # else it would run into the one before: left out
                under[start : start + len(text)] = text
                free = start + len(text) + 1
    rows.append([(" " * margin + "└" + "".join(bottom) + "┘", AXIS)])
    rows.append([("".join(under), AXIS)])
    rows.append([(" " * (margin + 1) + _fit(xlabel, plot_w).center(plot_w) + " ", AXIS)])
    return rows


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _line(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """The dots of a straight line between two (Bresenham's)."""
    (x, y), (x_end, y_end) = start, end
    dx, dy = abs(x_end - x), -abs(y_end - y)
    sx, sy = (1 if x < x_end else -1), (1 if y < y_end else -1)
    error = dx + dy
    out = [(x, y)]
    while (x, y) != (x_end, y_end):
        twice = 2 * error
        if twice >= dy:
            error += dy
            x += sx
        if twice <= dx:
            error += dx
            y += sy
        out.append((x, y))
    return out
