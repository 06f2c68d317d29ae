"""Devices: what the radios discover, what is registered, and pairing from the keyboard."""

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer

from agile_tui.client.errors import BusError, ClientError
from agile_tui.client.gateway import GatewayClient
from agile_tui.models.devices import DevicesModel, DevicesView
from agile_tui.roles import lacking
from agile_tui.screens.choice_modal import ChoiceModal
from agile_tui.screens.confirm_modal import ConfirmModal
from agile_tui.screens.firmware_modal import FirmwareModal
from agile_tui.screens.gateway_screen import GatewayScreen
from agile_tui.screens.pair_modal import PairModal
from agile_tui.screens.prompt_modal import PromptModal
from agile_tui.widgets.gateway_bar import GatewayBar
from agile_tui.widgets.live_table import LiveTable
from agile_tui.widgets.problem_banner import ProblemBanner
from services import contract as c

# Short headers: seven columns must fit 80 terminal columns.
DISCOVERED_COLUMNS = ("Proto", "Name", "Address", "dBm", "Status", "Seen", "Pair")
REGISTERED_COLUMNS = ("Id", "Name", "Status", "MQTT", "Components")
PERMIT_JOIN_S = 60
NAME_WIDTH = 19


class DevicesScreen(GatewayScreen):
    BINDINGS = [
        Binding("d", "toggle_discovery", "Discovery", id="devices.discovery"),
        Binding("j", "permit_join", "ZigBee join", id="devices.permit_join"),
        Binding("B", "zigbee_backup", "ZigBee backup", id="devices.zigbee_backup", show=False),
        Binding("p", "pair", "Pair", id="devices.pair"),
        Binding("c", "toggle_connection", "Connect", id="devices.connect"),
        Binding("r", "read", "Read", id="devices.read"),
        Binding("w", "write", "Write", id="devices.write"),
        Binding("e", "execute", "Execute", id="devices.execute"),
        Binding("b", "toggle_bridged", "MQTT", id="devices.bridge"),
        Binding("F", "firmware", "Firmware", id="devices.firmware", show=False),
        Binding("delete", "remove", "Remove", id="devices.remove"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.model: DevicesModel | None = None

    @property
    def view(self) -> DevicesView:
        return self.model.view if self.model else DevicesView()

    def compose(self) -> ComposeResult:
        yield GatewayBar("Devices")
        yield ProblemBanner("bus")
        discovered = LiveTable(DISCOVERED_COLUMNS, id="discovered")
        discovered.border_title = "Discovered"
        yield discovered
        registered = LiveTable(REGISTERED_COLUMNS, id="registered")
        registered.border_title = "Registered"
        yield registered
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#discovered").focus()
        session = self.app.session
        self.model = DevicesModel(session.gateway, session.clock, self.app.config.refresh_seconds)
        self.subscribe(self.app.events.device, self.device_discovered)
        self.set_interval(1.0, self._count_down)
        self.poll()  # ScreenResume may not come for a mode's first screen
        # The section may open before the bus is connected: ask as soon as it is.
        self.watch(self.app, "bus_state", self._bus_state_changed, init=False)

    def _bus_state_changed(self, state: str) -> None:
        if state == "connected" and self.model:
            self.model.poke()

    # -- live data --

    @work(exclusive=True, group="devices-poll")
    async def poll(self) -> None:
        """The model's fetches while this screen is shown (they stop when it is not)."""
        assert self.model is not None
        await self.model.run(self._show, self.app.bus_failed)

    def on_screen_suspend(self) -> None:
        self.workers.cancel_group(self, "devices-poll")

    def on_screen_resume(self) -> None:
        self.poll()

    def _refresh(self) -> None:
        """After an action: what it changed, now."""
        if self.model:
            self.model.poke()

    def _show(self, view: DevicesView) -> None:
        # The app closed while the model was asking: closing takes the tables away before
        # the screen itself.
        if not self.is_attached or not self.query("#discovered"):
            return
        now = self.app.session.clock()
        disc_table = self.query_one("#discovered", LiveTable)
        disc_table.border_subtitle = self._subtitle()
        disc_table.sync(
            {
                key: (
                    c.protocol_short_name(s.overview.protocol),
                    _fit(s.overview.name, NAME_WIDTH),
                    _short_address(s.overview.id),
                    view.signal.get(key, "-"),
                    s.overview.status,
                    _ago(now - s.heard),
                    "yes" if key in view.registered else "",
                )
                for key, s in view.sightings.items()
            }
        )
        reg_table = self.query_one("#registered", LiveTable)
        reg_table.border_subtitle = _bridge_state(view.bridge)
        reg_table.sync(
            {
                d.device_id: (
                    d.device_id,
                    d.name,
                    view.statuses.get(d.device_id, "?"),
                    _bridged(view.bridge, view.bridged.get(d.device_id)),
                    _fit(", ".join(s.id for s in d.streams), 22),
                )
                for d in view.registered.values()
            }
        )

    def _subtitle(self) -> str:
        parts = ["discovery running" if self.view.discovering else "discovery off (d)"]
        remaining = self.model.join_remaining() if self.model else None
        if remaining is not None:
            parts.append(f"ZigBee joining {remaining}s" if remaining else "ZigBee closed (j)")
        backups = self.view.backups
        if backups is not None:
            last = backups[-1].time_ms / 1000 if backups else None
            taken = f"backup {_when(last, self.app.session.clock())}" if last else "no backup"
            parts.append(f"{taken} (B)")
        return " · ".join(parts)

    def _count_down(self) -> None:
        """The permit-join countdown, between polls."""
        if self.view.join_until is not None and self.is_current:
            with contextlib.suppress(NoMatches):
                self.query_one("#discovered", LiveTable).border_subtitle = self._subtitle()

    def device_discovered(self, overview: c.DeviceOverview) -> None:
        """A FoundNewDeviceSignal: say so without taking focus, and refresh soon."""
        if overview.device_id not in self.view.sightings:
            self.notify(
                f"{overview.name or overview.id} ({c.protocol_short_name(overview.protocol)})",
                title="New device",
            )
            self._refresh()

    # -- which actions apply where --

    def _focused_table(self) -> str:
        focused = self.focused
        return focused.id if isinstance(focused, DataTable) and focused.id else ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        applies = self._applies(action)
        return None if applies and lacking(self, action) else applies  # dimmed: a role's

    def _applies(self, action: str) -> bool:
        table = self._focused_table()
        # Hidden, not just dimmed, where they do not apply: the footer must fit 80 columns.
        if action == "pair":
            return table == "discovered"
        if action in ("toggle_connection", "read", "write", "execute", "remove", "firmware"):
            return table == "registered"
        if action == "toggle_bridged":
            return table == "registered" and self.view.bridge is not None
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(f"#{table_id}", LiveTable)
        return table.selected_key()

    # -- actions --

    def _gateway(self) -> GatewayClient:
        gateway = self.app.session.gateway
        if gateway is None:
            raise BusError(self.app.session.bus_problem or "no gateway bus")
        return gateway

    @work(group="devices-action")
    async def action_toggle_discovery(self) -> None:
        try:
            gateway = self._gateway()
            if self.view.discovering:
                await gateway.stop_discovery()
                self.notify("Discovery stopped")
            else:
                await gateway.start_discovery()
                failed = [
                    s.name
                    for s in await gateway.discovery_status()
                    if s.status == c.DiscoveryState.FAILURE
                ]
                if failed:
                    self.notify(f"Discovery failed on {', '.join(failed)}", severity="warning")
                else:
                    self.notify("Discovery started")
        except ClientError as exc:
            self.notify(str(exc), title="Discovery", severity="error")
        self._refresh()

    @work(group="devices-action")
    async def action_permit_join(self) -> None:
        """Open ZigBee joining for 60 s, or close it if it is open."""
        opening = not (self.model and self.model.join_remaining())
        try:
            await self._gateway().permit_join(PERMIT_JOIN_S if opening else 0)
        except ClientError as exc:
            self.notify(str(exc), title="ZigBee", severity="error")
            return
        if self.model:
            self.model.joining(PERMIT_JOIN_S if opening else 0)
        self.notify(
            f"ZigBee joining open for {PERMIT_JOIN_S} s" if opening else "ZigBee joining closed"
        )
        self._refresh()

    @work(group="devices-action")
    async def action_zigbee_backup(self) -> None:
        """Back the ZigBee network up now (kept on the gateway, in its private folder)."""
        try:
            backup = await self._gateway().take_zigbee_backup()
        except ClientError as exc:
            self.notify(str(exc), title="ZigBee backup", severity="error")
            return
        if self.model:
            self.model.backed_up(backup)
        self.notify(f"{backup.name}: {backup.devices} devices", title="ZigBee network backed up")
        self._refresh()

    @on(DataTable.RowSelected, "#discovered")
    def _row_chosen(self) -> None:
        self.action_pair()

    @work(group="devices-action")
    async def action_pair(self) -> None:
        key = self._selected("discovered")
        if key is None or key not in self.view.sightings:
            self.notify("Select a discovered device first", severity="warning")
            return
        overview = self.view.sightings[key].overview
        if key in self.view.registered:
            self.notify(f"{overview.name} is already paired as {key}")
            return
        try:
            gateway = self._gateway()
            types = await gateway.matching_types(overview)
        except ClientError as exc:
            self.notify(str(exc), title="Pair", severity="error")
            return
        if not types:
            self.notify(f"No device type fits {overview.name}", severity="warning")
            return
        choice = await self.app.push_screen_wait(PairModal(overview, types))
        if choice is None:
            return
        named = c.DeviceOverview(overview.id, overview.protocol, choice.name, overview.status)
        try:
            definition = await gateway.register(named, choice.device_type)
        except ClientError as exc:
            self.notify(str(exc), title="Pair", severity="error")
            return
        self.notify(f"{definition.name} paired as {definition.device_id}", title="Paired")
        self._refresh()

    async def _device_action(
        self, verb: str, act: Callable[[GatewayClient, str], Awaitable[None]]
    ) -> None:
        dev_id = self._selected("registered")
        if dev_id is None:
            self.notify("Select a registered device first", severity="warning")
            return
        try:
            await act(self._gateway(), dev_id)
        except ClientError as exc:
            self.notify(str(exc), title=verb, severity="error")

    @work(group="devices-action")
    async def action_toggle_connection(self) -> None:
        async def run(gateway: GatewayClient, dev_id: str) -> None:
            if await gateway.device_status(dev_id) == c.DeviceStatus.CONNECTED:
                await gateway.disconnect_device(dev_id)
                self.notify(f"{dev_id} disconnected")
            else:
                await gateway.connect_device(dev_id)
                self.notify(f"{dev_id} connected")

        await self._device_action("Connect", run)

    async def _pick_component(self, dev_id: str, verb: str) -> str | None:
        streams = [s.id for s in self.view.registered[dev_id].streams]
        if len(streams) == 1:
            return streams[0]
        return await self.app.push_screen_wait(ChoiceModal(f"{verb} which component?", streams))

    @work(group="devices-action")
    async def action_read(self) -> None:
        async def run(gateway: GatewayClient, dev_id: str) -> None:
            component = await self._pick_component(dev_id, "Read")
            if component:
                record = await gateway.read(dev_id, component)
                self.notify(
                    f"{record.component_id} = {record.value} {record.unit}".strip(), title=dev_id
                )

        await self._device_action("Read", run)

    @work(group="devices-action")
    async def action_write(self) -> None:
        async def run(gateway: GatewayClient, dev_id: str) -> None:
            component = await self._pick_component(dev_id, "Write")
            if not component:
                return
            payload = await self.app.push_screen_wait(
                PromptModal(f"Write to {dev_id}/{component}", "value")
            )
            if payload is not None:
                await gateway.write(dev_id, component, payload)
                self.notify(f"{component} ← {payload}", title=dev_id)

        await self._device_action("Write", run)

    def action_firmware(self) -> None:
        dev_id = self._selected("registered")
        if dev_id is None:
            self.notify("Select a registered device first", severity="warning")
            return
        try:
            gateway = self._gateway()
        except ClientError as exc:
            self.notify(str(exc), title="Firmware", severity="error")
            return
        self.app.push_screen(FirmwareModal(gateway, dev_id))

    @work(group="devices-action")
    async def action_execute(self) -> None:
        async def run(gateway: GatewayClient, dev_id: str) -> None:
            commands = await gateway.commands(dev_id)
            if not commands:
                self.notify(f"{dev_id} takes no commands", severity="warning")
                return
            command = await self.app.push_screen_wait(ChoiceModal(f"Execute on {dev_id}", commands))
            if command:
                await gateway.execute(dev_id, command)
                self.notify(f"{command} done", title=dev_id)

        await self._device_action("Execute", run)

    @work(group="devices-action")
    async def action_toggle_bridged(self) -> None:
        async def run(gateway: GatewayClient, dev_id: str) -> None:
            on = not self.view.bridged.get(dev_id, True)
            await gateway.set_bridged(dev_id, on)
            self.notify(f"{dev_id} {'bridged to' if on else 'no longer sent to'} MQTT")
            self._refresh()

        await self._device_action("MQTT", run)

    @work(group="devices-action")
    async def action_remove(self) -> None:
        async def run(gateway: GatewayClient, dev_id: str) -> None:
            name = self.view.registered[dev_id].name
            if await self.app.push_screen_wait(ConfirmModal(f"Remove {name} ({dev_id})?")):
                await gateway.delete(dev_id)
                self.notify(f"{dev_id} removed")
                self._refresh()

        await self._device_action("Remove", run)


def _when(epoch_s: float, now: float) -> str:
    """A time of day; the date too if not today's."""
    then, today = time.localtime(epoch_s), time.localtime(now)
    same_day = then[:3] == today[:3]
    return time.strftime("%H:%M" if same_day else "%m-%d %H:%M", then)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _bridge_state(status: dict[str, Any] | None) -> str:
    """The registered table's subtitle: where the MQTT bridge stands."""
    if status is None:
        return ""
    if status["connected"]:
        state = "MQTT connected"
    elif status["error"].startswith("no broker"):
        return "MQTT: no broker set"
    else:
        state = "MQTT broker unreachable"
    extra = [f"{status['queued']:,} queued"] if status["queued"] else []
    extra += [f"{status['dropped']:,} dropped"] if status["dropped"] else []
    return " · ".join([state, *extra])


def _bridged(status: dict[str, Any] | None, on: bool | None) -> str:
    if status is None or status["error"].startswith("no broker"):
        return ""
    return "off" if on is False else "yes"


def _short_address(address: str) -> str:
    """A ZigBee IEEE address without its colons (16 characters, as BLE's 17 fit 80 columns)."""
    return address.replace(":", "") if address.count(":") == 7 else address


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
