"""Simulated ZigBee end devices: their descriptors, ZCL attributes, behaviour and faults.

A device is described the way a real one answers its interview (node
descriptor, endpoints with simple descriptors, Basic manufacturer/model), and
its ZCL state is a table of attribute values typed by zigpy's own cluster
definitions, so what goes over the simulated air is what a real device sends.
"""

import math
import random
from dataclasses import dataclass, field
from typing import Any

import zigpy.types as t
from zigpy.profiles import zha
from zigpy.zcl import Cluster

from services.zigbee.sim.ota import OTA, OtaState

# Cluster ids (ZCL spec); kept as plain ints since the simulator speaks bytes.
BASIC = 0x0000
POWER = 0x0001
IDENTIFY = 0x0003
ON_OFF = 0x0006
LEVEL = 0x0008
TEMPERATURE = 0x0402
HUMIDITY = 0x0405
OCCUPANCY = 0x0406
IAS_ZONE = 0x0500
METERING = 0x0702
ELECTRICAL = 0x0B04


def attr_type(cluster_id: int, attr_id: int) -> type:
    """The zigpy type of an attribute, from zigpy's cluster definitions."""
    return Cluster._registry[cluster_id].attributes[attr_id].type


@dataclass
class SimEndpoint:
    endpoint: int
    device_type: int
    in_clusters: dict[int, dict[int, Any]]  # cluster -> attribute -> value
    out_clusters: list[int] = field(default_factory=list)
    profile: int = zha.PROFILE_ID


@dataclass
class SimDevice:
    """One simulated device. Faults: `loss` (share of frames not acknowledged),
    `latency_s`, `leave_after_s` (leaves the network), `dropout` ((up, down) seconds:
    off the air for `down` after every `up`)."""

    ieee: t.EUI64
    kind: str
    manufacturer: str
    model: str
    endpoints: list[SimEndpoint]
    router: bool = False  # mains powered (a plug) routes; battery sensors are end devices
    report_interval_s: float = 1.0
    loss: float = 0.0
    latency_s: float = 0.0
    leave_after_s: float | None = None
    dropout: tuple[float, float] | None = None
    seed: int = 0
    mute: bool = False  # acknowledges frames but never answers (a hung device)
    nwk: t.NWK | None = None
    joined: bool = False
    present: bool = True
    rx_counter: int = 0  # the last frame counter it took from the coordinator
    ota: OtaState | None = None  # its firmware, where it can be upgraded over the air
    # A sleepy end device: awake for a moment every `sleep_s` (frames for it wait at its
    # parent meanwhile, a few seconds at most); None: always listening.
    sleep_s: float | None = None
    # (endpoint, cluster) -> attribute ids the coordinator asked to have reported
    reporting: dict[tuple[int, int], set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed or int(self.ieee.serialize()[::-1].hex(), 16))
        # A fixed link quality per device (where it stands from the coordinator).
        self.lqi = 180 + self.rng.randrange(70)
        self.rssi = -40 - self.rng.randrange(40)
        self.ticks = 0
        self.awake_until = 0.0  # monotonic: a sleepy device's current wake
        self.held: list[tuple[float, Any, int]] = []  # frames its parent holds for it
        for ep in self.endpoints:
            ep.in_clusters.setdefault(
                BASIC, {0x0000: 3, 0x0004: self.manufacturer, 0x0005: self.model, 0x0007: 1}
            )

    @property
    def ieee_str(self) -> str:
        return str(self.ieee)

    def endpoint(self, endpoint_id: int) -> SimEndpoint | None:
        return next((ep for ep in self.endpoints if ep.endpoint == endpoint_id), None)

    def attributes(self, endpoint_id: int, cluster_id: int) -> dict[int, Any] | None:
        ep = self.endpoint(endpoint_id)
        return None if ep is None else ep.in_clusters.get(cluster_id)

    def step(self) -> None:
        """Move the measured values on, the way real sensors drift."""
        self.ticks += 1
        phase = self.ticks / 60
        for ep in self.endpoints:
            clusters = ep.in_clusters
            if TEMPERATURE in clusters:
                base = 2150 + 150 * math.sin(phase)
                clusters[TEMPERATURE][0x0000] = int(base + self.rng.gauss(0, 8))
            if HUMIDITY in clusters:
                base = 4500 + 600 * math.cos(phase)
                clusters[HUMIDITY][0x0000] = max(0, min(10000, int(base + self.rng.gauss(0, 30))))
            if OCCUPANCY in clusters and self.rng.random() < 0.1:
                clusters[OCCUPANCY][0x0000] ^= 1
            if IAS_ZONE in clusters and self.rng.random() < 0.05:
                clusters[IAS_ZONE][0x0002] ^= 1  # alarm 1: contact open
            if ELECTRICAL in clusters:
                on = bool(clusters.get(ON_OFF, {}).get(0x0000, 1))
                clusters[ELECTRICAL][0x050B] = int(on * (60 + self.rng.gauss(0, 2)))
                clusters[ELECTRICAL][0x0505] = int(230 + self.rng.gauss(0, 1))
            if METERING in clusters:
                on = bool(clusters.get(ON_OFF, {}).get(0x0000, 1))
                # 60 W for one report interval, in Wh (divisor 1000 gives kWh)
                clusters[METERING][0x0000] += int(on * 60 * self.report_interval_s / 3.6)


