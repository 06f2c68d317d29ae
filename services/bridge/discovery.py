"""Home Assistant MQTT discovery: the config messages that make each bridged device
appear in Home Assistant with its sensors, a switch per writable on/off component, a
button per command and, where its firmware can be updated, an update entity; and the
bridge itself as a device, with its connection, version, queue and an update entity per
gateway service image (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery).
An empty retained config removes an entity, which is how an unbridged device leaves."""

import json
import re
from dataclasses import dataclass, field

from services.bridge import topics
from services.bridge.topics import availability_topic

# (component id, unit) -> Home Assistant device class; the unit alone where it says it.
_BY_UNIT = {
    "°C": "temperature",
    "hPa": "pressure",
    "W": "power",
    "V": "voltage",
    "kWh": "energy",
    "lux": "illuminance",
}
_BY_COMPONENT = {"humidity": "humidity", "battery": "battery", "level": None}
_ON_OFF = ("state", "switch")


@dataclass(frozen=True)
class Device:
    """What the bridge knows of a registered device (its Definition and Configuration)."""

    device_id: str
    name: str
    device_type: str
    components: dict[str, str]  # subscribable component -> unit
    writable: tuple[str, ...] = ()
    commands: tuple[str, ...] = field(default_factory=tuple)
    firmware: bool = False  # its radio updates its firmware (an update entity)


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


class _Entities:
    """The config messages of one Home Assistant device's entities."""

    def __init__(
        self, prefix: str, node: str, key: str, about: dict[str, object], available: list[str]
    ) -> None:
        self.prefix, self.node, self.key = prefix, _slug(node), key
        self.about = {"identifiers": [f"agile_{self.node}_{key}"]} | about
        self.available = available
        self.out: dict[str, bytes] = {}

    def add(
        self, kind: str, name: str, body: dict[str, object], available: list[str] | None = None
    ) -> None:
        """`available`: the topics that must say online (default: the device's)."""
        object_id = _slug(f"{self.key}_{name}")
        body |= {
            "unique_id": f"agile_{self.node}_{object_id}",
            "object_id": object_id,
            "device": self.about,
        }
        available = self.available if available is None else available
        if available:
            body |= {
                "availability": [{"topic": t} for t in available],
                "availability_mode": "all",
            }
        topic = f"{self.prefix}/{kind}/{self.node}/{object_id}/config"
        self.out[topic] = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _update(state_topic: str, command_topic: str, body: dict[str, object]) -> dict[str, object]:
    """An update entity reading `topics.update_payload` JSON; installable from Home
    Assistant only with a command topic (the admin's mqtt:installs)."""
    body |= {
        "state_topic": state_topic,
        "value_template": "{{ value_json.installed_version }}",
        "latest_version_topic": state_topic,
        "latest_version_template": "{{ value_json.latest_version }}",
        "entity_category": "config",
    }
    if command_topic:
        body |= {"command_topic": command_topic, "payload_install": topics.INSTALL}
    return body


# The bridge's key in ids and topics: with a "-", which no device id has ([A-Za-z0-9_]),
# so that no device's entities can take the bridge's ids.
BRIDGE_KEY = "agile-bridge"


def bridge_configs(
    prefix: str, base: str, node: str, images: tuple[str, ...], installs: bool
) -> dict[str, bytes]:
    """topic -> retained config payload, for the bridge's own device: its connection to
    the broker (the will says offline), its version and queue, and an update entity per
    gateway service image."""
    bridge = _Entities(
        prefix,
        node,
        BRIDGE_KEY,
        {"name": f"AGILE gateway {node}", "model": "MQTT bridge", "manufacturer": "AGILE gateway"},
        [],
    )
    bridge.add(
        "binary_sensor",
        "connection_state",
        {
            "name": "Connection state",
            "state_topic": availability_topic(base),
            "payload_on": "online",
            "payload_off": "offline",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
        },
    )
    info = topics.bridge_info_topic(base)
    online = [availability_topic(base)]
    sensors: dict[str, dict[str, object]] = {
        "version": {"name": "Version", "value_template": "{{ value_json.version }}"},
        "queue": {
            "name": "Queue",
            "value_template": "{{ value_json.queued }}",
            "unit_of_measurement": "records",
            "state_class": "measurement",
        },
    }
    for key, body in sensors.items():
        bridge.add(
            "sensor", key, body | {"state_topic": info, "entity_category": "diagnostic"}, online
        )
    for service in images:
        state = topics.image_topic(base, service)
        command = f"{state}/install" if installs else ""
        bridge.add(
            "update",
            f"image_{service}",
            _update(state, command, {"name": f"{service} image"}),
            online,
        )
    return bridge.out


def configs(
    prefix: str, base: str, node: str, device: Device, installs: bool = False
) -> dict[str, bytes]:
    """topic -> retained config payload, for every entity of `device`."""
    entities = _Entities(
        prefix,
        node,
        device.device_id,
        {
            "name": device.name or device.device_id,
            "model": device.device_type,
            "manufacturer": "AGILE gateway",
            "via_device": f"agile_{_slug(node)}_{BRIDGE_KEY}",
        },
        [availability_topic(base), availability_topic(base, device.device_id)],
    )
    entity = entities.add

    for component, unit in device.components.items():
        if component in _ON_OFF:
            continue  # shown by the switch, or as the binary state below
        body: dict[str, object] = {
            "name": component.replace("-", " ").capitalize(),
            "state_topic": f"{base}/{device.device_id}/{component}",
            "value_template": "{{ value_json.value }}",
        }
        device_class = _BY_COMPONENT.get(component, _BY_UNIT.get(unit))
        if device_class:
            body["device_class"] = device_class
        if unit:
            body["unit_of_measurement"] = unit
            body["state_class"] = "total_increasing" if device_class == "energy" else "measurement"
        entity("sensor", component, body)
    state = next((s for s in _ON_OFF if s in device.components), None)
    switches = [w for w in device.writable if w in _ON_OFF]
    for component in switches:
        body = {
            "name": None,  # the device's own name: its one switch
            "command_topic": f"{base}/{device.device_id}/{component}/set",
            "payload_on": "on",
            "payload_off": "off",
        }
        if state:
            body |= {
                "state_topic": f"{base}/{device.device_id}/{state}",
                "value_template": "{{ value_json.value }}",
                "state_on": "on",
                "state_off": "off",
            }
        else:
            body["optimistic"] = True
        entity("switch", component, body)
    if state and not switches:
        entity(
            "binary_sensor",
            state,
            {
                "name": "State",
                "state_topic": f"{base}/{device.device_id}/{state}",
                "value_template": "{{ value_json.value }}",
                "payload_on": "on",
                "payload_off": "off",
            },
        )
    for command in device.commands:
        entity(
            "button",
            f"command_{command}",
            {
                "name": command.replace("-", " ").capitalize(),
                "command_topic": f"{base}/{device.device_id}/command/{command}",
                "payload_press": "",
            },
        )
    if device.firmware:
        state = topics.firmware_topic(base, device.device_id)
        entity(
            "update",
            "firmware",
            _update(
                state,
                f"{state}/install" if installs else "",
                {"name": "Firmware", "device_class": "firmware"},
            ),
        )
    return entities.out
