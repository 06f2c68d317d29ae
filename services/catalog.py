"""The one table of what the gateway runs: every service (how to create it, the bus
names it owns, the image that carries it, which is also its compose service's name,
and its options) and every service image. The runtime, the bus policy, the image
recipes, the CLI and the TUI all read it."""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from services import contract as c
from services.options import Option, boolean, parse_options, seconds_pair
from services.serviceconfig import ServiceConfig


class Runnable(Protocol):
    """A service process: BusService, or a service on another bus (the virtual BlueZ)."""

    bus_names: tuple[str, ...]

    async def run(self) -> int: ...


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    factory: str  # "module:function" taking a ServiceConfig
    bus_names: tuple[str, ...]
    image: str  # the service image that runs it (its compose service is `name`)
    simulated_only: bool = False  # runs only with --simulate (no real hardware behind it)
    system_bus: bool = False  # talks to BlueZ on the system bus (virtual with --simulate)
    options: tuple[Option, ...] = ()
    # The uid its container runs as (compose.yaml's `user:`): its own, so that the bus
    # policy lets it own only its own names. Every service's group is `agile` (GID).
    uid: int = 0

    def create(self, config: ServiceConfig) -> "Runnable":
        module, func = self.factory.split(":")
        return getattr(importlib.import_module(module), func)(config)


