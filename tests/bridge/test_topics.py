"""Topics, payloads and requests of the bridge; Home Assistant discovery configs."""

import json

import pytest

from services import contract as c
from services.bridge import topics
from services.bridge.discovery import Device, bridge_configs, configs
from testkit import ha_discovery

BASE = "agile/gw"


def test_numeric_records_are_json_numbers_and_others_strings() -> None:
    def payload(value: str, fmt: str) -> object:
        record = c.RecordObject("dev1", "x", value, "°C", fmt, 1_700_000_000_000)
        return json.loads(topics.record_payload(record))["value"]

    assert payload("21.5", "float") == 21.5
    assert payload("7", "integer") == 7
    assert payload("on", "string") == "on"
    assert payload("nan", "float") == "nan"  # JSON has no NaN: kept as the text it was
    assert payload("garbage", "float") == "garbage"


@pytest.mark.parametrize(
    "payload, value",
    [
        (b"on", "on"),
        (b'{"value": "off"}', "off"),
        (b"true", "true"),
        (b'{"value": true}', "on"),
        (b'{"value": 42}', "42"),
        (b"25", "25"),
    ],
)
def test_a_set_takes_a_plain_value_or_a_json_one(payload: bytes, value: str) -> None:
    request = topics.parse_request(BASE, f"{BASE}/dev1/state/set", payload)
    assert (request.device_id, request.kind, request.name, request.value) == (
        "dev1",
        "set",
        "state",
        value,
    )
    assert request.reply_topic(BASE) == f"{BASE}/dev1/state/set/result"


@pytest.mark.parametrize("payload", [b"", b"\xff", b'{"value": [1]}', b"{not json", b'{"v": 1}'])
def test_a_set_with_nothing_to_write_is_a_bad_request_with_its_reply_topic(payload: bytes) -> None:
    with pytest.raises(topics.BadRequest) as caught:
        topics.parse_request(BASE, f"{BASE}/dev1/state/set", payload)
    assert caught.value.reply == f"{BASE}/dev1/state/set/result"


def test_a_command_topic_is_an_execute() -> None:
    request = topics.parse_request(BASE, f"{BASE}/dev1/command/on", b"anything")
    assert (request.kind, request.name) == ("command", "on")
    assert request.reply_topic(BASE) == f"{BASE}/dev1/command/on/result"
    with pytest.raises(ValueError, match="not a request"):
        topics.parse_request(BASE, f"{BASE}/dev1/x/y/set", b"on")


def test_discovery_gives_sensors_with_classes_a_switch_with_its_state_and_buttons() -> None:
    plug = Device(
        "zigbee0011",
        "Plug",
        "zigbee-smart-plug",
        {"state": "", "power": "W", "energy": "kWh", "battery": "%"},
        writable=("switch",),
        commands=("on", "off"),
    )
    out = {t: json.loads(p) for t, p in configs("homeassistant", BASE, "gw", plug).items()}
    power = out["homeassistant/sensor/gw/zigbee0011_power/config"]
    assert power["device_class"] == "power" and power["unit_of_measurement"] == "W"
    assert out["homeassistant/sensor/gw/zigbee0011_energy/config"]["state_class"] == (
        "total_increasing"
    )
    assert out["homeassistant/sensor/gw/zigbee0011_battery/config"]["device_class"] == "battery"
    switch = out["homeassistant/switch/gw/zigbee0011_switch/config"]
    assert switch["command_topic"] == f"{BASE}/zigbee0011/switch/set"
    assert switch["state_topic"] == f"{BASE}/zigbee0011/state"
    assert {t for t in out if "/button/" in t} == {
        "homeassistant/button/gw/zigbee0011_command_on/config",
        "homeassistant/button/gw/zigbee0011_command_off/config",
    }
    ids = [body["unique_id"] for body in out.values()]
    assert len(ids) == len(set(ids))
    assert all(body["availability_mode"] == "all" for body in out.values())


PLUG = Device(
    "zigbee0011",
    "Plug",
    "zigbee-smart-plug",
    {"state": "", "power": "W", "energy": "kWh"},
    writable=("switch",),
    commands=("on",),
    firmware=True,
)


@pytest.mark.parametrize("installs", [False, True])
def test_every_discovery_config_passes_home_assistants_schema(installs: bool) -> None:
    out = configs("homeassistant", BASE, "gw", PLUG, installs) | bridge_configs(
        "homeassistant", BASE, "gw", ("core", "storage"), installs
    )
    checked = {topic: ha_discovery.check(topic, payload) for topic, payload in out.items()}
    updates = {t: body for t, body in checked.items() if "/update/" in t}
    assert set(updates) == {
        "homeassistant/update/gw/zigbee0011_firmware/config",
        "homeassistant/update/gw/agile-bridge_image_core/config",
        "homeassistant/update/gw/agile-bridge_image_storage/config",
    }
    # Installable from Home Assistant only where the admin allowed it.
    assert all(("command_topic" in body) == installs for body in updates.values())
    firmware = updates["homeassistant/update/gw/zigbee0011_firmware/config"]
    assert firmware["device_class"] == "firmware"
    assert firmware["state_topic"] == f"{BASE}/$bridge/firmware/zigbee0011"
    assert firmware["device"]["via_device"] == "agile_gw_agile-bridge"
    connection = checked["homeassistant/binary_sensor/gw/agile-bridge_connection_state/config"]
    assert connection["state_topic"] == f"{BASE}/status" and "availability" not in connection
    ids = [body["unique_id"] for body in checked.values()]
    assert len(ids) == len(set(ids))


def test_the_schema_refuses_what_home_assistant_would_not_take() -> None:
    import voluptuous as vol

    good = json.loads(
        configs("homeassistant", BASE, "gw", PLUG)[
            "homeassistant/sensor/gw/zigbee0011_power/config"
        ]
    )
    topic = "homeassistant/sensor/gw/zigbee0011_power/config"
    for bad in (
        {k: v for k, v in good.items() if k != "state_topic"},  # required
        good | {"state_topic": f"{BASE}/#/power"},  # not a subscription
        good | {"device_class": "wattage"},
        good | {"availabilty": []},  # a typo Home Assistant would drop unseen
        good | {"device": {"name": "no identifiers"}},
    ):
        with pytest.raises(vol.Invalid):
            ha_discovery.check(topic, json.dumps(bad).encode())


def test_an_update_state_says_progress_and_is_up_to_date_without_a_newer_one() -> None:
    idle = json.loads(topics.update_payload("1.0", "", "AGILE core image"))
    assert idle["latest_version"] == idle["installed_version"] == "1.0"
    assert idle["in_progress"] is False and idle["update_percentage"] is None
    running = json.loads(topics.update_payload("1.0", "1.1", "t", "9 B", 0.426))
    assert running["in_progress"] is True and running["update_percentage"] == 43
    for state in (idle, running):
        ha_discovery.UPDATE_STATE(state)


def test_install_topics_name_a_service_image_or_a_device() -> None:
    image = topics.parse_install(BASE, f"{BASE}/$bridge/images/storage/install")
    assert image == topics.Install("images", "storage")
    assert image.reply_topic(BASE) == f"{BASE}/$bridge/images/storage/install/result"
    assert topics.parse_install(BASE, f"{BASE}/$bridge/firmware/zb01/install") == (
        topics.Install("firmware", "zb01")
    )
    for other in (f"{BASE}/$bridge/info/x/install", f"{BASE}/zb01/firmware/install", "x/y/z"):
        assert topics.parse_install(BASE, other) is None
