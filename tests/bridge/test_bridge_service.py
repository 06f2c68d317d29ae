"""The MQTT bridge on a real bus and a real broker (Debian's mosquitto), checked with
mosquitto_sub and mosquitto_pub as independent clients."""

import json
import time

import pytest
from dbus_fast import DBusError, Message

from services import contract as c
from services.bridge.spool import Spool
from services.bus import call, listen
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.protocolmanager.service import create as create_pm
from testkit import ha_discovery
from testkit.broker import running_broker
from tests.bridge.mqtt import arrived, publish, start_bridge, until
from tests.helpers import SWITCH, THERMOMETER, device, dm, eventually, pm

THERMO = THERMOMETER.device_id
SWITCH_ID = SWITCH.device_id
PLUG, PLUG_ID = "00:12:4b:00:1c:00:00:02", "zb00124b001c000002"  # the simulated ZigBee plug
BASE = "agile/gw1"


async def bridge(bus, member: str, signature: str = "", *body):  # type: ignore[no-untyped-def]
    return await call(bus, c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, member, signature, body)


@pytest.fixture
async def gateway(services):
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config(**{"record-interval": "0.01"})))
    await services.start(create_dm(services.config()))
    return services


async def register(client, *overviews: c.DeviceOverview) -> None:
    for overview in overviews:
        await dm(client, "Register", "(ssss)s", overview.to_wire(), "")


async def test_records_arrive_under_their_topics_with_discovery_and_availability(
    gateway, client, broker, subscribe
) -> None:
    sub = subscribe(broker, "agile/#", "homeassistant/#")
    await register(client, THERMOMETER, SWITCH)
    await start_bridge(gateway, broker, commands="true")
    temperature = await until(lambda: arrived(sub, f"{BASE}/{THERMO}/temperature")[3:])
    assert {r["unit"] for r in temperature} == {"°C"}
    assert all(isinstance(r["value"], float) and 18 <= r["value"] <= 25 for r in temperature)
    times = [r["ts"] for r in temperature]
    assert times == sorted(times)
    assert ("agile/gw1/status", "online") in sub.messages()
    await until(lambda: (f"{BASE}/{THERMO}/availability", "online") in sub.messages())

    sensor = arrived(sub, f"homeassistant/sensor/gw1/{THERMO}_temperature/config")[-1]
    assert sensor["device_class"] == "temperature" and sensor["unit_of_measurement"] == "°C"
    assert sensor["state_topic"] == f"{BASE}/{THERMO}/temperature"
    assert sensor["device"]["name"] == THERMOMETER.name
    humidity = arrived(sub, f"homeassistant/sensor/gw1/{THERMO}_humidity/config")[-1]
    assert humidity["device_class"] == "humidity"
    switch = arrived(sub, f"homeassistant/switch/gw1/{SWITCH_ID}_state/config")[-1]
    assert switch["command_topic"] == f"{BASE}/{SWITCH_ID}/state/set"
    assert switch["state_topic"] == f"{BASE}/{SWITCH_ID}/state"
    buttons = {
        t.split("/")[3] for t, _ in sub.messages() if t.startswith("homeassistant/button/gw1/")
    }
    assert buttons == {f"{SWITCH_ID}_command_on", f"{SWITCH_ID}_command_off"}
    (status,) = await bridge(client, "Status")
    assert status["connected"].value and status["published"].value >= 3
    for topic, payload in sub.messages():  # every config as Home Assistant takes it
        if topic.startswith("homeassistant/") and payload:
            ha_discovery.check(topic, payload.encode())


async def test_commands_from_the_broker_are_off_unless_asked_for(
    gateway, client, broker, subscribe
) -> None:
    """Whoever may publish to the broker could otherwise write to every device."""
    sub = subscribe(broker, "homeassistant/#")
    await register(client, SWITCH)
    await start_bridge(gateway, broker)
    topic = f"homeassistant/binary_sensor/gw1/{SWITCH_ID}_state/config"
    state = await until(lambda: arrived(sub, topic))
    assert "command_topic" not in state[-1]  # shown, not switched
    assert not [t for t, _ in sub.messages() if "/switch/" in t or "/button/" in t]
    (status,) = await bridge(client, "Status")
    assert status["commands"].value is False


