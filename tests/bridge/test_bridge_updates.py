"""Updates in Home Assistant over a real broker (Debian's mosquitto): the bridge as a
device of its own, and a ZigBee device's firmware as an update entity, installable from
Home Assistant only where the admin allowed it."""

import pytest

from services.devicemanager.service import create as create_dm
from services.protocolmanager.service import create as create_pm
from services.zigbee.service import create as create_zigbee
from services.zigbee.sim.devices import FIRST_FIRMWARE
from testkit import ha_discovery
from tests.bridge.mqtt import arrived, publish, start_bridge, until
from tests.helpers import dm, eventually, pm
from tests.zigbee.network import ota_file

PLUG, PLUG_ID = "00:12:4b:00:1c:00:00:02", "zb00124b001c000002"
BASE = "agile/gw1"
FIRMWARE = f"homeassistant/update/gw1/{PLUG_ID}_firmware/config"
STATE = f"{BASE}/$bridge/firmware/{PLUG_ID}"
NEW = FIRST_FIRMWARE + 1


@pytest.fixture
async def zigbee_gateway(services, client):
    await services.start(create_pm(services.config(**{"poll-interval": "0.2"})))
    options = {"report-interval": "0.5", "faults": "0"}
    await services.start(create_zigbee(services.config(**options)))
    await services.start(create_dm(services.config()))
    await pm(client, "StartDiscovery")

    async def plug_found():
        (wire,) = await pm(client, "Devices")
        return next((o for o in wire if o[0] == PLUG), None)

    overview = await eventually(plug_found, timeout=60, interval=0.1)
    await dm(client, "Register", "(ssss)s", overview, "")
    await pm(client, "StopDiscovery")
    return services


def discovered(sub, topic: str) -> dict:  # type: ignore[no-untyped-def]
    """The last config on `topic`, checked as Home Assistant would take it."""
    got = [p for t, p in sub.messages() if t == topic]
    return ha_discovery.check(topic, got[-1].encode()) if got and got[-1] else {}


def state(sub) -> dict:  # type: ignore[no-untyped-def]
    got = arrived(sub, STATE)
    return ha_discovery.UPDATE_STATE(got[-1]) if got else {}


async def test_the_bridge_is_a_device_with_its_connection_version_and_queue(
    zigbee_gateway, broker, subscribe
) -> None:
    sub = subscribe(broker, "agile/#", "homeassistant/#")
    await start_bridge(zigbee_gateway, broker)
    prefix = "homeassistant/{}/gw1/agile-bridge_{}/config"
    connection = await until(
        lambda: discovered(sub, prefix.format("binary_sensor", "connection_state"))
    )
    assert connection["device_class"] == "connectivity"
    assert connection["state_topic"] == f"{BASE}/status"
    for key in ("version", "queue"):
        sensor = await until(lambda key=key: discovered(sub, prefix.format("sensor", key)))
        assert sensor["state_topic"] == f"{BASE}/$bridge/info"
        assert sensor["device"]["identifiers"] == ["agile_gw1_agile-bridge"]
    info = await until(lambda: arrived(sub, f"{BASE}/$bridge/info"))
    assert info[-1]["version"] and info[-1]["queued"] >= 0 and info[-1]["installs"] is False
    # The native runtime has no update service: no service image entities.
    assert not [t for t, _ in sub.messages() if "/update/gw1/agile-bridge_image" in t]


async def test_a_plugs_firmware_is_shown_and_installed_only_where_allowed(
    zigbee_gateway, broker, subscribe
) -> None:
    ota_file(zigbee_gateway.state_dir / "zigbee" / "ota", 0x0201, NEW)
    sub = subscribe(broker, "agile/#", "homeassistant/#")
    bridge = await start_bridge(zigbee_gateway, broker, commands="true")
    entity = await until(lambda: discovered(sub, FIRMWARE))
    assert entity["device_class"] == "firmware" and "command_topic" not in entity
    shown = await until(lambda: state(sub).get("latest_version") == f"0x{NEW:08x}" and state(sub))
    assert shown["installed_version"] == f"0x{FIRST_FIRMWARE:08x}" and not shown["in_progress"]

    # Installs not allowed: an install published anyway is not even received. A write
    # sent after it is (commands are on): once its result is back, the install would
    # have been answered before it, in order.
    publish(broker, f"{STATE}/install", b"install")
    publish(broker, f"{BASE}/{PLUG_ID}/switch/set", b"on")
    await until(lambda: arrived(sub, f"{BASE}/{PLUG_ID}/switch/set/result"))
    assert not arrived(sub, f"{STATE}/install/result")
    assert state(sub)["installed_version"] == f"0x{FIRST_FIRMWARE:08x}"

    await zigbee_gateway.stop(bridge)
    await start_bridge(zigbee_gateway, broker, installs="true")
    entity = await until(
        lambda: "command_topic" in discovered(sub, FIRMWARE) and discovered(sub, FIRMWARE)
    )
    assert entity["command_topic"] == f"{STATE}/install"
    publish(broker, entity["command_topic"], entity["payload_install"].encode())
    result = await until(lambda: arrived(sub, f"{STATE}/install/result"))
    assert result[-1] == {"ok": True}
    await until(lambda: state(sub)["installed_version"] == f"0x{NEW:08x}", timeout=120)
    seen = [ha_discovery.UPDATE_STATE(s) for s in arrived(sub, STATE)]
    assert any(s["in_progress"] for s in seen)  # progress was shown on the way
    assert not state(sub)["in_progress"]
    assert state(sub)["latest_version"] == f"0x{NEW:08x}"