def _ieee(n: int) -> t.EUI64:
    return t.EUI64.convert(
        f"00:12:4b:00:1c:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"
    )


MANUFACTURER_CODE = 0x1234  # the node descriptors' (and their firmware images')
FIRST_FIRMWARE = 0x00010000


def climate_sensor(n: int, **kw: Any) -> SimDevice:
    kw.setdefault("ota", OtaState(MANUFACTURER_CODE, 0x0202, FIRST_FIRMWARE))
    return SimDevice(
        _ieee(n),
        "climate",
        "AGILE Sim",
        "TH-100",
        [
            SimEndpoint(
                1,
                zha.DeviceType.TEMPERATURE_SENSOR,
                {
                    POWER: {0x0020: 30, 0x0021: 180},  # 3.0 V, 90 %
                    IDENTIFY: {0x0000: 0},
                    TEMPERATURE: {0x0000: 2150, 0x0001: -4000, 0x0002: 8500},
                    HUMIDITY: {0x0000: 4500, 0x0001: 0, 0x0002: 10000},
                },
                out_clusters=[OTA],
            )
        ],
        **kw,
    )


def smart_plug(n: int, **kw: Any) -> SimDevice:
    kw.setdefault("ota", OtaState(MANUFACTURER_CODE, 0x0201, FIRST_FIRMWARE))
    return SimDevice(
        _ieee(n),
        "plug",
        "AGILE Sim",
        "PLUG-16A",
        [
            SimEndpoint(
                1,
                zha.DeviceType.SMART_PLUG,
                {
                    IDENTIFY: {0x0000: 0},
                    ON_OFF: {0x0000: 1},
                    METERING: {0x0000: 0, 0x0300: 0, 0x0301: 1, 0x0302: 1000},
                    ELECTRICAL: {0x050B: 60, 0x0505: 230, 0x0604: 1, 0x0605: 1},
                },
                out_clusters=[OTA],
            )
        ],
        router=True,
        **kw,
    )


def dimmable_light(n: int, **kw: Any) -> SimDevice:
    return SimDevice(
        _ieee(n),
        "light",
        "AGILE Sim",
        "BULB-E27-DIM",
        [
            SimEndpoint(
                1,
                zha.DeviceType.DIMMABLE_LIGHT,
                {IDENTIFY: {0x0000: 0}, ON_OFF: {0x0000: 0}, LEVEL: {0x0000: 254}},
            )
        ],
        router=True,
        **kw,
    )


def motion_sensor(n: int, **kw: Any) -> SimDevice:
    return SimDevice(
        _ieee(n),
        "motion",
        "AGILE Sim",
        "PIR-1",
        [
            SimEndpoint(
                1,
                zha.DeviceType.OCCUPANCY_SENSOR,
                {POWER: {0x0020: 29, 0x0021: 160}, OCCUPANCY: {0x0000: 0, 0x0001: 0}},
            )
        ],
        **kw,
    )


def contact_sensor(n: int, **kw: Any) -> SimDevice:
    return SimDevice(
        _ieee(n),
        "contact",
        "AGILE Sim",
        "DOOR-1",
        [
            SimEndpoint(
                1,
                zha.DeviceType.IAS_ZONE,
                {
                    POWER: {0x0020: 30, 0x0021: 200},
                    IAS_ZONE: {0x0000: 1, 0x0001: 0x0015, 0x0002: 0},
                },
            )
        ],
        **kw,
    )


KINDS = {
    "climate": climate_sensor,
    "plug": smart_plug,
    "light": dimmable_light,
    "motion": motion_sensor,
    "contact": contact_sensor,
}


def population(
    extra_climate: int = 0,
    report_interval_s: float = 1.0,
    faults: bool = True,
    latency_s: float = 0.0,
) -> list[SimDevice]:
    """The default air: one of each kind, the fault cases, and `extra_climate` sensors."""
    kw = {"report_interval_s": report_interval_s, "latency_s": latency_s}
    devices = [
        climate_sensor(1, **kw),
        smart_plug(2, **kw),
        dimmable_light(3, **kw),
        motion_sensor(4, **kw),
        contact_sensor(5, **kw),
    ]
    if faults:
        devices += [
            # A lossy, slow link: some frames are never acknowledged (zigpy retries).
            climate_sensor(6, report_interval_s=report_interval_s, loss=0.3, latency_s=0.2),
            # Drops off the air for 20 s after every 40 s, then comes back.
            climate_sensor(7, report_interval_s=report_interval_s, dropout=(40.0, 20.0)),
            # Leaves the network 90 s after joining.
            motion_sensor(8, report_interval_s=report_interval_s, leave_after_s=90.0),
        ]
    devices += [
        climate_sensor(0x100 + i, report_interval_s=report_interval_s) for i in range(extra_climate)
    ]
    return devices
