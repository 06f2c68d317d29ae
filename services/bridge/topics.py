"""MQTT topics and payloads of the bridge, the conventions Zigbee2MQTT users know:

BASE/status                        online | offline (retained; offline is the will)
BASE/DEVICE/availability           online | offline (retained)
BASE/DEVICE/COMPONENT              {"value", "unit", "ts"} per record (QoS 1, retained)
BASE/DEVICE/COMPONENT/set          write: a plain value, or {"value": ...}
BASE/DEVICE/command/NAME           execute (any payload)
... /set/result, .../NAME/result   {"ok": true} or {"ok": false, "error", "message"}
BASE/$bridge/info                  {"version", "queued", ...} (retained)
BASE/$bridge/images/SERVICE        a service image's update state (retained, below)
BASE/$bridge/firmware/DEVICE       a device's firmware update state (retained, below)
... /install                       install the update (with mqtt:installs only)
... /install/result                as a /set's result

An update state is Home Assistant's: {"installed_version", "latest_version", "title",
"release_summary", "in_progress", "update_percentage"}. "$bridge" is a level no device
id can be ([A-Za-z0-9_]): no device's records can land on the bridge's topics.
"""

import json
import math
from dataclasses import dataclass

from services import contract as c
from services.errors import AgileError

TOPIC_MAX = 65_535  # UTF-8 bytes: MQTT's own limit
BRIDGE = "$bridge"
INSTALL = "install"


def topic_problem(topic: str) -> str:
    """Why `topic` cannot be published to ("" if it can): what MQTT and paho refuse."""
    if not topic:
        return "an empty topic"
    if any(ch in topic for ch in "+#\x00"):
        return f"a wildcard or NUL in the topic {c.cut(topic)!r}"
    try:
        size = len(topic.encode())
    except UnicodeEncodeError:
        return "the topic is not UTF-8"
    if size > TOPIC_MAX:
        return f"the topic has {size:,} bytes (MQTT allows {TOPIC_MAX:,})"
    return ""


def record_topic(base: str, record: c.RecordObject) -> str:
    return f"{base}/{record.device_id}/{record.component_id}"


def record_payload(record: c.RecordObject) -> bytes:
    """JSON numbers for numeric formats (when the value is one), strings otherwise."""
    value: float | int | str = record.value
    if record.format in ("float", "integer"):
        try:
            number = float(record.value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                value = int(number) if record.format == "integer" else number
    return json.dumps(
        {"value": value, "unit": record.unit, "ts": record.last_update}, separators=(",", ":")
    ).encode()


def availability_topic(base: str, device_id: str = "") -> str:
    return f"{base}/{device_id}/availability" if device_id else f"{base}/status"


def bridge_info_topic(base: str) -> str:
    return f"{base}/{BRIDGE}/info"


def image_topic(base: str, service: str) -> str:
    return f"{base}/{BRIDGE}/images/{service}"


def firmware_topic(base: str, device_id: str) -> str:
    return f"{base}/{BRIDGE}/firmware/{device_id}"


def update_payload(
    installed: str,
    latest: str,
    title: str,
    summary: str = "",
    progress: float | None = None,
) -> bytes:
    """An update entity's state; `progress` 0..1 while an update runs, None otherwise.
    With nothing newer, latest is what is installed (Home Assistant: up to date)."""
    body: dict[str, object] = {
        "installed_version": installed or None,
        "latest_version": latest or installed or None,
        "title": title,
        "release_summary": summary or None,
        "in_progress": progress is not None,
        "update_percentage": None if progress is None else round(100 * progress),
    }
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Install:
    """An install asked for from the broker: of a service image or a device's firmware."""

    kind: str  # "images" | "firmware"
    name: str  # the service, or the device id

    def reply_topic(self, base: str) -> str:
        return f"{base}/{BRIDGE}/{self.kind}/{self.name}/{INSTALL}/result"


def install_subscription(base: str) -> str:
    return f"{base}/{BRIDGE}/+/+/{INSTALL}"


def parse_install(base: str, topic: str) -> Install | None:
    """The install a message on `install_subscription` asks for (None: not one)."""
    prefix = f"{base}/{BRIDGE}/"
    rest = topic.removeprefix(prefix).split("/")
    if (
        not topic.startswith(prefix)
        or len(rest) != 3
        or rest[0] not in ("images", "firmware")
        or rest[2] != INSTALL
    ):
        return None
    return Install(rest[0], rest[1])


@dataclass(frozen=True)
class Request:
    """A message from the broker asking the gateway to do something."""

    device_id: str
    kind: str  # "set" | "command"
    name: str  # the component written, or the command executed
    value: str  # what is written ("" for a command)

    def reply_topic(self, base: str) -> str:
        if self.kind == "set":
            return f"{base}/{self.device_id}/{self.name}/set/result"
        return f"{base}/{self.device_id}/command/{self.name}/result"


class BadRequest(AgileError, ValueError):
    """A message on a request topic that cannot be done; said on the reply topic."""

    def __init__(self, text: str, reply: str) -> None:
        super().__init__(text)
        self.reply = reply


def subscriptions(base: str) -> list[str]:
    return [f"{base}/+/+/set", f"{base}/+/command/+"]


def parse_request(base: str, topic: str, payload: bytes) -> Request:
    """The request a message on one of `subscriptions` makes; BadRequest (with the
    topic to answer on) for a payload that says nothing writable."""
    rest = topic.removeprefix(base + "/").split("/")
    if len(rest) != 3 or not topic.startswith(base + "/"):
        raise ValueError(f"not a request topic: {topic}")
    device_id, middle, last = rest
    if middle == "command":
        return Request(device_id, "command", last, "")
    request = Request(device_id, "set", middle, "")
    reply = request.reply_topic(base)
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        raise BadRequest("the payload is not UTF-8 text", reply) from None
    value: object = text
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text).get("value")
        except (ValueError, AttributeError):
            raise BadRequest('the payload is neither a value nor {"value": ...}', reply) from None
    if isinstance(value, bool):
        value = "on" if value else "off"
    if not isinstance(value, str | int | float) or value == "":
        raise BadRequest(f"no value to write in {text[:80]!r}", reply)
    return Request(device_id, "set", middle, str(value))


def reply_payload(error: str = "", message: str = "") -> bytes:
    body = {"ok": not error} | ({"error": error, "message": message} if error else {})
    return json.dumps(body, separators=(",", ":")).encode()
