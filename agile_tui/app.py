"""The agile-tui application: five sections as modes (the gateway's four and the fleet),
one bus connection and one engine: the local gateway's, or a fleet gateway's opened
from the Fleet section."""

import asyncio
import time
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual import work
from textual.app import InvalidThemeError, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from agile_tui.client.errors import BusError, ClientError
from agile_tui.client.session import Session
from agile_tui.client.storage import storage_problem
from agile_tui.gateway_app import GatewayApp
from agile_tui.roles import lacking
from agile_tui.screens.help import HelpScreen
from agile_tui.sections import SECTIONS
from agile_tui.theme import AGILE_THEME
from fleet.config import Config

if TYPE_CHECKING:  # the fleet's modules load with the Fleet section
    from agile_tui.client.fleet import Gateway, Tunnel

RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 10.0


class AgileApp(GatewayApp):
    TITLE = "agile-tui"
    CSS_PATH = "agile.tcss"
    MODES = {mode: section.make for mode, section in SECTIONS.items()}
    BINDINGS = [
        # The top bar lists the sections with their keys, so they stay out of the footer.
        *(
            Binding(s.key, f"switch_mode('{mode}')", s.label, id=f"app.{mode}", show=False)
            for mode, s in SECTIONS.items()
        ),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit", show=False),
    ]

    def __init__(
        self,
        session: Session,
        config: Config,
        start_mode: str = "devices",
        gateways: "list[Gateway] | None" = None,
    ) -> None:
        # The first section is the app's default mode rather than one switched to once
        # mounted: a switch holds the screen's first frame back (Textual's delay_update)
        # and then repaints only part of it, so the Discovered table appeared only with
        # its rows.
        self.DEFAULT_MODE = start_mode  # type: ignore[misc]  # per app: Textual reads it in __init__
        super().__init__(session, config, gateways or [])
        self.remote: Tunnel | None = None  # the opened fleet gateway's, if one is open

    def on_mount(self) -> None:
        self.register_theme(AGILE_THEME)
        try:
            self.theme = self.config.theme
        except InvalidThemeError:
            self.notify(f"Unknown theme {self.config.theme!r}; using agile", severity="warning")
            self.theme = AGILE_THEME.name
        if self.config.keys:
            self.set_keymap(self.config.keys)
        self.connect_bus()
        # The Docker SDK is a heavy import: load it after the first paint, not before.
        self.call_after_refresh(self.connect_engine)

    def on_unmount(self) -> None:
        if self.session.gateway is not None:
            self.session.gateway.close()
        if self.remote is not None:
            self.remote.close()

    async def open_gateway(self, session: Session, tunnel: "Tunnel | None") -> None:
        """Show another gateway in the four sections, as the local one: their screens
        made anew on its bus and engine (`tunnel`: its own, closed when another opens).
        `session` is a new one (its clients never used): the one left is closed."""
        if self.session.gateway is not None:
            self.session.gateway.close()
        old, self.remote = self.remote, tunnel
        self.session = session
        if self.engine is not None:
            self.engine.close()
        self.engine = None
        self.bus_state = self.engine_state = "connecting"
        for mode in SECTIONS:
            if mode != "fleet" and mode != self.current_mode:
                await self.remove_mode(mode)
                self.add_mode(mode, self.MODES[mode])
        self.connect_bus()
        self.connect_engine()
        if old is not None:
            await asyncio.to_thread(old.close)
        self.switch_mode("containers")

    # -- the gateway bus --

    @work(exclusive=True, group="bus")
    async def connect_bus(self) -> None:
        """Connected for as long as the app runs: a bus that goes away (its daemon
        restarted, the bus container recreated by an update) is joined again, with
        backoff; the sections ask anew and resubscribe once it is back."""
        gateway = self.session.gateway
        if gateway is None:
            self._bus_lost(self.session.bus_problem)
            return
        backoff = RECONNECT_MIN_S

        # Until the session is another gateway's (a fleet gateway opened, or left): this
        # worker is cancelled then, but may run on a moment; it must not touch the new one.
        def current() -> bool:
            return gateway is self.session.gateway

        def lost(problem: str) -> None:
            gateway.close()
            if current():
                self._bus_lost(f"{gateway.address}: {problem}")

        while current():
            try:
                await gateway.connect()
                await gateway.on_new_device(self.events.device.publish)
                await gateway.on_record(self.events.record.publish)
                await gateway.on_updater(self.events.updater.publish)
                await gateway.on_storage_status(self._storage_status)
                who = await gateway.who_am_i()
            except BusError as exc:
                lost(str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            if not current():
                gateway.close()
                return
            backoff = RECONNECT_MIN_S
            self.role = str(who.role) if who is not None else ""
            self.bus_state = "connected"
            self.bus_problem = ""
            await gateway.until_closed()
            lost("the connection was closed; reconnecting")

    def watch_role(self) -> None:
        self.screen.refresh_bindings()  # what the footer dims

    def _storage_status(self, paused: bool, error: str) -> None:
        self.storage_problem = storage_problem(error)

    def _bus_lost(self, why: str) -> None:
        self.bus_state = "unreachable"
        self.bus_problem = why

    def bus_failed(self, exc: ClientError) -> None:
        """A screen's call failed: if the connection itself is gone, say so everywhere."""
        gateway = self.session.gateway
        if gateway is not None and not gateway.connected:
            self._bus_lost(f"{gateway.address}: {exc}")

    # -- the engine --

    @work(thread=True, exclusive=True, group="engine")
    def connect_engine(self) -> None:
        """Until the engine answers (it may start after agile-tui), asking with backoff."""
        from agile_tui.client.engine import Engine
        from agile_tui.client.errors import EngineUnreachable

        worker = get_current_worker()
        backoff = RECONNECT_MIN_S
        while not worker.is_cancelled and self.is_running:
            try:
                engine = Engine.connect(self.session.docker_url)
            except EngineUnreachable as exc:
                # The bar says it is the engine: where, and why.
                self.call_from_thread(self._engine_lost, f"{exc.where}: {exc.reason}")
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline and not worker.is_cancelled and self.is_running:
                    time.sleep(0.1)  # a thread: short naps, so quitting never waits
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            self.engine = engine
            self.call_from_thread(setattr, self, "engine_state", "connected")
            return

    def _engine_lost(self, why: str) -> None:
        self.engine_state = "unreachable"
        self.engine_problem = why

    # -- help and the command palette --

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for mode, section in SECTIONS.items():
            go = partial(self.switch_mode, mode)
            yield SystemCommand(f"Go to {section.label}", section.help, go)
        yield SystemCommand("Help", "Every key of every section", self.action_help)
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description:
                where = f"{type(screen).__name__.removesuffix('Screen')}: key {binding.key}"
                need = lacking(screen, binding.action)
                if need is not None:
                    said = f"{binding.description} needs the {need} role; you are {self.role}"
                    yield SystemCommand(
                        f"{binding.description} (needs {need})",
                        where,
                        partial(self.notify, said, severity="warning"),
                    )
                    continue
                yield SystemCommand(
                    f"{binding.description}", where, partial(screen.run_action, binding.action)
                )
        yield from super().get_system_commands(screen)