async def test_set_and_command_topics_switch_the_dummy_switch_and_say_the_result(
    gateway, client, broker, subscribe
) -> None:
    sub = subscribe(broker, "agile/#")
    await register(client, SWITCH)
    await start_bridge(gateway, broker, commands="true")
    state = f"{BASE}/{SWITCH_ID}/state"
    await until(lambda: arrived(sub, state))  # subscribed, so writes are seen as records

    publish(broker, f"{state}/set", b"on")
    await until(lambda: any(r["value"] == "on" for r in arrived(sub, state)))
    assert arrived(sub, f"{state}/set/result")[-1] == {"ok": True}
    publish(broker, f"{BASE}/{SWITCH_ID}/command/off", b"")
    await until(lambda: arrived(sub, state)[-1]["value"] == "off")
    assert arrived(sub, f"{BASE}/{SWITCH_ID}/command/off/result") == [{"ok": True}]
    publish(broker, f"{state}/set", b'{"value": true}')
    await until(lambda: arrived(sub, state)[-1]["value"] == "on")

    # Bad requests: an error on the reply topic, and the bridge goes on.
    publish(broker, f"{state}/set", b"\xff\xfe")
    publish(broker, f"{state}/set", b'{"value": [1, 2]}')
    publish(broker, f"{BASE}/{SWITCH_ID}/command/explode", b"")
    publish(broker, f"{BASE}/nosuchdevice/state/set", b"on")

    def failed() -> list[dict]:
        answers = [e for e in arrived(sub, f"{state}/set/result") if not e["ok"]]
        return answers if len(answers) >= 2 else []

    assert [e["error"] for e in await until(failed)] == ["BadRequest", "BadRequest"]
    (explode,) = await until(lambda: arrived(sub, f"{BASE}/{SWITCH_ID}/command/explode/result"))
    assert explode["ok"] is False and "explode" in explode["message"]
    (unknown,) = await until(lambda: arrived(sub, f"{BASE}/nosuchdevice/state/set/result"))
    assert unknown["ok"] is False and unknown["error"]
    publish(broker, f"{state}/set", b"off")
    await until(lambda: arrived(sub, state)[-1]["value"] == "off")


async def test_home_assistants_switch_turns_the_simulated_zigbee_plug(
    services, client, broker, subscribe
) -> None:
    """The switch entity discovery announces for the plug, driven as Home Assistant
    drives it: its command topic turns the plug (zigpy, simulated radio), its state
    topic follows."""
    from services.zigbee.service import create as create_zigbee

    await services.start(create_pm(services.config(**{"poll-interval": "0.2"})))
    await services.start(create_zigbee(services.config(**{"report-interval": "0.2"})))
    await services.start(create_dm(services.config()))
    await pm(client, "StartDiscovery")

    async def plug() -> c.DeviceOverview | None:
        (wire,) = await pm(client, "Devices")
        return next((o for o in map(c.DeviceOverview.from_wire, wire) if o.id == PLUG), None)

    await register(client, await eventually(plug, timeout=60))
    sub = subscribe(broker, "agile/#", "homeassistant/#")
    await start_bridge(services, broker, commands="true")
    # Sent again whenever the plug's availability changes: the last one holds.
    config = (
        await until(lambda: arrived(sub, f"homeassistant/switch/gw1/{PLUG_ID}_switch/config"))
    )[-1]
    state = config["state_topic"]
    await until(lambda: arrived(sub, state) and arrived(sub, state)[-1]["value"] == "on")

    publish(broker, config["command_topic"], config["payload_off"].encode())
    await until(lambda: arrived(sub, state)[-1]["value"] == "off")
    assert arrived(sub, f"{config['command_topic']}/result")[-1] == {"ok": True}
    (read,) = await device(client, PLUG_ID, "Read", "s", "state")
    assert c.RecordObject.from_wire(read).value == "off"  # the plug itself, asked anew
    publish(broker, f"{BASE}/{PLUG_ID}/command/toggle", b"")
    await until(lambda: arrived(sub, state)[-1]["value"] == "on")


