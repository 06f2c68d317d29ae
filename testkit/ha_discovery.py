"""Home Assistant's MQTT discovery schemas for the platforms the bridge announces, in
voluptuous as Home Assistant writes them (homeassistant/components/mqtt: schemas.py,
sensor.py, binary_sensor.py, switch.py, button.py, update.py), stricter in one way:
a key Home Assistant does not know is refused here (it drops it silently, so a typo
would go unnoticed there)."""

import json
import re
from typing import Any

import voluptuous as vol

_TOPIC_BAD = re.compile(r"[+#\x00]")


def _publish_topic(value: Any) -> str:
    value = vol.Coerce(str)(value)
    if not value or _TOPIC_BAD.search(value) or len(value.encode()) > 65_535:
        raise vol.Invalid(f"not a topic to publish to: {value!r}")
    return str(value)


def _subscribe_topic(value: Any) -> str:
    value = vol.Coerce(str)(value)
    levels = value.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise vol.Invalid(f"'#' only as the whole last level: {value!r}")
        if "+" in level and level != "+":
            raise vol.Invalid(f"'+' only as a whole level: {value!r}")
    if not value or "\x00" in value:
        raise vol.Invalid(f"not a topic: {value!r}")
    return str(value)


def _template(value: Any) -> str:
    if not isinstance(value, str) or value.count("{{") != value.count("}}"):
        raise vol.Invalid(f"not a template: {value!r}")
    return value


_string = vol.All(vol.Coerce(str))
_AVAILABILITY = vol.Schema(
    {
        vol.Required("topic"): _subscribe_topic,
        vol.Optional("payload_available"): _string,
        vol.Optional("payload_not_available"): _string,
        vol.Optional("value_template"): _template,
    }
)
_DEVICE = vol.All(
    vol.Schema(
        {
            vol.Optional("identifiers"): vol.All([_string], vol.Length(min=1)),
            vol.Optional("connections"): [vol.ExactSequence([_string, _string])],
            vol.Optional("name"): _string,
            vol.Optional("manufacturer"): _string,
            vol.Optional("model"): _string,
            vol.Optional("model_id"): _string,
            vol.Optional("sw_version"): _string,
            vol.Optional("hw_version"): _string,
            vol.Optional("serial_number"): _string,
            vol.Optional("suggested_area"): _string,
            vol.Optional("configuration_url"): _string,
            vol.Optional("via_device"): _string,
        }
    ),
    vol.Any(
        vol.Schema({vol.Required("identifiers"): object}, extra=vol.ALLOW_EXTRA),
        vol.Schema({vol.Required("connections"): object}, extra=vol.ALLOW_EXTRA),
    ),
)
_COMMON = {
    vol.Optional("availability"): vol.All([_AVAILABILITY], vol.Length(min=1)),
    vol.Optional("availability_mode"): vol.In(["all", "any", "latest"]),
    vol.Optional("availability_topic"): _subscribe_topic,
    vol.Optional("device"): _DEVICE,
    vol.Optional("enabled_by_default"): bool,
    vol.Optional("entity_category"): vol.In(["config", "diagnostic"]),
    vol.Optional("entity_picture"): _string,
    vol.Optional("icon"): _string,
    vol.Optional("json_attributes_topic"): _subscribe_topic,
    vol.Optional("json_attributes_template"): _template,
    vol.Optional("name"): vol.Any(None, _string),
    vol.Optional("object_id"): _string,
    vol.Optional("default_entity_id"): _string,
    vol.Optional("unique_id"): _string,
    vol.Optional("encoding"): _string,
    vol.Optional("qos"): vol.In([0, 1, 2]),
}
_READ = {vol.Optional("value_template"): _template}
_SENSOR_CLASSES = [
    "apparent_power", "aqi", "atmospheric_pressure", "battery", "carbon_dioxide",
    "carbon_monoxide", "current", "data_rate", "data_size", "date", "distance", "duration",
    "energy", "energy_storage", "enum", "frequency", "gas", "humidity", "illuminance",
    "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
    "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor", "power",
    "precipitation", "precipitation_intensity", "pressure", "reactive_power",
    "signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature",
    "timestamp", "volatile_organic_compounds", "volatile_organic_compounds_parts",
    "voltage", "volume", "volume_storage", "volume_flow_rate", "water", "weight",
    "wind_speed",
]  # fmt: skip
_BINARY_CLASSES = [
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
    "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "update", "vibration", "window",
]  # fmt: skip

