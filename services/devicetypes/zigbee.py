"""Device types for ZigBee (ZCL clusters on endpoint 1), and a generic fallback.

Profiles address a ZCL attribute (`endpoint`, `cluster`, `attribute`) whose
value arrives in ZCL encoding; actuators are written as cluster commands (a
profile with `"command": "payload"`: the command id byte, then its arguments).
"""

import enum
import struct

from zigpy.zcl import Cluster

from services import contract as c
from services.devicetypes import Command, Component, DeviceInfo, DeviceType

ZB = "ZB"
EP = 1


def zcl(cluster: int, attribute: int, endpoint: int = EP) -> dict[str, str]:
    return {
        "endpoint": str(endpoint),
        "cluster": f"0x{cluster:04x}",
        "attribute": f"0x{attribute:04x}",
    }


def command(cluster: int, endpoint: int = EP) -> dict[str, str]:
    return {"endpoint": str(endpoint), "cluster": f"0x{cluster:04x}", "command": "payload"}


def _unpack(fmt: str, raw: bytes) -> int:
    size = struct.calcsize(fmt)
    if len(raw) != size:
        raise ValueError(f"expected {size} bytes, got {len(raw)}")
    return struct.unpack(fmt, raw)[0]


def decode_centi(raw: bytes) -> str:
    value = _unpack("<h", raw)
    if value == -0x8000:
        raise ValueError("the sensor reports no valid measurement (0x8000)")
    return f"{value / 100:.2f}"


def decode_ucenti(raw: bytes) -> str:
    value = _unpack("<H", raw)
    if value == 0xFFFF:
        raise ValueError("the sensor reports no valid measurement (0xffff)")
    return f"{value / 100:.2f}"


def decode_half_percent(raw: bytes) -> str:
    value = _unpack("<B", raw)
    if value > 200:
        raise ValueError(f"battery {value / 2} % is out of range")
    return f"{value / 2:.0f}"


def decode_on_off(raw: bytes) -> str:
    return "on" if _unpack("<B", raw) else "off"


def decode_watts(raw: bytes) -> str:
    return str(_unpack("<h", raw))


def decode_volts(raw: bytes) -> str:
    return str(_unpack("<H", raw))


def decode_kwh(raw: bytes) -> str:
    if len(raw) != 6:
        raise ValueError(f"expected 6 bytes, got {len(raw)}")
    return f"{int.from_bytes(raw, 'little') / 1000:.3f}"  # divisor 1000: Wh -> kWh


def decode_occupancy(raw: bytes) -> str:
    return "occupied" if _unpack("<B", raw) & 0x01 else "clear"


def decode_contact(raw: bytes) -> str:
    return "open" if _unpack("<H", raw) & 0x0001 else "closed"  # zone status alarm 1


def decode_level(raw: bytes) -> str:
    return str(round(_unpack("<B", raw) * 100 / 254))


def encode_switch(payload: str) -> bytes:
    commands = {"off": 0x00, "on": 0x01, "toggle": 0x02, "0": 0x00, "1": 0x01}
    try:
        return bytes([commands[payload.strip().lower()]])
    except KeyError:
        raise c.InvalidArgs(f"a switch takes on, off or toggle, not {payload!r}") from None


def encode_brightness(payload: str) -> bytes:
    """Percent -> Level Control move_to_level_with_on_off (level 0..254, transition 0)."""
    try:
        percent = float(payload)
    except ValueError:
        raise c.InvalidArgs(f"brightness takes a percentage, not {payload!r}") from None
    if not 0 <= percent <= 100:
        raise c.InvalidArgs(f"brightness is 0..100 %, not {payload}")
    return bytes([0x04, round(percent * 254 / 100)]) + (0).to_bytes(2, "little")


class ZigBeeType(DeviceType):
    """A ZigBee type that fits devices with all of `clusters` on endpoint 1."""

    protocols = (ZB,)
    clusters: tuple[int, ...] = ()

    def matches(self, overview: c.DeviceOverview, info: DeviceInfo) -> bool:
        have = set(info.get("Clusters", []))
        return super().matches(overview, info) and all(
            f"{EP}/0x{cluster:04x}" in have for cluster in self.clusters
        )


BATTERY = Component("battery", "%", zcl(0x0001, 0x0021), decode_half_percent, format="integer")
STATE = Component("state", "", zcl(0x0006, 0x0000), decode_on_off, format="string")
SWITCH = Component(
    "switch",
    "",
    command(0x0006),
    lambda raw: raw.hex(),
    encode_switch,
    format="string",
    readable=False,
    subscribable=False,
)
SWITCH_COMMANDS = (
    Command("on", (("switch", "on"),)),
    Command("off", (("switch", "off"),)),
    Command("toggle", (("switch", "toggle"),)),
)


