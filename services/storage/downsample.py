"""Fewer points with the same shape: the minimum and maximum of each time bucket.

Keeping both extremes of every bucket (in time order) keeps spikes and dips that
averaging or striding would hide, which is what an operator looks for in a 24 h
chart. Non-numeric series fall back to even striding.
"""

from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise


def minmax_indices(t: Sequence[int], v: Sequence[object], max_points: int) -> list[int]:
    """Indices of at most `max_points` points of (t, v) that keep the series' shape."""
    n = len(t)
    if max_points <= 0 or n <= max_points:
        return list(range(n))
    if max_points < 2 or not all(type(x) in (int, float) for x in v):
        step = n / max_points
        return [int(i * step) for i in range(max_points)]
    buckets = max_points // 2
    start, span = t[0], (t[-1] - t[0]) or 1
    # Bucket edges by time, not by count: gaps in the data stay gaps in the chart.
    bounds = [0]
    for b in range(1, buckets):
        bounds.append(bisect_left(t, start + span * b / buckets, bounds[-1]))
    bounds.append(n)
    out: list[int] = []
    for lo, hi in pairwise(bounds):
        if lo >= hi:
            continue
        chunk = v[lo:hi]
        low = lo + chunk.index(min(chunk))  # type: ignore[type-var]  # numbers: checked above
        # The last maximum: a flat bucket then keeps its first and last point.
        high = hi - 1 - chunk[::-1].index(max(chunk))  # type: ignore[type-var]  # the same
        out += sorted({low, high})
    return out
