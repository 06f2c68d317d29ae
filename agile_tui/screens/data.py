"""Data: charts of the components the operator picks, live from Device subscriptions or
from Storage history over a time window; and each stream's recording policy."""

import asyncio
import time
from collections import deque
from typing import Any

from dbus_fast import DBusError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, SelectionList
from textual.widgets.selection_list import Selection

from agile_tui.client.gateway import error_text
from agile_tui.client.storage import format_duration_ms, storage_problem
from agile_tui.roles import lacking
from agile_tui.screens.policy_modal import PolicyModal
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.problem_banner import ProblemBanner
from services import contract as c

POINTS_PER_SERIES = 600
REDRAW_SECONDS = 1.0
HISTORY_REFRESH_SECONDS = 10.0
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


class DataScreen(Screen[None]):
    BINDINGS = [
        Binding("space", "toggle_stream", "Chart on/off", id="data.toggle", show=True),
        Binding("C", "clear", "Clear", id="data.clear"),
        Binding("h", "next_window", "Window", id="data.window"),
        Binding("R", "edit_policy", "Recording", id="data.policy"),
        Binding("u", "reload_streams", "Reload streams", id="data.reload"),
    ]
    DEFAULT_CSS = """
    DataScreen #streams { width: 38; height: 1fr; border: round $primary 50%; }
    DataScreen #streams:focus { border: round $primary; }
    DataScreen #chart { width: 1fr; border: round $primary 50%; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.series: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self.units: dict[tuple[str, str], str] = {}
        self.subscribed: set[tuple[str, str]] = set()
        self.history: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self.policies: dict[tuple[str, str], dict[str, object]] = {}
        self.window = 0  # index in WINDOWS; 0 is live
        self.dirty = True  # draw the empty chart with its hint once

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if lacking(self, action) else True  # dimmed: a role's

    def compose(self) -> ComposeResult:
        from agile_tui.widgets.chart import Chart  # plotext is heavy: only when this opens

        yield GatewayBar("Data")
        yield ProblemBanner("bus")
        yield ProblemBanner("storage")
        with Horizontal():
            streams: SelectionList[str] = SelectionList(id="streams")
            streams.border_title = "Streams"
            yield streams
            chart: Widget = Chart(id="chart")
            chart.border_title = "Live"
            yield chart
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.listen("record", self.record_received)  # type: ignore[attr-defined]
        self.set_interval(REDRAW_SECONDS, self._redraw)
        self.set_interval(HISTORY_REFRESH_SECONDS, self._refresh_history)
        self._check_storage()  # then WriteStatus signals say when it changes
        self.call_after_refresh(self._redraw)
        self.query_one("#streams").focus()
        self.action_reload_streams()  # ScreenResume may not come for the first screen
        # The section may open before the bus is connected: ask as soon as it is.
        self.watch(self.app, "bus_state", self._bus_state_changed, init=False)

    def _bus_state_changed(self, state: str) -> None:
        if state == "connected":
            self.action_reload_streams()
            self._resubscribe()
            self._check_storage()

    @work(exclusive=True, group="data-resubscribe")
    async def _resubscribe(self) -> None:
        """A new connection holds no subscriptions: the charted streams ask again, while
        the services come back on the bus with it (a restarted bus restarts them)."""
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        pending = set(self.subscribed)
        pause = 0.5
        deadline = time.monotonic() + RESUBSCRIBE_FOR_S
        while pending and gateway.connected and time.monotonic() < deadline:
            for dev_id, component in list(pending):
                try:
                    await gateway.subscribe(dev_id, component)
                    pending.discard((dev_id, component))
                except DBusError as exc:
                    if exc.type not in NOT_BACK_YET:
                        pending.discard((dev_id, component))
                        self.subscribed.discard((dev_id, component))
                        self.notify(
                            error_text(exc), title=f"{dev_id}/{component}", severity="error"
                        )
                except ConnectionError:
                    return  # the bus went again: the next connection starts over
            if pending:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    def on_screen_resume(self) -> None:
        self.action_reload_streams()

    @work(exclusive=True, group="data-storage")
    async def _check_storage(self) -> None:
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        if gateway is None or not gateway.connected:
            return
        try:
            stats = await gateway.storage_stats()
        except (DBusError, ConnectionError):
            return  # the bus banner says what is wrong with the bus
        problem = storage_problem(stats["error"], stats.get("key_error", "")) if stats else ""
        self.app.storage_problem = problem  # type: ignore[attr-defined]

    @work(exclusive=True, group="data-streams")
    async def action_reload_streams(self) -> None:
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        if gateway is None or not gateway.connected:
            return
        try:
            devices = await gateway.registered()
        except (DBusError, ConnectionError) as exc:
            self.notify(error_text(exc), severity="error")
            return
        try:
            self.policies = await gateway.policies()
        except DBusError:
            self.policies = {}  # no storage service: live charts still work
        streams = self.query_one("#streams", SelectionList)
        options = []
        for d in devices:
            for s in d.streams:
                key = (d.device_id, s.id)
                self.units[key] = s.unit
                recorded = "● " if self.policies.get(key, {}).get("record") else "  "
                options.append(
                    Selection(
                        f"{recorded}{s.id} · {d.name}",
                        f"{d.device_id}/{s.id}",
                        key in self.subscribed,
                    )
                )
        if [(o.value, str(o.prompt)) for o in options] != [
            (o.value, str(o.prompt))
            for o in (streams.get_option_at_index(i) for i in range(streams.option_count))
        ]:
            streams.clear_options()
            streams.add_options(options)
            if options:
                streams.highlighted = 0
        recording = any(p.get("record") for p in self.policies.values())
        hint = "space: chart · ● recorded" if recording else "space: chart · R: record"
        streams.border_subtitle = hint if options else "pair a device first"

    @on(SelectionList.SelectedChanged, "#streams")
    def _selection_changed(self) -> None:
        chosen = {
            tuple(v.split("/", 1)) for v in self.query_one("#streams", SelectionList).selected
        }
        for key in chosen - self.subscribed:
            self._subscribe(key, True)  # type: ignore[arg-type]
        for key in self.subscribed - chosen:
            self._subscribe(key, False)
        self._refresh_history()

    @work(group="data-subscribe")
    async def _subscribe(self, key: tuple[str, str], on: bool) -> None:
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        dev_id, component = key
        try:
            if on:
                self.subscribed.add(key)
                await gateway.subscribe(dev_id, component)
            else:
                self.subscribed.discard(key)
                self.series.pop(key, None)
                self.dirty = True
                await gateway.unsubscribe(dev_id, component)
        except (DBusError, ConnectionError) as exc:
            self.subscribed.discard(key)
            self.notify(
                error_text(exc),
                title=f"{dev_id}/{component}",
                severity="error",
            )

    def action_toggle_stream(self) -> None:
        streams = self.query_one("#streams", SelectionList)
        if streams.highlighted is not None:
            streams.toggle(streams.get_option_at_index(streams.highlighted))

    # -- history from Storage --

    def action_next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)
        self.query_one("#chart").border_title = (
            "Live" if not self.window else f"History · {WINDOWS[self.window][0]}"
        )
        self.history.clear()
        self.dirty = True
        self._refresh_history()

    def _refresh_history(self) -> None:
        if self.window and self.is_current:
            self._load_history()

    @work(exclusive=True, group="data-history")
    async def _load_history(self) -> None:
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        if gateway is None or not gateway.connected:
            return
        now_ms = int(self.app.session.clock() * 1000)  # type: ignore[attr-defined]
        since_ms = now_ms - WINDOWS[self.window][1]
        history = {}
        for key in sorted(self.subscribed):
            try:
                records = await gateway.history(*key, since_ms, now_ms, HISTORY_POINTS)
            except (DBusError, ConnectionError) as exc:
                self.notify(
                    error_text(exc),
                    title="History",
                    severity="error",
                )
                return
            history[key] = [
                (r.last_update / 1000.0, float(r.value)) for r in records if _is_number(r.value)
            ]
        self.history = history
        self.dirty = True
        self._redraw()  # now, not at the next tick: the window's data belongs with its title

    @work(group="data-policy")
    async def action_edit_policy(self) -> None:
        streams = self.query_one("#streams", SelectionList)
        if streams.highlighted is None:
            self.notify("Pick a stream first", severity="warning")
            return
        value = streams.get_option_at_index(streams.highlighted).value
        dev_id, component = value.split("/", 1)
        changes = await self.app.push_screen_wait(
            PolicyModal(value, self.policies.get((dev_id, component)))
        )
        if changes is None:
            return
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        try:
            policy = await gateway.set_policy(dev_id, component, changes)
        except (DBusError, ConnectionError) as exc:
            self.notify(
                error_text(exc),
                title="Recording",
                severity="error",
            )
            return
        self.notify(
            f"{value}: "
            + (
                f"recorded, kept {format_duration_ms(int(policy['retention_ms']))}"
                + (", encrypted" if policy["encrypt"] else "")
                if policy["record"]
                else "not recorded"
            ),
            title="Recording",
        )
        self.action_reload_streams()

    def action_clear(self) -> None:
        for points in self.series.values():
            points.clear()
        self.dirty = True

    def record_received(self, record: c.RecordObject) -> None:
        key = (record.device_id, record.component_id)
        if key not in self.subscribed:
            return
        if not _is_number(record.value):
            return  # not a number (a switch state): nothing to chart
        value = float(record.value)
        points = self.series.setdefault(key, deque(maxlen=POINTS_PER_SERIES))
        points.append((record.last_update / 1000.0, value))
        self.dirty = True

    def point_count(self) -> int:
        return sum(len(p) for p in self._shown().values())

    def _shown(self) -> dict[tuple[str, str], Any]:
        return self.history if self.window else self.series

    def _redraw(self) -> None:
        if not self.dirty or not self.is_current:
            return
        self.dirty = False
        chart = self.query_one("#chart")
        plt = chart.plt  # type: ignore[attr-defined]
        plt.clear_data()
        now = self.app.session.clock()  # type: ignore[attr-defined]
        _, _, scale, unit_name = WINDOWS[self.window]
        shown = self._shown()
        for (dev_id, component), points in shown.items():
            if points:
                xs = [(t - now) / scale for t, _ in points]
                ys = [v for _, v in points]
                unit = self.units.get((dev_id, component), "")
                plt.plot(xs, ys, label=f"{dev_id}/{component} {unit}".strip(), marker="braille")
        plt.xlabel(unit_name)
        if not self.subscribed:
            plt.title("pick streams on the left")
        elif self.window and not any(shown.values()):
            plt.title("nothing stored in this window (R: recording)")
        else:
            plt.title("")
        chart.refresh()


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