CATALOG: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            "protocolmanager",
            "services.protocolmanager.service:create",
            (c.PROTOCOL_MANAGER_NAME,),
            image="core",
            uid=10010,
            options=(
                Option("device-ttl", 60.0, "s a discovered device stays listed unseen", float),
                Option(
                    "fanout-timeout",
                    3.0,
                    "s to wait for each protocol's answer before it shows FAILURE",
                    float,
                ),
                Option("poll-interval", 5.0, "s between asking every protocol its devices", float),
            ),
        ),
        ServiceSpec(
            "devicemanager",
            "services.devicemanager.service:create",
            (c.DEVICE_MANAGER_NAME, c.DEVICE_NAME),
            image="core",
            uid=10011,
            options=(
                Option(
                    "replay-records", 10_000, "records kept per followed stream for replay", int
                ),
                Option("replay-age", 3600.0, "s a record is kept for replay at most", float),
            ),
        ),
        ServiceSpec(
            "storage",
            "services.storage.service:create",
            (c.STORAGE_NAME,),
            image="storage",
            uid=10012,
            options=(
                Option("folder", None, "where streams and policies live (default DIR/storage)"),
                Option("key-file", None, "AES key file (default FOLDER/key)"),
                Option(
                    "flush-interval",
                    1.0,
                    "s between writes of the batch (what a crash loses)",
                    float,
                ),
                Option("retention-check", 60.0, "s between retention sweeps", float),
                Option(
                    "resubscribe-interval",
                    5.0,
                    "s between tries to subscribe to a policy's device not yet registered",
                    float,
                ),
                Option("segment-records", 4096, "records at most per segment file", int),
            ),
        ),
        ServiceSpec(
            "dummy",
            "services.dummy.service:create",
            (c.protocol_bus_name("Dummy"),),
            image="core",
            uid=10013,
            simulated_only=True,
            options=(
                Option("name", "Dummy", "the protocol's short name (bus name suffix)"),
                Option("thermometers", 2, "simulated thermometers", int),
                Option("switches", 1, "simulated switches", int),
                Option("record-interval", 1.0, "s between records of a subscribed stream", float),
                Option(
                    "announce-interval", 1.0, "s between announcements while discovering", float
                ),
                Option("discovery-delay", 0.0, "s StartDiscovery takes (a slow radio)", float),
            ),
        ),
        ServiceSpec(
            "sim-bluez",
            "services.ble.sim.service:create",
            (),
            image="ble",
            uid=10014,
            simulated_only=True,
            system_bus=True,
            options=(
                Option("bus", None, "bus to own org.bluez on (default $DBUS_SYSTEM_BUS_ADDRESS)"),
                Option("devices", 0, "extra environment sensors beside the default five", int),
                Option("fleet", 0, "exactly N environment sensors instead (benchmarks)", int),
                Option("notify-hz", 1.0, "notifications per second of notifying sensors", float),
                Option(
                    "wanderer",
                    (40.0, 20.0),
                    "s in range, s out of range of the wandering sensor",
                    seconds_pair,
                ),
                Option("rssi-jitter", None, "dBm of RSSI noise (default: each device's own)", int),
                Option("advert-interval", 0.5, "s between advertisements", float),
                Option(
                    "temporary-timeout",
                    30.0,
                    "s an unseen temporary device is kept, as BlueZ",
                    float,
                ),
            ),
        ),
        ServiceSpec(
            "ble",
            "services.ble.service:create",
            (c.protocol_bus_name("BLE"),),
            image="ble",
            uid=10015,
            system_bus=True,
            options=(
                Option("adapter", None, "Bluetooth adapter, e.g. hci1 (default: BlueZ's first)"),
                Option("reconnect-max", 30.0, "s at most between reconnection tries", float),
            ),
        ),
        ServiceSpec(
            "zigbee",
            "services.zigbee.service:create",
            (c.protocol_bus_name("ZB"),),
            image="zigbee",
            uid=10016,
            options=(
                Option(
                    "radio",
                    None,
                    "virtual (default with --simulate), znp (default), ezsp, deconz, zigate, xbee",
                    choices=("virtual", "znp", "ezsp", "deconz", "zigate", "xbee"),
                ),
                Option(
                    "port",
                    None,
                    "serial device of the coordinator stick (default /dev/ttyUSB0; the virtual "
                    "radio needs none, and waits for one given, as for a stick plugged in later)",
                ),
                Option("channel", 15, "ZigBee channel of a new network (11-26)", int),
                Option("request-timeout", 10.0, "s before an unanswered request fails", float),
                Option(
                    "backups",
                    10,
                    "network backups kept (taken at formation, on a join or leave, daily, "
                    "before an update); 0: only on request (an SD card spared)",
                    int,
                ),
                Option(
                    "ota-folder",
                    None,
                    "device firmware images (ZigBee OTA files) offered to devices "
                    "(default STATE/zigbee/ota)",
                ),
                Option(
                    "ota-online",
                    False,
                    "also zigpy's online firmware providers (the gateway must reach them)",
                    boolean,
                ),
                Option(
                    "ota-stall",
                    60.0,
                    "s without a block asked for before a firmware update counts as cut off "
                    "(it resumes when the device is heard again)",
                    float,
                ),
                Option("devices", 0, "virtual radio: extra climate sensors", int),
                Option("report-interval", 1.0, "virtual radio: s between reports", float),
                Option(
                    "faults",
                    True,
                    "virtual radio: the lossy, dropping-out and leaving devices",
                    boolean,
                ),
                Option("latency", 0.0, "virtual radio: s per frame of every device", float),
            ),
        ),
        ServiceSpec(
            "mqtt",
            "services.bridge.service:create",
            (c.BRIDGE_NAME,),
            image="core",
            uid=10017,
            options=(
                Option("host", None, "MQTT broker's host (none: nothing is bridged)"),
                Option("port", 1883, "MQTT broker's port", int),
                Option("tls", None, "CA file: TLS to the broker, its certificate checked"),
                Option("username", None, "user name at the broker"),
                Option("password-file", None, "file holding the broker password"),
                Option("base-topic", None, "topics' prefix (default agile/GATEWAY-ID)"),
                Option(
                    "commands",
                    False,
                    "act on .../set and .../command/NAME messages (pair with broker "
                    "authentication and TLS: whoever may publish may write to devices)",
                    boolean,
                ),
                Option(
                    "installs",
                    False,
                    "install updates asked for from Home Assistant's update entities "
                    "(service images, device firmware: signed and offered ones only)",
                    boolean,
                ),
                Option(
                    "images-interval",
                    3600.0,
                    "s between asking the update service what the service images' updates are",
                    float,
                ),
                Option("gateway-id", None, "this gateway's name on the broker (default hostname)"),
                Option("discovery-prefix", "homeassistant", "Home Assistant's discovery prefix"),
                Option("folder", None, "where the queue and policy live (default DIR/mqtt)"),
                Option("queue-max", 1_000_000, "records queued at most; the oldest go first", int),
                Option("refresh-interval", 5.0, "s between reads of the registered devices", float),
                Option("reconnect-max", 30.0, "s at most between tries to reach the broker", float),
            ),
        ),
        ServiceSpec(
            "updater",
            "services.updater.service:create",
            (c.UPDATER_NAME,),
            image="updater",
            options=(
                Option("registry", None, "host:port of the registry (default: the stack's)"),
                Option(
                    "registries",
                    None,
                    "host:port,... a caller may name besides the stack's (others are refused)",
                ),
                Option(
                    "insecure-registries",
                    "loopback",
                    "host:port,... reached over plain HTTP if not HTTPS (loopback: those on "
                    "this host); every other registry's certificate is checked",
                ),
                Option("window", 60.0, "s a new version has to become healthy", float),
                Option(
                    "trust",
                    None,
                    "the trusted root metadata releases are checked with "
                    "(default: STATE_DIR/trusted-root.json)",
                ),
                Option(
                    "allow-unsigned",
                    False,
                    "run images no release key signed (development and the demo only: "
                    "whoever controls the registry or the network then decides what runs)",
                    boolean,
                ),
                Option(
                    "allow-local-builds",
                    False,
                    "an admin may switch a service to an image built on this gateway "
                    "(unsigned: InstallLocal, audited)",
                    boolean,
                ),
                Option("docker", None, "the engine's URL (default $DOCKER_HOST, else its socket)"),
                Option(
                    "link",
                    0.0,
                    "Mbit/s of the link, to predict update times (0: measured from updates)",
                    float,
                ),
                Option(
                    "journal",
                    None,
                    "file saying where an update is, to finish one cut off "
                    "(default: STATE_DIR/update-journal.json)",
                ),
            ),
        ),
    )
}


