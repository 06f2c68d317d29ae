"""Device types for BLE: standard GATT sensors, AGILE's SensorTag, and a generic fallback."""

import struct

from services import contract as c
from services.ble import gatt as g
from services.devicetypes import Command, Component, DeviceInfo, DeviceType

BLE = "BLE"


def profile(service: str, char: str) -> dict[str, str]:
    return {c.GATT_SERVICE: service, c.GATT_CHARACTERISTIC_KEYS[0]: char}


def _need(raw: bytes, n: int) -> None:
    if len(raw) < n:
        raise ValueError(f"expected {n} bytes, got {len(raw)}")


def decode_temperature(raw: bytes) -> str:
    _need(raw, 2)
    return f"{struct.unpack_from('<h', raw)[0] / 100:.2f}"


def decode_humidity(raw: bytes) -> str:
    _need(raw, 2)
    return f"{struct.unpack_from('<H', raw)[0] / 100:.2f}"


def decode_pressure(raw: bytes) -> str:
    _need(raw, 4)
    return f"{struct.unpack_from('<I', raw)[0] / 1000:.2f}"  # 0.1 Pa -> hPa


def decode_percent(raw: bytes) -> str:
    _need(raw, 1)
    if raw[0] > 100:
        raise ValueError(f"battery level {raw[0]} % is out of range")
    return str(raw[0])


def decode_heart_rate(raw: bytes) -> str:
    _need(raw, 2)
    if raw[0] & 0x01:  # 16-bit value format
        _need(raw, 3)
        return str(struct.unpack_from("<H", raw, 1)[0])
    return str(raw[1])


def decode_ti_temperature(raw: bytes) -> str:
    _need(raw, 4)
    return f"{struct.unpack_from('<h', raw, 2)[0] / 128:.2f}"  # ambient


def decode_ti_object_temperature(raw: bytes) -> str:
    _need(raw, 4)
    return f"{struct.unpack_from('<h', raw, 0)[0] / 128:.2f}"


def decode_ti_humidity(raw: bytes) -> str:
    _need(raw, 4)
    return f"{(struct.unpack_from('<H', raw, 2)[0] & ~0x0003) / 65536 * 100:.2f}"


def decode_ti_pressure(raw: bytes) -> str:
    _need(raw, 6)
    return f"{int.from_bytes(raw[3:6], 'little') / 100:.2f}"


def decode_ti_light(raw: bytes) -> str:
    _need(raw, 2)
    word = struct.unpack_from("<H", raw)[0]
    return f"{(word & 0x0FFF) * 0.01 * (1 << (word >> 12)):.2f}"


def decode_byte(raw: bytes) -> str:
    _need(raw, 1)
    return str(raw[0])


def encode_byte(payload: str) -> bytes:
    try:
        value = int(payload.strip(), 0)
    except ValueError:
        raise c.InvalidArgs(f"expected a number from 0 to 255, not {payload!r}") from None
    if not 0 <= value <= 255:
        raise c.InvalidArgs(f"expected a number from 0 to 255, not {value}")
    return bytes([value])


BATTERY = Component(
    "battery", "%", profile(g.BATTERY, g.BATTERY_LEVEL), decode_percent, format="int"
)


class EnvironmentSensor(DeviceType):
    name = "ble-environment"
    description = "BLE environmental sensor (GATT 0x181A)"
    protocols = (BLE,)
    components = (
        Component(
            "temperature", "°C", profile(g.ENVIRONMENTAL_SENSING, g.TEMPERATURE), decode_temperature
        ),
        Component("humidity", "%", profile(g.ENVIRONMENTAL_SENSING, g.HUMIDITY), decode_humidity),
        Component("pressure", "hPa", profile(g.ENVIRONMENTAL_SENSING, g.PRESSURE), decode_pressure),
        BATTERY,
    )

    def matches(self, overview: c.DeviceOverview, info: DeviceInfo) -> bool:
        return super().matches(overview, info) and g.ENVIRONMENTAL_SENSING in info.get(
            "ServiceUUIDs", []
        )


class HeartRateMonitor(DeviceType):
    name = "ble-heart-rate"
    description = "BLE heart-rate monitor (GATT 0x180D)"
    protocols = (BLE,)
    components = (
        Component(
            "heart-rate",
            "bpm",
            profile(g.HEART_RATE, g.HEART_RATE_MEASUREMENT),
            decode_heart_rate,
            format="int",
            readable=False,
        ),
        BATTERY,
    )

    def matches(self, overview: c.DeviceOverview, info: DeviceInfo) -> bool:
        return super().matches(overview, info) and g.HEART_RATE in info.get("ServiceUUIDs", [])


