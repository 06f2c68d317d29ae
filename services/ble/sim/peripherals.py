"""Simulated BLE peripherals: what they advertise, their GATT tables and their values.

Values are smooth functions of time plus seeded noise, so a run is realistic to
look at and repeatable in tests. Nothing here knows D-Bus; bluez.py puts these
peripherals behind a faithful BlueZ API.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from services.ble import gatt as g

Reader = Callable[[float], bytes]


@dataclass
class SimCharacteristic:
    uuid: str
    flags: tuple[str, ...]  # BlueZ flags: read, write, write-without-response, notify
    read: Reader | None = None  # value at a time; None: the value last written
    notify_hz: float = 1.0
    value: bytes = b""  # last written value


@dataclass
class SimService:
    uuid: str
    characteristics: list[SimCharacteristic]


@dataclass
class SimPeripheral:
    address: str
    name: str
    services: list[SimService]
    advertised_uuids: list[str] = field(default_factory=list)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    rssi: int = -60
    tx_power: int = 0
    appearance: int = 0
    connectable: bool = True
    # (seconds in range, seconds out of range), repeating; None: always in range
    range_cycle: tuple[float, float] | None = None
    seed: int = 0
    present: bool = True  # False: switched off or carried away, whatever the cycle says
    rssi_jitter: int = 4  # dBm either way on each advertisement

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed or hash(self.address) & 0xFFFF)

    def in_range(self, t: float) -> bool:
        if not self.present:
            return False
        if self.range_cycle is None:
            return True
        on, off = self.range_cycle
        return (t % (on + off)) < on

    def rssi_at(self) -> int:
        jitter = self.rng.randint(-self.rssi_jitter, self.rssi_jitter)
        return max(-100, min(-20, self.rssi + jitter))

    def characteristic(self, uuid: str) -> SimCharacteristic | None:
        for service in self.services:
            for char in service.characteristics:
                if char.uuid == uuid:
                    return char
        return None


def _wave(
    base: float, amplitude: float, period_s: float, phase: float, noise: float, rng: random.Random
) -> Callable[[float], float]:
    def value(t: float) -> float:
        return (
            base
            + amplitude * math.sin(2 * math.pi * t / period_s + phase)
            + rng.uniform(-noise, noise)
        )

    return value


def _device_information(manufacturer: str, model: str) -> SimService:
    return SimService(
        g.DEVICE_INFORMATION,
        [
            SimCharacteristic(g.MANUFACTURER_NAME, ("read",), lambda t: manufacturer.encode()),
            SimCharacteristic(g.MODEL_NUMBER, ("read",), lambda t: model.encode()),
        ],
    )


def _battery(level: int) -> SimService:
    return SimService(
        g.BATTERY,
        [
            SimCharacteristic(
                g.BATTERY_LEVEL, ("read", "notify"), lambda t: bytes([level]), notify_hz=0.2
            ),
        ],
    )


def environment_sensor(
    address: str,
    name: str,
    seed: int,
    notify_hz: float = 1.0,
    range_cycle: tuple[float, float] | None = None,
) -> SimPeripheral:
    rng = random.Random(seed)
    temp = _wave(21.5, 2.0, 600, rng.uniform(0, 6), 0.05, rng)
    hum = _wave(45.0, 8.0, 900, rng.uniform(0, 6), 0.2, rng)
    press = _wave(1013.0, 4.0, 3600, rng.uniform(0, 6), 0.05, rng)
    return SimPeripheral(
        address,
        name,
        seed=seed,
        rssi=-55 - seed % 20,
        range_cycle=range_cycle,
        advertised_uuids=[g.ENVIRONMENTAL_SENSING],
        appearance=0x0540,
        service_data={g.ENVIRONMENTAL_SENSING: g.encode_temperature(21.5)},
        services=[
            SimService(
                g.ENVIRONMENTAL_SENSING,
                [
                    SimCharacteristic(
                        g.TEMPERATURE,
                        ("read", "notify"),
                        lambda t: g.encode_temperature(temp(t)),
                        notify_hz,
                    ),
                    SimCharacteristic(
                        g.HUMIDITY,
                        ("read", "notify"),
                        lambda t: g.encode_humidity(hum(t)),
                        notify_hz,
                    ),
                    SimCharacteristic(
                        g.PRESSURE,
                        ("read", "notify"),
                        lambda t: g.encode_pressure(press(t)),
                        notify_hz,
                    ),
                ],
            ),
            _battery(87),
            _device_information("AGILE Labs", "EnvSense 1"),
        ],
    )


def heart_rate_monitor(address: str, name: str, seed: int, notify_hz: float = 1.0) -> SimPeripheral:
    rng = random.Random(seed)
    bpm = _wave(72, 12, 120, 0, 2, rng)
    return SimPeripheral(
        address,
        name,
        seed=seed,
        rssi=-65,
        advertised_uuids=[g.HEART_RATE],
        appearance=0x0340,
        services=[
            SimService(
                g.HEART_RATE,
                [
                    SimCharacteristic(
                        g.HEART_RATE_MEASUREMENT,
                        ("notify",),
                        lambda t: g.encode_heart_rate(round(bpm(t))),
                        notify_hz,
                    ),
                    SimCharacteristic(g.BODY_SENSOR_LOCATION, ("read",), lambda t: b"\x01"),
                ],
            ),
            _battery(64),
            _device_information("AGILE Labs", "Pulse 2"),
        ],
    )


def sensortag(address: str, name: str, seed: int, notify_hz: float = 1.0) -> SimPeripheral:
    """A TI CC2650 SensorTag-like device: sensors switch on by writing 0x01 to their config."""
    rng = random.Random(seed)
    temp = _wave(23.0, 1.5, 600, 1, 0.05, rng)
    obj = _wave(30.0, 3.0, 300, 2, 0.1, rng)
    hum = _wave(40.0, 5.0, 900, 3, 0.2, rng)
    press = _wave(1009.0, 3.0, 3600, 4, 0.05, rng)
    lux = _wave(300.0, 150.0, 240, 5, 5, rng)

    def sensor(service: str, data: str, config: str, encode: Reader) -> SimService:
        cfg = SimCharacteristic(config, ("read", "write"), None, value=b"\x00")

        def read(t: float) -> bytes:
            # Like the real tag: all zeros until the sensor is enabled.
            return encode(t) if cfg.value[:1] == b"\x01" else bytes(len(encode(t)))

        return SimService(
            service, [SimCharacteristic(data, ("read", "notify"), read, notify_hz), cfg]
        )

    return SimPeripheral(
        address,
        name,
        seed=seed,
        rssi=-58,
        manufacturer_data={g.TI_MANUFACTURER_ID: b"\x03\x00"},
        services=[
            sensor(
                g.TI_TEMPERATURE,
                g.TI_TEMPERATURE_DATA,
                g.TI_TEMPERATURE_CONFIG,
                lambda t: g.encode_ti_temperature(obj(t), temp(t)),
            ),
            sensor(
                g.TI_HUMIDITY,
                g.TI_HUMIDITY_DATA,
                g.TI_HUMIDITY_CONFIG,
                lambda t: g.encode_ti_humidity(temp(t), hum(t)),
            ),
            sensor(
                g.TI_PRESSURE,
                g.TI_PRESSURE_DATA,
                g.TI_PRESSURE_CONFIG,
                lambda t: g.encode_ti_pressure(temp(t), press(t)),
            ),
            sensor(
                g.TI_LIGHT, g.TI_LIGHT_DATA, g.TI_LIGHT_CONFIG, lambda t: g.encode_ti_light(lux(t))
            ),
            SimService(
                g.TI_IO,
                [
                    SimCharacteristic(
                        g.TI_IO_DATA,
                        ("read", "write", "write-without-response"),
                        None,
                        value=b"\x00",
                    ),
                    SimCharacteristic(g.TI_IO_CONFIG, ("read", "write"), None, value=b"\x00"),
                ],
            ),
            _battery(95),
            _device_information("Texas Instruments", "CC2650 SensorTag"),
        ],
    )


def beacon(address: str, name: str, seed: int) -> SimPeripheral:
    """Advertises (with manufacturer data) but accepts no connection."""
    return SimPeripheral(
        address,
        name,
        services=[],
        seed=seed,
        rssi=-75,
        connectable=False,
        manufacturer_data={0x004C: bytes.fromhex("0215") + bytes(21)},
    )


def default_population(
    count: int = 0, notify_hz: float = 1.0, wanderer_cycle: tuple[float, float] = (40.0, 20.0)
) -> list[SimPeripheral]:
    """The demo's peripherals; `count` > 0 adds that many extra environment sensors."""
    devices = [
        environment_sensor("C0:FF:EE:00:00:01", "AGILE Env 1", 1, notify_hz),
        heart_rate_monitor("C0:FF:EE:00:00:02", "AGILE Pulse", 2, notify_hz),
        sensortag("C0:FF:EE:00:00:03", "CC2650 SensorTag", 3, notify_hz),
        beacon("C0:FF:EE:00:00:04", "AGILE Beacon", 4),
        environment_sensor(
            "C0:FF:EE:00:00:05", "AGILE Env Wanderer", 5, notify_hz, range_cycle=wanderer_cycle
        ),
    ]
    for i in range(count):
        address = f"C0:FF:EE:01:{(i >> 8) & 0xFF:02X}:{i & 0xFF:02X}"
        devices.append(environment_sensor(address, f"AGILE Env {100 + i}", 100 + i, notify_hz))
    return devices
