"""The BLE adapter over the gateway bus with the virtual BlueZ: discovery, pairing, faults."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.ble import gatt as g
from services.ble.service import create as create_ble
from services.ble.sim.peripherals import SimCharacteristic, environment_sensor, sensortag
from services.bus import call
from services.devicemanager.service import create as create_dm
from services.paths import ROOT
from services.protocolmanager.service import create as create_pm
from tests.devicemanager_helpers import listen_records
from tests.helpers import bluez_on, device, dm, eventually, pm, protocol

BLE = c.protocol_bus_name("BLE")
ENV, TAG = "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:03"
ENV_ID, TAG_ID = "bleC0FFEE000001", "bleC0FFEE000003"


@pytest.fixture
async def gateway(services, bluez):
    await services.start(create_pm(services.config(**{"poll-interval": "0.2"})))
    services.ble = await services.start(create_ble(services.config()))
    await services.start(create_dm(services.config()))
    return services


async def discover(client, *addresses: str) -> list[c.DeviceOverview]:
    await pm(client, "StartDiscovery")

    async def listed() -> list[c.DeviceOverview] | None:
        (wire,) = await pm(client, "Devices")
        found = [c.DeviceOverview.from_wire(d) for d in wire]
        return found if set(addresses) <= {d.id for d in found} else None

    return await eventually(listed)


async def register(client, overview: c.DeviceOverview, type_name: str = "") -> c.DeviceDefinition:
    (wire,) = await dm(client, "Register", "(ssss)s", overview.to_wire(), type_name)
    return c.DeviceDefinition.from_wire(wire)


def by_id(found: list[c.DeviceOverview], address: str) -> c.DeviceOverview:
    return next(d for d in found if d.id == address)


async def test_discovery_finds_the_peripherals(gateway, client) -> None:
    found = await discover(client, ENV, TAG, "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:04")
    names = {d.id: d.name for d in found if d.protocol == BLE}
    assert names[ENV] == "AGILE Env 1" and names[TAG] == "CC2650 SensorTag"
    (status,) = await pm(client, "DiscoveryStatus")
    assert (BLE, "RUNNING") in status
    (info,) = await protocol(client, "BLE", "DeviceInfo", "s", ENV)
    assert info["ServiceUUIDs"].value == [g.ENVIRONMENTAL_SENSING]
    assert -100 <= info["RSSI"].value <= -20


async def test_register_read_and_subscribe_an_environment_sensor(gateway, client) -> None:
    found = await discover(client, ENV)
    assert (await dm(client, "MatchingDeviceTypes", "(ssss)", by_id(found, ENV).to_wire()))[0][
        0
    ] == "ble-environment"
    definition = await register(client, by_id(found, ENV))
    assert [s.id for s in definition.streams] == ["temperature", "humidity", "pressure", "battery"]
    record = c.RecordObject.from_wire((await device(client, ENV_ID, "Read", "s", "temperature"))[0])
    assert record.unit == "°C" and 15 < float(record.value) < 30
    pressure = c.RecordObject.from_wire((await device(client, ENV_ID, "Read", "s", "pressure"))[0])
    assert pressure.unit == "hPa" and 990 < float(pressure.value) < 1030
    records = await listen_records(client)
    await device(client, ENV_ID, "Subscribe", "s", "humidity")
    first = await asyncio.wait_for(records.get(), 60)
    second = await asyncio.wait_for(records.get(), 60)
    assert (first.component_id, first.unit, second.component_id) == ("humidity", "%", "humidity")


async def test_sensortag_is_switched_on_and_takes_commands(gateway, client) -> None:
    found = await discover(client, TAG)
    types = (await dm(client, "MatchingDeviceTypes", "(ssss)", by_id(found, TAG).to_wire()))[0]
    assert types == ["ti-sensortag", "ble-generic"]
    await register(client, by_id(found, TAG))
    light = c.RecordObject.from_wire((await device(client, TAG_ID, "Read", "s", "light"))[0])
    assert light.unit == "lux" and float(light.value) > 0  # the setup writes enabled it
    await device(client, TAG_ID, "Execute", "s", "led-green")
    assert (await device(client, TAG_ID, "Read", "s", "io"))[0][2] == "2"
    await device(client, TAG_ID, "Execute", "s", "off")
    assert (await device(client, TAG_ID, "Read", "s", "io"))[0][2] == "0"


async def test_generic_type_learns_the_characteristics(gateway, client) -> None:
    found = await discover(client, "C0:FF:EE:00:00:02")
    pulse = by_id(found, "C0:FF:EE:00:00:02")
    definition = await register(client, pulse, "ble-generic")
    ids = [s.id for s in definition.streams]
    assert {"180d/2a37", "180f/2a19", "180a/2a29"} <= set(ids)
    battery = (await device(client, "bleC0FFEE000002", "Read", "s", "180f/2a19"))[0]
    assert battery[2] == "40"  # 64 % as raw hex


async def test_out_of_range_disconnects_then_records_resume(gateway, client, bluez) -> None:
    found = await discover(client, ENV)
    await register(client, by_id(found, ENV))
    records = await listen_records(client)
    await device(client, ENV_ID, "Subscribe", "s", "temperature")
    await asyncio.wait_for(records.get(), 60)
    bluez.peripherals[ENV].present = False
    await eventually(lambda: _status(client, ENV_ID, "DISCONNECTED"), timeout=60)
    back_ms = int(time.time() * 1000)
    bluez.peripherals[ENV].present = True
    record = await asyncio.wait_for(records.get(), 60)  # reconnected with backoff
    while record.last_update < back_ms:  # sent before the link was lost
        record = await asyncio.wait_for(records.get(), 60)
    assert record.component_id == "temperature"
    assert (await device(client, ENV_ID, "Status"))[0] == ("CONNECTED",)


async def test_two_clients_subscribing_at_once_share_one_connection(
    gateway, client, bus_address
) -> None:
    """As after a bus restart: the MQTT bridge and agile-tui subscribe in the same moment,
    through an adapter that has not scanned since it started. Both get their records."""
    from services.bus import connect

    found = await discover(client, ENV)
    await register(client, by_id(found, ENV))
    await pm(client, "StopDiscovery")
    await gateway.stop(gateway.ble)
    gateway.ble = await gateway.start(create_ble(gateway.config()))
    other = await connect(bus_address)
    try:
        queues = [await listen_records(client), await listen_records(other)]
        await asyncio.gather(
            device(client, ENV_ID, "Subscribe", "s", "temperature"),
            device(other, ENV_ID, "Subscribe", "s", "temperature"),
        )
        for records in queues:
            assert (await asyncio.wait_for(records.get(), 60)).component_id == "temperature"
        (configuration,) = await device(client, ENV_ID, "Configuration")
        assert json.loads(configuration)["subscribed"] == {"temperature": 2}
    finally:
        other.disconnect()


async def test_many_connects_to_unseen_addresses_share_one_scan(gateway, client) -> None:
    """Twenty clients connect at once to addresses the adapter has not seen (one in range):
    the first scan is under way; the next finds every other address at once (not one
    5 s scan after another, which left calls unanswered for minutes)."""
    absent = [f"C0:FF:EE:00:10:{n:02X}" for n in range(19)]

    async def connect(address: str) -> list:  # two scans of up to 5 s: more than the 5 s default
        return await call(
            client,
            BLE,
            c.protocol_path("BLE"),
            c.PROTOCOL_IFACE,
            "Connect",
            "s",
            [address],
            timeout=60,
        )

    outcomes = await asyncio.gather(*map(connect, [ENV, *absent]), return_exceptions=True)
    assert outcomes[0] == []  # connected
    assert all(
        isinstance(o, DBusError) and o.type == c.DEVICE_NOT_FOUND_ERROR for o in outcomes[1:]
    ), outcomes
    assert gateway.ble.adapter.scans <= 2  # the first, and one for all who came during it
    with pytest.raises(DBusError) as err:  # not an address: no scan either
        await connect("dummyD00000000001")
    assert err.value.type == c.INVALID_ARGS_ERROR


async def _status(client, dev_id: str, wanted: str) -> bool:
    return (await device(client, dev_id, "Status"))[0] == (wanted,)


async def test_bad_requests_get_clear_errors(gateway, client) -> None:
    await discover(client, ENV)
    await protocol(client, "BLE", "Connect", "s", ENV)
    profile = {c.GATT_SERVICE: g.ENVIRONMENTAL_SENSING, "GATT_CHARACTERISTICS": g.uuid16(0x2A00)}
    with pytest.raises(DBusError) as err:  # a characteristic the device does not have
        await protocol(client, "BLE", "Read", "sa{ss}", ENV, profile)
    assert err.value.type == c.NO_RESULT_ERROR
    with pytest.raises(DBusError) as err:  # a profile without a characteristic
        await protocol(client, "BLE", "Read", "sa{ss}", ENV, {c.GATT_SERVICE: "181a"})
    assert err.value.type == c.INVALID_ARGS_ERROR
    with pytest.raises(DBusError) as err:  # a device nobody has seen
        await protocol(client, "BLE", "DeviceStatus", "s", "00:11:22:33:44:55")
    assert err.value.type == c.DEVICE_NOT_FOUND_ERROR
    short = {c.GATT_SERVICE: "181A", "GATT_CHARACTERSTICS": "0x2A6E"}  # short forms work too
    (raw,) = await protocol(client, "BLE", "Read", "sa{ss}", ENV, short)
    assert len(raw) == 2


async def test_garbage_from_the_radio_is_skipped(services, bluez_factory, client) -> None:
    env = environment_sensor(ENV, "Glitchy", 9, notify_hz=10.0)
    temperature = env.characteristic(g.TEMPERATURE)
    assert isinstance(temperature, SimCharacteristic)
    good = temperature.read
    ticks = iter(range(10**9))
    temperature.read = lambda t: good(t)[:1] if next(ticks) % 2 else good(t)  # every 2nd truncated
    odd = sensortag(TAG, "Odd", 3)
    odd.advertised_uuids = ["not-a-uuid"]  # a malformed advertisement
    await bluez_factory([env, odd])
    await services.start(create_pm(services.config(**{"poll-interval": "0.2"})))
    await services.start(create_ble(services.config()))
    await services.start(create_dm(services.config()))
    found = await discover(client, ENV)
    assert TAG not in {d.id for d in found}  # skipped, and the adapter kept running
    await register(client, by_id(found, ENV))
    records = await listen_records(client)
    await device(client, ENV_ID, "Subscribe", "s", "temperature")
    values = [await asyncio.wait_for(records.get(), 60) for _ in range(4)]
    assert all(15 < float(r.value) < 30 for r in values)


async def test_adapter_recovers_when_bluez_is_killed_and_comes_back(
    services, system_bus, client
) -> None:
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": system_bus}
    cmd = [
        sys.executable,
        "-m",
        "services.runtime.cli",
        "service",
        "sim-bluez",
        "--option",
        "notify-hz=5",
        "--option",
        "advert-interval=0.2",
    ]

    def start_bluez() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)

    bluez = start_bluez()
    try:
        await eventually(lambda: bluez_on(system_bus))
        await services.start(create_pm(services.config(**{"poll-interval": "0.2"})))
        await services.start(create_ble(services.config()))
        await services.start(create_dm(services.config()))
        found = await discover(client, ENV)
        await register(client, by_id(found, ENV))
        records = await listen_records(client)
        await device(client, ENV_ID, "Subscribe", "s", "temperature")
        await asyncio.wait_for(records.get(), 60)
        os.kill(bluez.pid, signal.SIGKILL)
        bluez.wait(5)
        await eventually(lambda: _status(client, ENV_ID, "DISCONNECTED"), timeout=60)
        bluez = start_bluez()
        await eventually(lambda: bluez_on(system_bus))
        while not records.empty():
            records.get_nowait()
        record = await asyncio.wait_for(records.get(), 60)
        assert record.component_id == "temperature"
        (status,) = await pm(client, "DiscoveryStatus")
        assert (BLE, "RUNNING") in status  # scanning was resumed too
    finally:
        bluez.terminate()
        bluez.wait(5)
