"""The Data section's data: the streams there are to chart (with their recording
policy), the ones charted, their live points from Device subscriptions and their history
from Storage over a window, and Storage's trouble writing."""

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agile_tui.client.errors import BusError
from agile_tui.client.storage import storage_problem
from services import contract as c

POINTS_PER_SERIES = 600
HISTORY_POINTS = 500  # Storage downsamples to this, keeping each bucket's min and max
RESUBSCRIBE_FOR_S = 120.0
# Errors of a service not (yet) back on a bus that was restarted.
NOT_BACK_YET = {
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.Timeout",
    c.PROTOCOL_UNAVAILABLE_ERROR,  # the device manager is back, its protocol not yet
}
# (label, window ms, x-axis unit seconds, unit name); window 0 is live.
WINDOWS = (
    ("live", 0, 1, "seconds"),
    ("5 min", 5 * 60_000, 1, "seconds"),
    ("1 h", 3_600_000, 60, "minutes"),
    ("24 h", 86_400_000, 3600, "hours"),
    ("7 d", 7 * 86_400_000, 3600, "hours"),
)

Key = tuple[str, str]  # device id, component
Points = list[tuple[float, float]] | deque[tuple[float, float]]  # (epoch s, value)


class DataSource(Protocol):
    """What the model asks of the gateway (agile_tui.client.gateway.GatewayClient)."""

    @property
    def connected(self) -> bool: ...
    async def registered(self) -> list[c.DeviceDefinition]: ...
    async def policies(self) -> dict[Key, dict[str, Any]]: ...
    async def subscribe(self, dev_id: str, component: str) -> None: ...
    async def unsubscribe(self, dev_id: str, component: str) -> None: ...
    async def history(
        self, dev_id: str, component: str, since_ms: int, until_ms: int, max_points: int
    ) -> list[c.RecordObject]: ...
    async def storage_stats(self) -> dict[str, Any] | None: ...
    async def set_policy(
        self, dev_id: str, component: str, changes: dict[str, bool | int]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Stream:
    key: Key
    device_name: str
    unit: str
    recorded: bool


class DataModel:
    def __init__(self, source: DataSource | None, clock: Callable[[], float]) -> None:
        self.source = source
        self.clock = clock
        self.streams: list[Stream] = []
        self.policies: dict[Key, dict[str, Any]] = {}
        self.subscribed: set[Key] = set()
        self.series: dict[Key, deque[tuple[float, float]]] = {}
        self.history: dict[Key, list[tuple[float, float]]] = {}
        self.window = 0  # index in WINDOWS; 0 is live
        self.changed = True  # since the chart was drawn

    def _source(self) -> DataSource | None:
        source = self.source
        return source if source is not None and source.connected else None

    # -- what there is to chart --

    async def load_streams(self) -> list[Stream] | None:
        """The registered devices' streams; None without a connection. Without a
        Storage service they have no policy (live charts still work)."""
        source = self._source()
        if source is None:
            return None
        devices = await source.registered()
        try:
            self.policies = await source.policies()
        except BusError as exc:
            if exc.lost:
                raise
            self.policies = {}
        self.streams = [
            Stream(
                (d.device_id, s.id),
                d.name,
                s.unit,
                bool(self.policies.get((d.device_id, s.id), {}).get("record")),
            )
            for d in devices
            for s in d.streams
        ]
        return self.streams

    def label(self, key: Key) -> str:
        """A charted stream's name for the legend: "temperature °C · Dummy Thermometer 1"."""
        stream = next((s for s in self.streams if s.key == key), None)
        if stream is None:
            return key[1]
        return f"{key[1]} {stream.unit}".strip() + f" · {stream.device_name}"

    async def storage_problem(self) -> str | None:
        """What to say of Storage's writes ("" all well); None: no connection."""
        source = self._source()
        if source is None:
            return None
        stats = await source.storage_stats()
        return storage_problem(stats["error"], stats.get("key_error", "")) if stats else ""

    async def set_policy(self, key: Key, changes: dict[str, bool | int]) -> dict[str, Any]:
        source = self._source()
        if source is None:
            raise BusError("the gateway bus is not connected")
        return await source.set_policy(*key, changes)

    # -- charting --

    async def chart(self, key: Key, on: bool) -> None:
        """Subscribe to the stream (on) or stop; BusError says why not (then it is not
        charted)."""
        source = self._source()
        try:
            if source is None:
                raise BusError("the gateway bus is not connected")
            if on:
                self.subscribed.add(key)
                await source.subscribe(*key)
            else:
                self.subscribed.discard(key)
                self.series.pop(key, None)
                self.changed = True
                await source.unsubscribe(*key)
        except BusError:
            self.subscribed.discard(key)
            raise

    async def resubscribe(self, failed: Callable[[Key, BusError], None]) -> None:
        """A new connection holds no subscriptions: the charted streams ask again, while
        the services come back on the bus with it (a restarted bus restarts them)."""
        pending = set(self.subscribed)
        pause = 0.5
        deadline = time.monotonic() + RESUBSCRIBE_FOR_S
        while pending and self._source() is not None and time.monotonic() < deadline:
            for key in sorted(pending):
                source = self._source()
                if source is None:
                    return
                try:
                    await source.subscribe(*key)
                    pending.discard(key)
                except BusError as exc:
                    if exc.lost:
                        return  # the bus went again: the next connection starts over
                    if exc.name not in NOT_BACK_YET:
                        pending.discard(key)
                        self.subscribed.discard(key)
                        failed(key, exc)
            if pending:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    def record(self, record: c.RecordObject) -> None:
        """A subscribed value: a point of its stream's live series, if a number."""
        key = (record.device_id, record.component_id)
        if key not in self.subscribed or not is_number(record.value):
            return  # not charted, or not a number (a switch state): nothing to chart
        points = self.series.setdefault(key, deque(maxlen=POINTS_PER_SERIES))
        points.append((record.last_update / 1000.0, float(record.value)))
        self.changed = True

    def clear(self) -> None:
        for points in self.series.values():
            points.clear()
        self.changed = True

    # -- history --

    def next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self.history.clear()
        self.changed = True

    async def load_history(self) -> None:
        """The charted streams over the window, from Storage."""
        source = self._source()
        if source is None or not self.window:
            return
        now_ms = int(self.clock() * 1000)
        since_ms = now_ms - WINDOWS[self.window][1]
        history = {}
        for key in sorted(self.subscribed):
            records = await source.history(*key, since_ms, now_ms, HISTORY_POINTS)
            history[key] = [
                (r.last_update / 1000.0, float(r.value)) for r in records if is_number(r.value)
            ]
        self.history = history
        self.changed = True

    def shown(self) -> dict[Key, Points]:
        return dict(self.history) if self.window else dict(self.series)

    def drawn(self, columns: int) -> dict[Key, Points]:
        """What the chart draws: the shown points, thinned to `columns` across."""
        return thinned(self.shown(), columns)

    def point_count(self) -> int:
        return sum(len(points) for points in self.shown().values())


def thinned(series: dict[Key, Points], columns: int) -> dict[Key, Points]:
    """Each series with at most its lowest and highest point per column of their common
    time range: a line through those covers about the cells a line through all covers,
    and drawing costs per point (600 in a live series, 500 in a history, for some 70
    braille columns)."""
    times = [t for points in series.values() if points for t in (points[0][0], points[-1][0])]
    if not times or columns < 1:
        return series
    start, span = min(times), (max(times) - min(times)) or 1.0
    out: dict[Key, Points] = {}
    for key, points in series.items():
        if len(points) <= 2 * columns:
            out[key] = points
            continue
        buckets: dict[int, list[tuple[float, float]]] = {}
        for point in points:
            column = min(int((point[0] - start) / span * columns), columns - 1)
            buckets.setdefault(column, []).append(point)
        kept: list[tuple[float, float]] = []
        for bucket in buckets.values():
            low = min(bucket, key=lambda p: p[1])
            high = max(bucket, key=lambda p: p[1])
            kept.extend(sorted({low, high}))  # in time order
        out[key] = kept
    return out


def is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
