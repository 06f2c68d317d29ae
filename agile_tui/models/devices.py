"""The Devices section's data: what the radios discovered and since when each was heard,
what is registered and in which state, each device's signal, ZigBee joining, and the
MQTT bridge — fetched together, one DevicesView a fetch."""

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agile_tui.client.errors import BusError
from agile_tui.models.polled import Polled
from services import contract as c


class DevicesSource(Protocol):
    """What the model asks of the gateway (agile_tui.client.gateway.GatewayClient)."""

    @property
    def connected(self) -> bool: ...
    async def discovered(self) -> list[c.DeviceOverview]: ...
    async def registered(self) -> list[c.DeviceDefinition]: ...
    async def discovery_status(self) -> list[c.DiscoveryStatus]: ...
    async def devices_status(self) -> dict[str, str]: ...
    async def all_devices_info(self) -> dict[str, dict[str, Any]]: ...
    async def permit_join_remaining(self) -> int: ...
    async def zigbee_backups(self) -> list[c.ZigBeeBackup]: ...
    async def bridge_status(self) -> dict[str, Any] | None: ...
    async def bridged(self) -> dict[str, bool]: ...


@dataclass(frozen=True)
class Sighting:
    overview: c.DeviceOverview
    heard: float  # when this session saw the radio's last-seen time of the device change
    radio_last_seen: int | None = None  # the radio's LastSeen (epoch ms), where it says


@dataclass(frozen=True)
class DevicesView:
    sightings: dict[str, Sighting] = field(default_factory=dict)  # by device id
    registered: dict[str, c.DeviceDefinition] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    signal: dict[str, str] = field(default_factory=dict)  # RSSI (BLE) or LQI (ZigBee)
    discovering: bool = False
    join_until: float | None = None  # ZigBee joining open until (monotonic); None: no ZigBee
    backups: list[c.ZigBeeBackup] | None = None  # the ZigBee network's, oldest first
    bridge: dict[str, Any] | None = None  # the MQTT bridge's Status; None: no bridge
    bridged: dict[str, bool] = field(default_factory=dict)


class DevicesModel(Polled[DevicesView]):
    def __init__(
        self,
        source: DevicesSource | None,
        clock: Callable[[], float],
        period_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(period_s)
        self.source = source
        self.clock = clock  # the session's: ages are on it
        self.monotonic = monotonic
        self.view = DevicesView()

    async def fetch(self) -> DevicesView | None:
        source = self.source
        if source is None or not source.connected:
            return None
        discovered = await source.discovered()
        registered = await source.registered()
        statuses = await source.discovery_status()
        devices_status = await source.devices_status()
        signal, last_seen = radio_info(await source.all_devices_info())
        join_until = await self._join_until(source)
        backups = await self._backups(source) if join_until is not None else None
        bridge = await source.bridge_status()
        bridged = await source.bridged() if bridge else {}
        self.view = DevicesView(
            self._sightings(discovered, last_seen),
            {d.device_id: d for d in registered},
            devices_status,
            signal,
            any(s.status == c.DiscoveryState.RUNNING for s in statuses),
            join_until,
            backups,
            bridge,
            bridged,
        )
        return self.view

    def _sightings(
        self, discovered: list[c.DeviceOverview], last_seen: dict[str, int]
    ) -> dict[str, Sighting]:
        # Ages are counted on this session's clock from when the radio's last-seen time
        # changed, so two machines' clocks are never compared.
        now = self.clock()
        sightings = {}
        for overview in discovered:
            key = overview.device_id
            old = self.view.sightings.get(key)
            radio = last_seen.get(key)
            same = old is not None and (radio is None or radio == old.radio_last_seen)
            sightings[key] = Sighting(overview, old.heard if old and same else now, radio)
        return sightings

    async def _join_until(self, source: DevicesSource) -> float | None:
        """When ZigBee joining closes (monotonic time); None where no ZigBee runs."""
        try:
            remaining = await source.permit_join_remaining()
        except BusError as exc:
            if exc.lost:
                raise
            return None
        return self.monotonic() + remaining

    async def _backups(self, source: DevicesSource) -> list[c.ZigBeeBackup] | None:
        try:
            return await source.zigbee_backups()
        except BusError as exc:
            if exc.lost:
                raise
            return None  # a ZigBee service older than its backups

    def backed_up(self, backup: c.ZigBeeBackup) -> None:
        """This operator took `backup` now."""
        self.view = dataclasses.replace(self.view, backups=[*(self.view.backups or []), backup])

    def joining(self, seconds: int) -> None:
        """Joining was opened for `seconds` (0: closed) by this operator."""
        self.view = dataclasses.replace(self.view, join_until=self.monotonic() + seconds)

    def join_remaining(self) -> int | None:
        if self.view.join_until is None:
            return None
        return max(0, round(self.view.join_until - self.monotonic()))


def radio_info(info: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, int]]:
    """Signal (RSSI, else LQI) and last-seen time by device id; none where a radio
    cannot say."""
    signal, last_seen = {}, {}
    for key, props in info.items():
        value = props.get("RSSI", props.get("LQI"))
        if isinstance(value, int):
            signal[key] = str(value)
        if isinstance(props.get("LastSeen"), int):
            last_seen[key] = props["LastSeen"]
    return signal, last_seen