@pytest.mark.parametrize("tls, password", [(True, False), (False, True)], ids=["tls", "password"])
async def test_tls_with_a_checked_certificate_and_a_password_file_work(
    gateway, client, tmp_path, tls, password, subscribe
) -> None:
    with running_broker(tmp_path / "secure", tls=tls, password=password) as secure:
        sub = subscribe(secure, "agile/#")
        await register(client, THERMOMETER)
        await start_bridge(gateway, secure)
        await until(lambda: arrived(sub, f"{BASE}/{THERMO}/temperature"))


async def test_a_wrong_password_is_said_and_nothing_is_lost(gateway, client, tmp_path) -> None:
    with running_broker(tmp_path / "secure", password=True) as secure:
        await register(client, THERMOMETER)
        wrong = tmp_path / "wrong"
        wrong.write_text("not the password\n")
        service = await start_bridge(gateway, secure, **{"password-file": str(wrong)})
        await until(lambda: "authori" in service.error.lower() or "not auth" in service.error)
        (status,) = await bridge(client, "Status")
        assert not status["connected"].value
        assert (await until(lambda: service.spool.length > 10)) is True


async def test_switching_a_device_off_withdraws_it_and_is_kept(
    gateway, client, broker, subscribe
) -> None:
    sub = subscribe(broker, "agile/#", "homeassistant/#")
    await register(client, THERMOMETER)
    service = await start_bridge(gateway, broker)
    config = f"homeassistant/sensor/gw1/{THERMO}_temperature/config"
    await until(lambda: arrived(sub, config))
    await bridge(client, "SetBridged", "sb", THERMO, False)
    await until(lambda: arrived(sub, config)[-1] == {})  # an empty config removes it
    (bridged,) = await bridge(client, "Bridged")
    assert bridged == {THERMO: False}
    count = len(arrived(sub, f"{BASE}/{THERMO}/temperature"))
    published = service.published
    await until(lambda: service.published == published)  # nothing more for that device
    assert len(arrived(sub, f"{BASE}/{THERMO}/temperature")) <= count + 5  # in flight

    await gateway.stop(service)
    service = await start_bridge(gateway, broker)
    (bridged,) = await bridge(client, "Bridged")
    assert bridged == {THERMO: False}
    await bridge(client, "SetBridged", "sb", THERMO, True)
    await until(lambda: arrived(sub, config)[-1] != {})


async def test_switching_one_stream_off_keeps_the_rest_of_its_device_and_is_kept(
    gateway, client, broker, subscribe
) -> None:
    sub = subscribe(broker, "agile/#", "homeassistant/#")
    await register(client, THERMOMETER)
    service = await start_bridge(gateway, broker)
    temperature = f"homeassistant/sensor/gw1/{THERMO}_temperature/config"
    humidity = f"homeassistant/sensor/gw1/{THERMO}_humidity/config"
    await until(lambda: arrived(sub, temperature) and arrived(sub, f"{BASE}/{THERMO}/humidity"))
    await bridge(client, "SetStreamBridged", "ssb", THERMO, "temperature", False)
    await until(lambda: arrived(sub, temperature)[-1] == {})  # its entity leaves
    await until(lambda: arrived(sub, f"{BASE}/{THERMO}/temperature")[-1] == {})  # and value
    assert arrived(sub, humidity)[-1] != {}
    (streams,) = await bridge(client, "BridgedStreams")
    assert streams == {f"{THERMO}/temperature": False, f"{THERMO}/humidity": True}
    before = len(arrived(sub, f"{BASE}/{THERMO}/humidity"))
    await until(lambda: len(arrived(sub, f"{BASE}/{THERMO}/humidity")) > before + 3)
    assert arrived(sub, f"{BASE}/{THERMO}/temperature")[-1] == {}  # none since

    await gateway.stop(service)
    service = await start_bridge(gateway, broker)
    (streams,) = await bridge(client, "BridgedStreams")
    assert streams[f"{THERMO}/temperature"] is False
    await bridge(client, "SetStreamBridged", "ssb", THERMO, "temperature", True)
    await until(lambda: arrived(sub, temperature)[-1] != {})
    await until(lambda: arrived(sub, f"{BASE}/{THERMO}/temperature")[-1] != {})


