"""What the gateway bus says, for the screens that follow it: typed signals whose
subscribers are the screens themselves, so none outlives its screen."""

from typing import Any

from textual.dom import DOMNode
from textual.signal import Signal

from agile_tui.client.gateway import UpdaterEvent
from services import contract as c


class GatewayEvents:
    def __init__(self, owner: DOMNode) -> None:
        self.device: Signal[c.DeviceOverview] = Signal(owner, "device")  # FoundNewDevice
        self.record: Signal[c.RecordObject] = Signal(owner, "record")  # a subscribed value
        self.updater: Signal[UpdaterEvent] = Signal(owner, "updater")  # the update service's

    def _signals(self) -> tuple[Signal[Any], ...]:
        return (self.device, self.record, self.updater)

    def unsubscribe(self, node: DOMNode) -> None:
        for signal in self._signals():
            signal.unsubscribe(node)

    def subscribers(self) -> int:
        """Screens following any of them (Textual's Signal keeps no public count)."""
        return sum(len(signal._subscriptions) for signal in self._signals())
