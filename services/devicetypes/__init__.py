"""The device-type registry: what components a device has, how its bytes become values.

Types are plug-ins: any installed distribution can add one under the entry-point
group `agile_gateway.device_types` (this project's own types register the same
way, in pyproject.toml), as AGILE's DeviceFactory took plug-ins.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from services import contract as c

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agile_gateway.device_types"


@dataclass(frozen=True)
class Component:
    """A sensor or actuator of a device type.

    `profile` addresses it on its protocol (e.g. GATT service + characteristic);
    `decode` turns raw protocol bytes into the value string of a RecordObject and
    `encode` turns a written payload string into bytes (None: not writable).
    """

    id: str
    unit: str
    profile: dict[str, str]
    decode: Callable[[bytes], str]
    encode: Callable[[str], bytes] | None = None
    format: str = "float"
    readable: bool = True
    subscribable: bool = True

    def matches_profile(self, profile: dict[str, str]) -> bool:
        return all(profile.get(k) == v for k, v in self.profile.items())


@dataclass(frozen=True)
class Command:
    """A named action: writes of payload strings to components, in order."""

    id: str
    writes: tuple[tuple[str, str], ...] = field(default_factory=tuple)


DeviceInfo = dict[str, Any]
"""What a protocol knows of a device beyond its overview (Protocol.DeviceInfo): for BLE
RSSI, ServiceUUIDs, ManufacturerIds; for ZigBee Manufacturer, Model, Clusters."""


class DeviceType:
    """Base of every device type; subclasses set the class attributes and `matches`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    protocols: ClassVar[tuple[str, ...]] = ()  # protocol short names, e.g. ("BLE",)
    components: ClassVar[tuple[Component, ...]] = ()
    commands: ClassVar[tuple[Command, ...]] = ()
    # Writes made after every connect, e.g. switching a SensorTag's sensors on.
    setup: ClassVar[tuple[tuple[dict[str, str], bytes], ...]] = ()
    # A generic type learns its components from the device (Protocol.Characteristics).
    discovers_components: ClassVar[bool] = False
    fallback: ClassVar[bool] = False  # listed after the specific types that match

    def matches(self, overview: c.DeviceOverview, info: DeviceInfo) -> bool:
        """Whether this type fits a discovered device; by default any of its protocols'."""
        return c.protocol_short_name(overview.protocol) in self.protocols

    def components_from(
        self, characteristics: list[tuple[str, str, list[str]]]
    ) -> tuple[c.DeviceComponent, ...]:
        """Streams of a device whose type discovers its components (see `discovers_components`)."""
        raise NotImplementedError

    def component(self, component_id: str) -> Component:
        for comp in self.components:
            if comp.id == component_id:
                return comp
        raise c.NoResult(
            f"{self.name} has no component {component_id!r}; it has "
            f"{', '.join(x.id for x in self.components) or 'none'}"
        )

    def components_for_profile(self, profile: dict[str, str]) -> list[Component]:
        """Every component a notified value belongs to (one characteristic can carry two)."""
        return [x for x in self.components if x.matches_profile(profile)]

    def command(self, command_id: str) -> Command:
        for cmd in self.commands:
            if cmd.id == command_id:
                return cmd
        raise c.NoResult(
            f"{self.name} has no command {command_id!r}; it has "
            f"{', '.join(x.id for x in self.commands) or 'none'}"
        )

    def streams(self) -> tuple[c.DeviceComponent, ...]:
        return tuple(c.DeviceComponent(x.id, x.unit) for x in self.components)


class DeviceTypeRegistry:
    def __init__(self, types: Iterable[DeviceType] = ()) -> None:
        self._types: dict[str, DeviceType] = {}
        for t in types:
            self.add(t)

    def add(self, device_type: DeviceType) -> None:
        self._types[device_type.name] = device_type

    def get(self, name: str) -> DeviceType:
        try:
            return self._types[name]
        except KeyError:
            raise c.NoResult(
                f"no device type {name!r}; known: {', '.join(sorted(self._types)) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def matching(self, overview: c.DeviceOverview, info: DeviceInfo | None = None) -> list[str]:
        """Names of the types that fit, specific ones first and generic fallbacks last."""
        fits = []
        for t in self._types.values():
            try:
                if t.matches(overview, info or {}):
                    fits.append(t)
            except Exception:
                log.exception("device type %s failed to match %s; skipped", t.name, overview.id)
        fits.sort(key=lambda t: (t.fallback, t.name))
        return [t.name for t in fits]

    @classmethod
    def from_entry_points(cls) -> "DeviceTypeRegistry":
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                device_type = ep.load()()
                registry.add(device_type)
            except Exception:
                # A broken third-party plug-in must not take the DeviceManager down.
                log.exception(
                    "device type plug-in %s (%s) failed to load; skipped", ep.name, ep.value
                )
        return registry