@dataclass(frozen=True)
class ImageSpec:
    name: str
    about: str
    extras: tuple[str, ...] = ()  # the project's optional dependencies it needs

    @property
    def services(self) -> list[ServiceSpec]:
        """What runs on it in a stack with real radios (the simulated stack adds its
        simulators)."""
        return [s for s in CATALOG.values() if s.image == self.name and not s.simulated_only]


# In the stack's start order: the bus first.
IMAGES: dict[str, ImageSpec] = {
    i.name: i
    for i in (
        ImageSpec("bus", "dbus-daemon, the stack's bus"),  # no Python: its own Dockerfile
        # AGILE_SERVICE picks one; the MQTT bridge too (aiomqtt is small, pure Python).
        ImageSpec("core", "protocol manager, device manager, MQTT bridge", ("mqtt",)),
        ImageSpec("storage", "time-series storage"),
        ImageSpec("ble", "BLE adapter", ("ble",)),
        ImageSpec("zigbee", "ZigBee adapter", ("zigbee",)),
        # The one container with the engine socket and a network (see compose.yaml).
        ImageSpec("updater", "update service", ("updater",)),
    )
}


def options_of(service: str, raw: Mapping[str, str]) -> dict[str, Any]:
    """A service's options, typed and complete (OptionError names the valid ones)."""
    return parse_options(service, CATALOG[service].options, raw)


def services_for(simulate: bool) -> list[ServiceSpec]:
    """The services of a native gateway, in start order."""
    return [s for s in CATALOG.values() if simulate or not s.simulated_only]


def options_table() -> str:
    """Every option of every service as a Markdown table (README's, checked by a test)."""
    rows = ["| option | type | default | what it does |", "|---|---|---|---|"]
    for spec in CATALOG.values():
        for o in spec.options:
            default = "" if o.default is None else _shown(o.default)
            rows.append(f"| `{spec.name}:{o.name}` | {o.kind_name} | {default} | {o.help} |")
    return "\n".join(rows) + "\n"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, tuple):
        text = ",".join(f"{v:g}" for v in value)
    else:
        text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"`{text}`"
