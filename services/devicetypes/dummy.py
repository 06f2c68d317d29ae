"""Device types of the Dummy protocol's simulated devices."""

import struct

from services import contract as c
from services.devicetypes import Command, Component, DeviceInfo, DeviceType

DUMMY = "Dummy"


def decode_centi(raw: bytes) -> str:
    """sint16 little-endian in hundredths (the BLE Environmental Sensing encoding)."""
    if len(raw) != 2:
        raise ValueError(f"expected 2 bytes, got {len(raw)}")
    return f"{struct.unpack('<h', raw)[0] / 100:.2f}"


def decode_ucenti(raw: bytes) -> str:
    if len(raw) != 2:
        raise ValueError(f"expected 2 bytes, got {len(raw)}")
    return f"{struct.unpack('<H', raw)[0] / 100:.2f}"


def decode_onoff(raw: bytes) -> str:
    if len(raw) != 1:
        raise ValueError(f"expected 1 byte, got {len(raw)}")
    return "on" if raw[0] else "off"


def encode_onoff(payload: str) -> bytes:
    value = payload.strip().lower()
    if value in ("on", "1", "true"):
        return b"\x01"
    if value in ("off", "0", "false"):
        return b"\x00"
    raise c.InvalidArgs(f"a switch takes on or off, not {payload!r}")


class DummyThermometer(DeviceType):
    name = "dummy-thermometer"
    description = "Simulated temperature and humidity sensor"
    protocols = (DUMMY,)
    components = (
        Component("temperature", "°C", {"component": "temperature"}, decode_centi),
        Component("humidity", "%", {"component": "humidity"}, decode_ucenti),
    )

    def matches(self, overview: c.DeviceOverview, info: DeviceInfo) -> bool:
        return super().matches(overview, info) and overview.name.startswith("Dummy Thermometer")


class DummySwitch(DeviceType):
    name = "dummy-switch"
    description = "Simulated on/off switch"
    protocols = (DUMMY,)
    components = (
        Component("state", "", {"component": "state"}, decode_onoff, encode_onoff, format="string"),
    )
    commands = (
        Command("on", (("state", "on"),)),
        Command("off", (("state", "off"),)),
    )

    def matches(self, overview: c.DeviceOverview, info: DeviceInfo) -> bool:
        return super().matches(overview, info) and overview.name.startswith("Dummy Switch")
