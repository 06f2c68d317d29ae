"""Home Assistant MQTT discovery: the config messages that make each bridged device
appear in Home Assistant with its sensors, a switch per writable on/off component and a
button per command (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery).
An empty retained config removes an entity, which is how an unbridged device leaves."""

import json
import re
from dataclasses import dataclass, field

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


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


def configs(prefix: str, base: str, node: str, device: Device) -> dict[str, bytes]:
    """topic -> retained config payload, for every entity of `device`."""
    node = _slug(node)
    about = {
        "identifiers": [f"agile_{node}_{device.device_id}"],
        "name": device.name or device.device_id,
        "model": device.device_type,
        "manufacturer": "AGILE gateway",
    }
    available = [
        {"topic": availability_topic(base)},
        {"topic": availability_topic(base, device.device_id)},
    ]
    out: dict[str, bytes] = {}

    def entity(kind: str, key: str, body: dict[str, object]) -> None:
        object_id = _slug(f"{device.device_id}_{key}")
        body |= {
            "unique_id": f"agile_{node}_{object_id}",
            "object_id": object_id,
            "device": about,
            "availability": available,
            "availability_mode": "all",
        }
        topic = f"{prefix}/{kind}/{node}/{object_id}/config"
        out[topic] = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

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
    return out
