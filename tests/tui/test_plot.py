"""The Data section's chart, drawn without a screen: its ticks, its lines, its frame."""

import math

import pytest

from agile_tui.widgets.plot import AXIS, BRAILLE, TITLE, Series, draw, tick_label, ticks


def text(rows: list[list[tuple[str, int]]]) -> list[str]:
    return ["".join(run for run, _ in row) for row in rows]


@pytest.mark.parametrize(
    ("lo", "hi", "most", "expected"),
    [
        (17.6, 28.3, 5, [20.0, 22.5, 25.0, 27.5]),
        (17.6, 28.3, 6, [18.0, 20.0, 22.0, 24.0, 26.0, 28.0]),
        (-86_400 / 3600, 0.0, 4, [-20.0, -10.0, 0.0]),
        (0.0, 1.0, 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (101_300.0, 101_330.0, 4, [101_300.0, 101_310.0, 101_320.0, 101_330.0]),
    ],
)
def test_ticks_are_round_values_inside_the_range(
    lo: float, hi: float, most: int, expected: list[float]
) -> None:
    values, _ = ticks(lo, hi, most)
    assert values == pytest.approx(expected)
    assert len(values) <= most


def test_tick_labels_have_the_decimals_their_step_needs() -> None:
    assert [tick_label(v, 0.25) for v in (0.0, 0.25, 1.5)] == ["0.00", "0.25", "1.50"]
    assert [tick_label(v, 5.0) for v in (-10.0, 0.0, 25.0)] == ["-10", "0", "25"]
    assert tick_label(-0.0001, 0.1) == "0.0"  # never "-0.0"


def test_every_row_is_exactly_as_wide_as_the_chart() -> None:
    wave = Series("temperature °C", [(i - 120.0, 20 + math.sin(i / 9)) for i in range(121)])
    for width, height in ((40, 20), (76, 36), (12, 6)):
        for series, title in (([wave], ""), ([], "pick streams on the left")):
            rows = text(draw(width, height, series, "seconds", title))
            assert len(rows) <= height
            assert {len(row) for row in rows} == {width}


def test_a_rising_line_climbs_from_the_bottom_left_to_the_top_right() -> None:
    rows = draw(20, 12, [Series("", [(0.0, 0.0), (10.0, 10.0)])], "s", "")
    plot = [line[3:-1] for line in text(rows)[1:-3]]  # inside the frame, right of "10┤"
    first_dots = [next(i for i, ch in enumerate(line) if ord(ch) > BRAILLE) for line in plot]
    assert first_dots == sorted(first_dots, reverse=True)  # each row up is further right
    assert first_dots[-1] == 0 and first_dots[0] >= len(plot[0]) - 3
    assert (ord(plot[-1][0]) - BRAILLE) & 0x40  # the very first dot: bottom left of its cell


def test_the_frame_ticks_and_names_are_where_an_operator_reads_them() -> None:
    series = [Series("t °C", [(-20.0, 18.0), (-10.0, 28.0), (0.0, 23.0)])]
    rows = text(draw(40, 24, series, "seconds", "a title"))
    assert rows[0].strip() == "a title"
    assert rows[1].startswith("  ┌") and rows[1].endswith("┐")
    labelled = [row[:3] for row in rows[2:-3] if row[2] == "┤"]
    assert [label[:2].strip() for label in labelled] == ["28", "26", "24", "22", "20", "18"]
    assert rows[2][3:].startswith("▬ t °C")  # the legend, top left inside the frame
    assert rows[-3].count("┬") == 3  # -20, -10, 0
    assert rows[-2].split() == ["-20", "-10", "0"]
    assert rows[-1].strip() == "seconds"


def test_runs_say_what_they_draw() -> None:
    rows = draw(30, 10, [Series("a", [(0, 1), (1, 2)]), Series("b", [(0, 2), (1, 1)])], "x", "t")
    kinds = {kind for row in rows for _, kind in row}
    assert kinds == {TITLE, AXIS, 0, 1}


def test_one_point_and_a_flat_line_still_draw() -> None:
    for points in ([(5.0, 3.0)], [(0.0, 3.0), (1.0, 3.0), (2.0, 3.0)]):
        rows = text(draw(30, 10, [Series("", points)], "x", ""))
        assert any(ord(ch) > BRAILLE for row in rows for ch in row)


def test_too_small_to_draw_leaves_the_rows_blank() -> None:
    assert draw(3, 3, [Series("a", [(0, 1), (1, 2)])], "x", "") == []