class ClimateSensor(ZigBeeType):
    name = "zigbee-climate"
    description = "ZigBee temperature and humidity sensor"
    clusters = (0x0402, 0x0405)
    components = (
        Component("temperature", "°C", zcl(0x0402, 0x0000), decode_centi),
        Component("humidity", "%", zcl(0x0405, 0x0000), decode_ucenti),
        BATTERY,
    )


class SmartPlug(ZigBeeType):
    name = "zigbee-smart-plug"
    description = "ZigBee on/off plug with power metering"
    clusters = (0x0006, 0x0B04, 0x0702)
    components = (
        STATE,
        SWITCH,
        Component("power", "W", zcl(0x0B04, 0x050B), decode_watts, format="integer"),
        Component("voltage", "V", zcl(0x0B04, 0x0505), decode_volts, format="integer"),
        Component("energy", "kWh", zcl(0x0702, 0x0000), decode_kwh),
    )
    commands = SWITCH_COMMANDS


class DimmableLight(ZigBeeType):
    name = "zigbee-dimmable-light"
    description = "ZigBee dimmable light"
    clusters = (0x0006, 0x0008)
    components = (
        STATE,
        SWITCH,
        Component("level", "%", zcl(0x0008, 0x0000), decode_level, format="integer"),
        Component(
            "brightness",
            "%",
            command(0x0008),
            lambda raw: raw.hex(),
            encode_brightness,
            readable=False,
            subscribable=False,
        ),
    )
    commands = (
        *SWITCH_COMMANDS,
        Command("dim", (("brightness", "25"),)),
        Command("full", (("brightness", "100"),)),
    )


class MotionSensor(ZigBeeType):
    name = "zigbee-motion"
    description = "ZigBee motion sensor (Occupancy Sensing)"
    clusters = (0x0406,)
    components = (
        Component("occupancy", "", zcl(0x0406, 0x0000), decode_occupancy, format="string"),
        BATTERY,
    )


class ContactSensor(ZigBeeType):
    name = "zigbee-contact"
    description = "ZigBee door/window contact (IAS Zone)"
    clusters = (0x0500,)
    components = (
        Component("contact", "", zcl(0x0500, 0x0002), decode_contact, format="string"),
        BATTERY,
    )


def _clusters_by_name() -> dict[str, type[Cluster]]:
    return {cls.ep_attribute: cls for cls in Cluster._registry.values()}


class GenericZigBee(DeviceType):
    """Any ZigBee device: every reportable attribute of its clusters, decoded by the
    attribute's ZCL type. Component ids read `endpoint/cluster/attribute`, e.g.
    `1/temperature_measurement/measured_value`."""

    name = "zigbee-generic"
    description = "ZigBee device (generic, every reportable attribute)"
    protocols = (ZB,)
    fallback = True
    discovers_components = True

    def components_from(
        self, characteristics: list[tuple[str, str, list[str]]]
    ) -> tuple[c.DeviceComponent, ...]:
        out = []
        for cluster, attribute, flags in characteristics:
            ep, _, cluster_name = cluster.split("/", 2)
            attr_name = attribute.partition("/")[2]
            if "read" in flags and cluster_name and attr_name:
                out.append(c.DeviceComponent(f"{ep}/{cluster_name}/{attr_name}", ""))
        return tuple(out)

    def component(self, component_id: str) -> Component:
        try:
            ep, cluster_name, attr_name = component_id.split("/")
            cluster = _clusters_by_name()[cluster_name]
            attr = cluster.attributes_by_name[attr_name]
            endpoint = int(ep)
        except (ValueError, KeyError):
            raise c.NoResult(
                f"{component_id!r} is not ENDPOINT/CLUSTER/ATTRIBUTE of a known ZCL cluster"
            ) from None
        attr_type = attr.type

        def decode(raw: bytes) -> str:
            value, rest = attr_type.deserialize(raw)
            if rest:
                raise ValueError(f"{len(rest)} bytes too many for {attr_type.__name__}")
            if isinstance(value, enum.Enum):
                return value.name or str(value.value)
            return str(value)

        return Component(
            component_id, "", zcl(cluster.cluster_id, attr.id, endpoint), decode, format="string"
        )

    def components_for_profile(self, profile: dict[str, str]) -> list[Component]:
        try:
            cluster = Cluster._registry[int(profile["cluster"], 0)]
            attr = cluster.attributes[int(profile["attribute"], 0)]
            return [
                self.component(f"{int(profile['endpoint'])}/{cluster.ep_attribute}/{attr.name}")
            ]
        except (KeyError, ValueError, c.NoResult):
            return []
