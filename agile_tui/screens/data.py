"""Data: live charts of the components the operator picks, from Device subscriptions."""

from collections import deque

from dbus_fast import DBusError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, SelectionList
from textual.widgets.selection_list import Selection

from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.problem_banner import ProblemBanner
from services import contract as c

POINTS_PER_SERIES = 600
REDRAW_SECONDS = 1.0


class DataScreen(Screen[None]):
    BINDINGS = [
        Binding("space", "toggle_stream", "Chart on/off", id="data.toggle", show=True),
        Binding("C", "clear", "Clear", id="data.clear"),
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
        self.dirty = True  # draw the empty chart with its hint once

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # plotext is heavy: only when this section opens

        yield GatewayBar("Data")
        yield ProblemBanner("bus")
        with Horizontal():
            streams: SelectionList[str] = SelectionList(id="streams")
            streams.border_title = "Streams"
            yield streams
            chart: Widget = PlotextPlot(id="chart")
            chart.border_title = "Live"
            yield chart
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.listen("record", self.record_received)  # type: ignore[attr-defined]
        self.set_interval(REDRAW_SECONDS, self._redraw)
        self.call_after_refresh(self._redraw)
        self.query_one("#streams").focus()
        self.action_reload_streams()  # ScreenResume may not come for the first screen

    def on_screen_resume(self) -> None:
        self.action_reload_streams()

    @work(exclusive=True, group="data-streams")
    async def action_reload_streams(self) -> None:
        gateway = self.app.session.gateway  # type: ignore[attr-defined]
        if gateway is None or not gateway.connected:
            return
        try:
            devices = await gateway.registered()
        except (DBusError, ConnectionError) as exc:
            self.notify(str(exc), severity="error")
            return
        streams = self.query_one("#streams", SelectionList)
        options = []
        for d in devices:
            for s in d.streams:
                key = (d.device_id, s.id)
                self.units[key] = s.unit
                options.append(
                    Selection(f"{s.id} · {d.name}", f"{d.device_id}/{s.id}", key in self.subscribed)
                )
        if [o.value for o in options] != [
            streams.get_option_at_index(i).value for i in range(streams.option_count)
        ]:
            streams.clear_options()
            streams.add_options(options)
            if options:
                streams.highlighted = 0
        streams.border_subtitle = "space: chart on/off" if options else "pair a device first"

    @on(SelectionList.SelectedChanged, "#streams")
    def _selection_changed(self) -> None:
        chosen = {
            tuple(v.split("/", 1)) for v in self.query_one("#streams", SelectionList).selected
        }
        for key in chosen - self.subscribed:
            self._subscribe(key, True)  # type: ignore[arg-type]
        for key in self.subscribed - chosen:
            self._subscribe(key, False)

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
                exc.text if isinstance(exc, DBusError) else str(exc),
                title=f"{dev_id}/{component}",
                severity="error",
            )

    def action_toggle_stream(self) -> None:
        streams = self.query_one("#streams", SelectionList)
        if streams.highlighted is not None:
            streams.toggle(streams.get_option_at_index(streams.highlighted))

    def action_clear(self) -> None:
        for points in self.series.values():
            points.clear()
        self.dirty = True

    def record_received(self, record: c.RecordObject) -> None:
        key = (record.device_id, record.component_id)
        if key not in self.subscribed:
            return
        try:
            value = float(record.value)
        except ValueError:
            return  # not a number (a switch state): nothing to chart
        points = self.series.setdefault(key, deque(maxlen=POINTS_PER_SERIES))
        points.append((record.last_update / 1000.0, value))
        self.dirty = True

    def point_count(self) -> int:
        return sum(len(p) for p in self.series.values())

    def _redraw(self) -> None:
        if not self.dirty or not self.is_current:
            return
        self.dirty = False
        chart = self.query_one("#chart")
        plt = chart.plt  # type: ignore[attr-defined]
        plt.clear_data()
        now = self.app.session.clock()  # type: ignore[attr-defined]
        for (dev_id, component), points in self.series.items():
            if points:
                xs = [t - now for t, _ in points]
                ys = [v for _, v in points]
                unit = self.units.get((dev_id, component), "")
                plt.plot(xs, ys, label=f"{dev_id}/{component} {unit}".strip(), marker="braille")
        plt.xlabel("seconds")
        if not self.series:
            plt.title("pick streams on the left")
        chart.refresh()
