"""Data: charts of the components the operator picks, live from Device subscriptions or
from Storage history over a time window; and each stream's recording policy."""

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, SelectionList
from textual.widgets.selection_list import Selection

from agile_tui.client.errors import BusError, ClientError
from agile_tui.client.storage import format_duration_ms
from agile_tui.models.data import WINDOWS, DataModel, Key
from agile_tui.roles import lacking
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.screens.policy_modal import PolicyModal
from agile_tui.widgets.chart import Chart
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.plot import Series
from agile_tui.widgets.problem_banner import ProblemBanner

REDRAW_SECONDS = 1.0
HISTORY_REFRESH_SECONDS = 10.0


class DataScreen(GatewayScreen):
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
    DataScreen #chart-box { width: 1fr; border: round $primary 50%; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.model = DataModel(None, lambda: 0.0)  # on the session's gateway once mounted

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if lacking(self, action) else True  # dimmed: a role's

    def compose(self) -> ComposeResult:
        yield GatewayBar("Data")
        yield ProblemBanner("bus")
        yield ProblemBanner("storage")
        with Horizontal():
            streams: SelectionList[str] = SelectionList(id="streams")
            streams.border_title = "Streams"
            yield streams
            # The border on a box of its own: it is drawn once, not with every frame.
            with Vertical(id="chart-box") as box:
                box.border_title = "Live"
                yield Chart(id="chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.model = DataModel(self.app.session.gateway, self.app.session.clock)
        self.subscribe(self.app.events.record, self.model.record)
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
        await self.model.resubscribe(self._chart_failed)

    def _chart_failed(self, key: Key, exc: ClientError) -> None:
        self.notify(str(exc), title="/".join(key), severity="error")

    def on_screen_resume(self) -> None:
        self.action_reload_streams()

    @work(exclusive=True, group="data-storage")
    async def _check_storage(self) -> None:
        try:
            problem = await self.model.storage_problem()
        except ClientError:
            return  # the bus banner says what is wrong with the bus
        if problem is not None:
            self.app.storage_problem = problem

    @work(exclusive=True, group="data-streams")
    async def action_reload_streams(self) -> None:
        try:
            streams = await self.model.load_streams()
        except ClientError as exc:
            self.notify(str(exc), severity="error")
            return
        if streams is None:
            return
        options = [
            Selection(
                f"{'● ' if s.recorded else '  '}{s.key[1]} · {s.device_name}",
                "/".join(s.key),
                s.key in self.model.subscribed,
            )
            for s in streams
        ]
        selection = self.query_one("#streams", SelectionList)
        if [(o.value, str(o.prompt)) for o in options] != [
            (o.value, str(o.prompt))
            for o in (selection.get_option_at_index(i) for i in range(selection.option_count))
        ]:
            selection.clear_options()
            selection.add_options(options)
            if options:
                selection.highlighted = 0
        recording = any(s.recorded for s in streams)
        hint = "space: chart · ● recorded" if recording else "space: chart · R: record"
        selection.border_subtitle = hint if options else "pair a device first"

    @on(SelectionList.SelectedChanged, "#streams")
    def _selection_changed(self) -> None:
        chosen = {_key(v) for v in self.query_one("#streams", SelectionList).selected}
        for key in chosen - self.model.subscribed:
            self._chart(key, True)
        for key in self.model.subscribed - chosen:
            self._chart(key, False)
        self._refresh_history()

    @work(group="data-subscribe")
    async def _chart(self, key: Key, on: bool) -> None:
        try:
            await self.model.chart(key, on)
        except BusError as exc:
            self._chart_failed(key, exc)

    def action_toggle_stream(self) -> None:
        streams = self.query_one("#streams", SelectionList)
        if streams.highlighted is not None:
            streams.toggle(streams.get_option_at_index(streams.highlighted))

    # -- history from Storage --

    def action_next_window(self) -> None:
        self.model.next_window()
        window = self.model.window
        self.query_one("#chart-box").border_title = (
            "Live" if not window else f"History · {WINDOWS[window][0]}"
        )
        self._refresh_history()

    def _refresh_history(self) -> None:
        if self.model.window and self.is_current:
            self._load_history()

    @work(exclusive=True, group="data-history")
    async def _load_history(self) -> None:
        try:
            await self.model.load_history()
        except ClientError as exc:
            self.notify(str(exc), title="History", severity="error")
            return
        self._redraw()  # now, not at the next tick: the window's data belongs with its title

    @work(group="data-policy")
    async def action_edit_policy(self) -> None:
        streams = self.query_one("#streams", SelectionList)
        if streams.highlighted is None:
            self.notify("Pick a stream first", severity="warning")
            return
        value = streams.get_option_at_index(streams.highlighted).value
        key = _key(value)
        changes = await self.app.push_screen_wait(PolicyModal(value, self.model.policies.get(key)))
        if changes is None:
            return
        try:
            policy = await self.model.set_policy(key, changes)
        except ClientError as exc:
            self.notify(str(exc), title="Recording", severity="error")
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
        self.model.clear()

    def _redraw(self) -> None:
        if not self.model.changed or not self.is_current:
            return
        self.model.changed = False
        chart = self.query_one("#chart", Chart)
        now = self.app.session.clock()
        _, _, scale, unit_name = WINDOWS[self.model.window]
        shown = self.model.drawn(2 * chart.content_size.width)  # braille: 2 dots a cell
        series = [
            Series(self.model.label(key), [((t - now) / scale, v) for t, v in points])
            for key, points in shown.items()
            if points
        ]
        if not self.model.subscribed:
            title = "pick streams on the left"
        elif self.model.window and not series:
            title = "nothing stored in this window (R: recording)"
        else:
            title = ""
        chart.plot(series, unit_name, title)


def _key(value: str) -> Key:
    dev_id, component = value.split("/", 1)
    return dev_id, component
