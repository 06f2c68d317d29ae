"""The discovered-device list: de-duplicated by (protocol, id), expiring unseen entries."""

import dataclasses
import time
from collections.abc import Callable

from services import contract as c
from services.contract import DeviceOverview


class DiscoveredDevices:
    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[DeviceOverview, float]] = {}

    def seen(self, overview: DeviceOverview) -> bool:
        """Record a sighting now; True if the device is new to the list. What a radio
        says is bounded: an address that makes no device id is not listed, a long name is
        cut, and past DISCOVERED_MAX devices the one seen longest ago goes."""
        if len(overview.id) > c.ADDRESS_MAX or not c.valid_device_id(overview.device_id):
            return False
        if len(overview.name) > c.NAME_MAX or not overview.name.isprintable():
            name = "".join(ch for ch in overview.name[: c.NAME_MAX] if ch.isprintable())
            overview = dataclasses.replace(overview, name=name)
        key = (overview.protocol, overview.id)
        new = key not in self._entries
        if new and len(self._entries) >= c.DISCOVERED_MAX:
            del self._entries[min(self._entries, key=lambda k: self._entries[k][1])]
        self._entries[key] = (overview, self.clock())
        return new

    def drop_protocol(self, protocol: str) -> None:
        for key in [k for k in self._entries if k[0] == protocol]:
            del self._entries[key]

    def expire(self) -> list[DeviceOverview]:
        cutoff = self.clock() - self.ttl_s
        gone = [k for k, (_, t) in self._entries.items() if t < cutoff]
        return [self._entries.pop(k)[0] for k in gone]

    def devices(self) -> list[DeviceOverview]:
        self.expire()
        return [
            o for o, _ in sorted(self._entries.values(), key=lambda e: (e[0].protocol, e[0].id))
        ]