async def test_a_stream_that_is_not_one_is_refused(gateway, client, broker) -> None:
    await start_bridge(gateway, broker)
    wrong = [("not an id", "temperature"), (THERMO, ""), (THERMO, "x" * 129)]
    wrong += [(THERMO, "#"), (THERMO, "a/+"), (THERMO, "a//b")]
    for device_id, component in wrong:
        with pytest.raises(DBusError) as refused:
            await bridge(client, "SetStreamBridged", "ssb", device_id, component, False)
        assert refused.value.type == c.INVALID_ARGS_ERROR
    (status,) = await bridge(client, "Status")  # still serving
    assert status["broker"].value.endswith(str(broker.port))


async def test_what_cannot_be_published_is_dead_lettered_and_the_rest_goes_on(
    gateway, client, broker, subscribe, tmp_path
) -> None:
    """A spool left with messages no broker takes (an older version queued a wildcard
    topic; a row edited by hand): each is dead-lettered with its reason, counted, and
    the records behind it are published; after a restart too."""
    folder = tmp_path / "mqtt"
    spool = Spool(folder / "spool.db", 1000)
    spool.put([(f"{BASE}/{THERMO}/#", b"", True), (f"{BASE}/x/" + "l" * 70_000, b"1", True)])
    spool.db.execute("INSERT INTO queue (topic, payload, retain) VALUES (?, NULL, 1)", ("t",))
    spool.close()
    (folder / "bridged.json").write_text('{"devices-off": ["ok", "not an id"], "streams-off": 7}')
    sub = subscribe(broker, "agile/#")
    await register(client, THERMOMETER)
    await start_bridge(gateway, broker, folder=str(folder))
    await until(lambda: arrived(sub, f"{BASE}/{THERMO}/temperature")[2:])
    (status,) = await bridge(client, "Status")
    assert status["dead_letters"].value == 3 and status["connected"].value
    (bridged,) = await bridge(client, "Bridged")
    assert bridged == {"ok": False, THERMO: True}
    reasons = [r for (r,) in Spool(folder / "spool.db", 1000).db.execute("SELECT reason FROM dead")]
    assert any("wildcard" in r for r in reasons) and any("65,535" in r for r in reasons)
    assert any("payload is a NoneType" in r for r in reasons)


class Listener:
    """What the DeviceManager sent on the bus: the records the bridge had to carry."""

    def __init__(self) -> None:
        self.records: list[c.RecordObject] = []
        self.on = True

    async def attach(self, bus) -> None:  # type: ignore[no-untyped-def]
        # the bridge follows its streams
        await listen(bus, c.SEQUENCED_VALUE_SIGNAL, self._got, c.DEVICE_NAME)

    def _got(self, msg: Message) -> None:
        if self.on:
            self.records.append(c.RecordObject.from_wire(msg.body[0][0]))


@pytest.mark.timeout(400)
async def test_a_broker_away_for_30_s_under_200_records_per_s_loses_nothing(
    gateway, client, broker, subscribe
) -> None:
    sub = subscribe(broker, "agile/+/+/+")
    await register(client, THERMOMETER)  # two streams at 100 records/s each
    service = await start_bridge(gateway, broker)
    await until(lambda: arrived(sub, f"{BASE}/{THERMO}/humidity"))
    listener = Listener()
    await listener.attach(client)
    await until(lambda: len(listener.records) > 200)
    broker.stop()
    away = time.monotonic()
    await until(lambda: time.monotonic() - away >= 30 and service.spool.length > 5000, 90, 0.5)
    broker.start()
    await until(lambda: service.client is not None, 60)
    await until(lambda: len(listener.records) > 12_000, 60)
    listener.on = False
    sent = [
        (f"{BASE}/{r.device_id}/{r.component_id}", json.loads(_payload(r)))
        for r in listener.records
    ]
    streams = (f"{BASE}/{THERMO}/temperature", f"{BASE}/{THERMO}/humidity")

    def span(stream: str) -> int | None:
        return sub.span(stream, [p for t, p in sent if t == stream])

    # Polled slowly: the services share this event loop, and 20,000 rows take a while.
    await until(lambda: all(span(s) is not None for s in streams), 120, 1)
    duplicates = sum(span(s) or 0 for s in streams) - len(sent)
    print(f"records {len(sent)}, lost 0, duplicated {duplicates} (QoS 1)")
    assert service.spool.dropped == 0


def _payload(record: c.RecordObject) -> bytes:
    from services.bridge.topics import record_payload

    return record_payload(record)
