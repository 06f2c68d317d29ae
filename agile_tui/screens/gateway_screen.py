"""The base of agile-tui's screens: the app typed as what they use of it, and the
gateway's events followed while the screen is mounted, never after."""

from collections.abc import Callable
from typing import TypeVar

from textual import on
from textual.events import Unmount
from textual.screen import Screen
from textual.signal import Signal

from agile_tui.gateway_app import GatewayApp

T = TypeVar("T")


class GatewayScreen(Screen[None]):
    @property
    def app(self) -> GatewayApp:  # type: ignore[override]  # Textual types it App[Any]
        app = super().app
        assert isinstance(app, GatewayApp), app  # agile-tui's screens run in no other app
        return app

    def subscribe(self, signal: Signal[T], callback: Callable[[T], None]) -> None:
        """`callback` for each event of `signal` until this screen is unmounted; called
        at once (a record is a point appended to a chart: nothing to post a message for)."""
        signal.subscribe(self, callback, immediate=True)

    @on(Unmount)
    def _unsubscribe(self) -> None:
        self.app.events.unsubscribe(self)