class SensorTag(DeviceType):
    """AGILE's reference device. Its sensors are off until their config byte is 1."""

    name = "ti-sensortag"
    description = "TI CC2650 SensorTag"
    protocols = (BLE,)
    components = (
        Component(
            "temperature",
            "°C",
            profile(g.TI_TEMPERATURE, g.TI_TEMPERATURE_DATA),
            decode_ti_temperature,
        ),
        Component(
            "object-temperature",
            "°C",
            profile(g.TI_TEMPERATURE, g.TI_TEMPERATURE_DATA),
            decode_ti_object_temperature,
        ),
        Component("humidity", "%", profile(g.TI_HUMIDITY, g.TI_HUMIDITY_DATA), decode_ti_humidity),
        Component(
            "pressure", "hPa", profile(g.TI_PRESSURE, g.TI_PRESSURE_DATA), decode_ti_pressure
        ),
        Component("light", "lux", profile(g.TI_LIGHT, g.TI_LIGHT_DATA), decode_ti_light),
        Component(
            "io",
            "",
            profile(g.TI_IO, g.TI_IO_DATA),
            decode_byte,
            encode_byte,
            format="int",
            subscribable=False,
        ),
        Component(
            "io-mode",
            "",
            profile(g.TI_IO, g.TI_IO_CONFIG),
            decode_byte,
            encode_byte,
            format="int",
            subscribable=False,
        ),
        BATTERY,
    )
    # io bits: 1 red LED, 2 green LED, 4 buzzer; io-mode 1 hands them to the gateway
    commands = (
        Command("led-red", (("io-mode", "1"), ("io", "1"))),
        Command("led-green", (("io-mode", "1"), ("io", "2"))),
        Command("buzzer", (("io-mode", "1"), ("io", "4"))),
        Command("off", (("io", "0"), ("io-mode", "0"))),
    )
    setup = tuple(
        (profile(service, config), b"\x01")
        for service, config in (
            (g.TI_TEMPERATURE, g.TI_TEMPERATURE_CONFIG),
            (g.TI_HUMIDITY, g.TI_HUMIDITY_CONFIG),
            (g.TI_PRESSURE, g.TI_PRESSURE_CONFIG),
            (g.TI_LIGHT, g.TI_LIGHT_CONFIG),
        )
    )

    def matches(self, overview: c.DeviceOverview, info: DeviceInfo) -> bool:
        return super().matches(overview, info) and (
            g.TI_MANUFACTURER_ID in info.get("ManufacturerIds", [])
            or "sensortag" in overview.name.lower()
        )


def _short(uuid: str) -> str:
    """SIG UUIDs by their 16-bit number, others in full."""
    if uuid.endswith("-0000-1000-8000-00805f9b34fb") and uuid.startswith("0000"):
        return uuid[4:8]
    return uuid


def _long(part: str) -> str:
    return g.uuid16(int(part, 16)) if len(part) == 4 else part


class GenericBLE(DeviceType):
    """Any BLE device: every readable characteristic, its value as hex."""

    name = "ble-generic"
    description = "BLE device (generic, raw values)"
    protocols = (BLE,)
    fallback = True
    discovers_components = True

    def components_from(
        self, characteristics: list[tuple[str, str, list[str]]]
    ) -> tuple[c.DeviceComponent, ...]:
        return tuple(
            c.DeviceComponent(f"{_short(s)}/{_short(ch)}", "")
            for s, ch, flags in characteristics
            if "read" in flags or "notify" in flags
        )

    def component(self, component_id: str) -> Component:
        service, sep, char = component_id.partition("/")
        if not sep or not service or not char:
            raise c.NoResult(f"{component_id!r} is not SERVICE/CHARACTERISTIC")
        return Component(
            component_id,
            "",
            profile(_long(service), _long(char)),
            lambda raw: raw.hex(),
            format="hex",
        )

    def components_for_profile(self, profile_: dict[str, str]) -> list[Component]:
        service = profile_.get(c.GATT_SERVICE, "")
        char = next((profile_[k] for k in c.GATT_CHARACTERISTIC_KEYS if k in profile_), "")
        return [self.component(f"{_short(service)}/{_short(char)}")] if service and char else []