SCHEMAS: dict[str, vol.Schema] = {
    "sensor": vol.Schema(
        _COMMON
        | _READ
        | {
            vol.Required("state_topic"): _subscribe_topic,
            vol.Optional("device_class"): vol.In(_SENSOR_CLASSES),
            vol.Optional("state_class"): vol.In(
                ["measurement", "measurement_angle", "total", "total_increasing"]
            ),
            vol.Optional("unit_of_measurement"): _string,
            vol.Optional("suggested_display_precision"): vol.All(int, vol.Range(min=0)),
            vol.Optional("expire_after"): vol.All(int, vol.Range(min=0)),
            vol.Optional("force_update"): bool,
        }
    ),
    "binary_sensor": vol.Schema(
        _COMMON
        | _READ
        | {
            vol.Required("state_topic"): _subscribe_topic,
            vol.Optional("device_class"): vol.In(_BINARY_CLASSES),
            vol.Optional("payload_on"): _string,
            vol.Optional("payload_off"): _string,
            vol.Optional("off_delay"): vol.All(int, vol.Range(min=0)),
            vol.Optional("expire_after"): vol.All(int, vol.Range(min=0)),
            vol.Optional("force_update"): bool,
        }
    ),
    "switch": vol.Schema(
        _COMMON
        | _READ
        | {
            vol.Required("command_topic"): _publish_topic,
            vol.Optional("state_topic"): _subscribe_topic,
            vol.Optional("device_class"): vol.In(["outlet", "switch"]),
            vol.Optional("payload_on"): _string,
            vol.Optional("payload_off"): _string,
            vol.Optional("state_on"): _string,
            vol.Optional("state_off"): _string,
            vol.Optional("optimistic"): bool,
            vol.Optional("retain"): bool,
        }
    ),
    "button": vol.Schema(
        _COMMON
        | {
            vol.Required("command_topic"): _publish_topic,
            vol.Optional("command_template"): _template,
            vol.Optional("device_class"): vol.In(["identify", "restart", "update"]),
            vol.Optional("payload_press"): _string,
            vol.Optional("retain"): bool,
        }
    ),
    "update": vol.Schema(
        _COMMON
        | _READ
        | {
            vol.Optional("state_topic"): _subscribe_topic,
            vol.Optional("command_topic"): _publish_topic,
            vol.Optional("device_class"): vol.In(["firmware"]),
            vol.Optional("display_precision"): vol.All(int, vol.Range(min=0)),
            vol.Optional("latest_version_template"): _template,
            vol.Optional("latest_version_topic"): _subscribe_topic,
            vol.Optional("payload_install"): _string,
            vol.Optional("release_summary"): _string,
            vol.Optional("release_url"): _string,
            vol.Optional("retain"): bool,
            vol.Optional("title"): _string,
        }
    ),
}
# The discovery topic: <prefix>/<component>/[<node_id>/]<object_id>/config
_DISCOVERY_TOPIC = re.compile(
    r"^[^/]+/(?P<component>\w+)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config$"
)
# An update entity's state (update.py's handle_state_message_received).
UPDATE_STATE = vol.Schema(
    {
        vol.Optional("installed_version"): vol.Any(None, _string),
        vol.Optional("latest_version"): vol.Any(None, _string),
        vol.Optional("title"): vol.Any(None, _string),
        vol.Optional("release_summary"): vol.Any(None, vol.All(_string, vol.Length(max=255))),
        vol.Optional("release_url"): vol.Any(None, _string),
        vol.Optional("entity_picture"): vol.Any(None, _string),
        vol.Optional("in_progress"): bool,
        vol.Optional("update_percentage"): vol.Any(
            None, vol.All(vol.Coerce(float), vol.Range(0, 100))
        ),
    }
)


def check(topic: str, payload: bytes) -> dict[str, Any]:
    """The config a discovery message gives, as Home Assistant would take it;
    vol.Invalid (or ValueError) where Home Assistant would not."""
    matched = _DISCOVERY_TOPIC.match(topic)
    if not matched:
        raise ValueError(f"not a discovery topic: {topic}")
    config = json.loads(payload)
    schema = SCHEMAS[matched["component"]]
    checked: dict[str, Any] = schema(config)
    if "availability" in checked and "availability_topic" in checked:
        raise vol.Invalid("availability and availability_topic together")
    return checked
