"""DeviceManager and Device objects on a real dbus-daemon with the Dummy protocol."""

import asyncio
import subprocess

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.bus import connect
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.protocolmanager.service import create as create_pm
from tests.devicemanager_helpers import listen_records
from tests.helpers import SWITCH, THERMOMETER, device, dm, eventually

THERMO_ID = "dummyD00000000001"
SWITCH_ID = "dummyD00000000003"


@pytest.fixture
async def core(services):
    await services.start(create_pm(services.config()))
    services.dummy = await services.start(
        create_dummy(services.config(**{"record-interval": "0.05"}))
    )
    services.dm = await services.start(create_dm(services.config()))
    return services


async def register(bus, overview: c.DeviceOverview, type_name: str = "") -> c.DeviceDefinition:
    (wire,) = await dm(bus, "Register", "(ssss)s", overview.to_wire(), type_name)
    return c.DeviceDefinition.from_wire(wire)


async def test_matching_types_for_a_discovered_device(core, client) -> None:
    assert await dm(client, "MatchingDeviceTypes", "(ssss)", THERMOMETER.to_wire()) == [
        ["dummy-thermometer"]
    ]
    assert await dm(client, "MatchingDeviceTypes", "(ssss)", SWITCH.to_wire()) == [["dummy-switch"]]


async def test_register_then_read_gives_degrees_celsius(core, client) -> None:
    definition = await register(client, THERMOMETER)
    assert definition.device_id == THERMO_ID
    assert definition.path == f"/org/eclipse/agail/Device/{THERMO_ID}"
    assert [s.id for s in definition.streams] == ["temperature", "humidity"]
    (wire,) = await device(client, THERMO_ID, "Read", "s", "temperature")
    record = c.RecordObject.from_wire(wire)
    assert (record.device_id, record.component_id, record.unit) == (THERMO_ID, "temperature", "°C")
    assert 18.0 <= float(record.value) <= 25.0
    assert await device(client, THERMO_ID, "Status") == [("CONNECTED",)]
    (last,) = await device(client, THERMO_ID, "LastUpdate", "s", "temperature")
    assert c.RecordObject.from_wire(last) == record
    (all_records,) = await device(client, THERMO_ID, "ReadAll")
    assert [r[1] for r in all_records] == ["temperature", "humidity"]
    assert (await dm(client, "Devices"))[0][0][0] == THERMO_ID


async def test_register_twice_returns_the_same_device(core, client) -> None:
    first = await register(client, THERMOMETER)
    assert await register(client, THERMOMETER) == first
    assert len((await dm(client, "Devices"))[0]) == 1


async def test_write_and_execute_commands(core, client) -> None:
    await register(client, SWITCH)
    assert await device(client, SWITCH_ID, "Commands") == [["on", "off"]]
    await device(client, SWITCH_ID, "Execute", "s", "on")
    assert (await device(client, SWITCH_ID, "Read", "s", "state"))[0][2] == "on"
    await device(client, SWITCH_ID, "Write", "ss", "state", "off")
    assert (await device(client, SWITCH_ID, "Read", "s", "state"))[0][2] == "off"
    with pytest.raises(DBusError) as err:
        await device(client, SWITCH_ID, "Write", "ss", "state", "sideways")
    assert err.value.type == c.INVALID_ARGS_ERROR
    with pytest.raises(DBusError) as err:
        await device(client, SWITCH_ID, "Execute", "s", "explode")
    assert err.value.type == c.NO_RESULT_ERROR


async def test_subscribe_delivers_records_until_unsubscribed(core, client) -> None:
    await register(client, THERMOMETER)
    records = await listen_records(client)
    await device(client, THERMO_ID, "Subscribe", "s", "temperature")
    first = await asyncio.wait_for(records.get(), 60)
    second = await asyncio.wait_for(records.get(), 60)
    assert (first.device_id, first.component_id, first.unit) == (THERMO_ID, "temperature", "°C")
    assert second.last_update >= first.last_update
    await device(client, THERMO_ID, "Unsubscribe", "s", "temperature")
    # The last hold is gone, so the Device released the radio's stream: nothing more
    # can come (the Dummy sends records only while a stream runs).
    assert not core.dm.devices[THERMO_ID].subscribers
    assert not core.dummy.adapter.devices[THERMOMETER.id].streams


async def test_subscriptions_are_counted_across_clients(core, client, bus_address) -> None:
    await register(client, THERMOMETER)
    other = await connect(bus_address)
    try:
        await device(client, THERMO_ID, "Subscribe", "s", "temperature")
        await device(other, THERMO_ID, "Subscribe", "s", "temperature")
        await device(client, THERMO_ID, "Unsubscribe", "s", "temperature")
        records = await listen_records(client)
        # one holder left: records still flow
        await asyncio.wait_for(records.get(), 60)
        with pytest.raises(DBusError) as err:  # client holds nothing any more
            await device(client, THERMO_ID, "Unsubscribe", "s", "temperature")
        assert err.value.type == c.NO_RESULT_ERROR
    finally:
        other.disconnect()
    # the other client left the bus without unsubscribing: its hold is released
    dev = core.dm.devices[THERMO_ID]
    await eventually(lambda: _no_holders(dev))


async def test_a_protocol_not_back_yet_is_said_apart_from_no_result(core, client) -> None:
    """A client tells "ask again soon" (a restarted bus restarts the protocol after the
    device manager) from a final refusal, and asking again once it is back delivers."""
    await register(client, THERMOMETER)
    await core.stop(core.dummy)
    with pytest.raises(DBusError) as err:
        await device(client, THERMO_ID, "Subscribe", "s", "temperature")
    assert err.value.type == c.PROTOCOL_UNAVAILABLE_ERROR
    assert await device(client, THERMO_ID, "Status") == [("ERROR",)]
    core.dummy = await core.start(create_dummy(core.config(**{"record-interval": "0.05"})))
    records = await listen_records(client)
    await device(client, THERMO_ID, "Subscribe", "s", "temperature")
    assert (await asyncio.wait_for(records.get(), 60)).device_id == THERMO_ID


async def _no_holders(dev) -> bool:
    return not dev.subscribers


async def test_unknown_device_is_device_not_found(core, client) -> None:
    with pytest.raises(DBusError) as err:
        await dm(client, "Read", "s", "dummyNOPE")
    assert err.value.type == c.DEVICE_NOT_FOUND_ERROR
    with pytest.raises(DBusError) as err:
        await dm(client, "Delete", "s", "dummyNOPE")
    assert err.value.type == c.DEVICE_NOT_FOUND_ERROR


@pytest.mark.parametrize(
    "overview, type_name",
    [
        (["", c.protocol_bus_name("Dummy"), "x", "AVAILABLE"], ""),
        (["AA", "org.example.NotAProtocol", "x", "AVAILABLE"], ""),
        (["AA/../b", c.protocol_bus_name("Dummy"), "x", "AVAILABLE"], "dummy-switch"),
    ],
)
async def test_malformed_registration_is_invalid_args(core, client, overview, type_name) -> None:
    with pytest.raises(DBusError) as err:
        await dm(client, "Register", "(ssss)s", overview, type_name)
    assert err.value.type == c.INVALID_ARGS_ERROR
    assert await dm(client, "Devices") == [[]]


async def test_wrong_signature_is_invalid_args(core, client) -> None:
    with pytest.raises(DBusError) as err:
        await dm(client, "Register", "ss", "a", "b")
    assert err.value.type == c.INVALID_ARGS_ERROR
    await register(client, THERMOMETER)
    with pytest.raises(DBusError) as err:
        await device(client, THERMO_ID, "Read", "")
    assert err.value.type == c.INVALID_ARGS_ERROR


async def test_unknown_type_and_unknown_component_are_no_result(core, client) -> None:
    with pytest.raises(DBusError) as err:
        await register(client, THERMOMETER, "no-such-type")
    assert err.value.type == c.NO_RESULT_ERROR
    await register(client, THERMOMETER)
    with pytest.raises(DBusError) as err:
        await device(client, THERMO_ID, "Read", "s", "pressure")
    assert err.value.type == c.NO_RESULT_ERROR
    assert "temperature, humidity" in err.value.text


async def test_delete_removes_the_object_and_the_registration(core, client) -> None:
    await register(client, THERMOMETER)
    await dm(client, "Delete", "s", THERMO_ID)
    assert await dm(client, "Devices") == [[]]
    with pytest.raises(DBusError):
        await device(client, THERMO_ID, "Id")


async def test_registration_survives_a_restart_of_the_service(core, client) -> None:
    definition = await register(client, THERMOMETER)
    await core.stop(core.dm)
    core.dm = await core.start(create_dm(core.config()))
    (devices,) = await dm(client, "Devices")
    assert [c.DeviceDefinition.from_wire(d) for d in devices] == [definition]
    assert (await device(client, THERMO_ID, "Read", "s", "humidity"))[0][3] == "%"


async def test_restored_devices_do_not_touch_the_radio(core, client) -> None:
    await register(client, THERMOMETER)
    dummy = next(s for s, _, _ in core.running if s.bus_names == (c.protocol_bus_name("Dummy"),))
    await core.stop(core.dm)
    await device_disconnect(dummy)
    core.dm = await core.start(create_dm(core.config()))
    for _ in range(3):
        await dm(client, "Devices")
    assert not any(d.connected for d in dummy.adapter.devices.values())


async def device_disconnect(dummy) -> None:
    for address in dummy.adapter.devices:
        await dummy.adapter.disconnect(address)


async def test_garbage_from_the_protocol_is_skipped(core, client) -> None:
    await register(client, THERMOMETER)
    records = await listen_records(client)
    await device(client, THERMO_ID, "Subscribe", "s", "temperature")
    dummy = next(s for s, _, _ in core.running if s.bus_names == (c.protocol_bus_name("Dummy"),))
    dummy.adapter.record(THERMOMETER.id, {"component": "temperature"}, b"\x01")  # 1 byte: bad
    good = await asyncio.wait_for(records.get(), 60)
    assert good.component_id == "temperature"
    assert (await device(client, THERMO_ID, "Id")) == [THERMO_ID]


async def gdbus_methods(bus_address: str, dest: str, path: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "gdbus",
        "introspect",
        "--address",
        bus_address,
        "--dest",
        dest,
        "--object-path",
        path,
        stdout=subprocess.PIPE,
    )
    return " ".join((await proc.communicate())[0].decode().split())


async def test_introspection_through_gdbus_shows_agile_signatures(
    core, client, bus_address
) -> None:
    await register(client, THERMOMETER)
    out = await gdbus_methods(bus_address, c.DEVICE_NAME, c.device_path(THERMO_ID))
    for method in [
        "Read(in s component, out (sssssx) arg_1);",
        "Status(out (s) arg_0);",
        "LastSeen(out x arg_0);",
        "ReadAll(out a(sssssx) arg_0);",
        "Definition(out (ssssssa(ss)) arg_0);",
        "Write(in s component, in s payload);",
        "Commands(out as arg_0);",
        "Subscribe(in s component);",
    ]:
        assert method in out
    out = await gdbus_methods(bus_address, c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH)
    for method in [
        "Register(in (ssss) overview, in s device_type, out (ssssssa(ss)) arg_2);",
        "Devices(out a(ssssssa(ss)) arg_0);",
        "MatchingDeviceTypes(in (ssss) overview, out as arg_1);",
        "Read(in s dev_id, out (ssssssa(ss)) arg_1);",
        "Delete(in s dev_id);",
    ]:
        assert method in out


async def test_two_deletes_at_once_delete_once_and_say_so_to_the_other(core, client) -> None:
    await register(client, THERMOMETER)
    first, second = await asyncio.gather(
        dm(client, "Delete", "s", THERMO_ID),
        dm(client, "Delete", "s", THERMO_ID),
        return_exceptions=True,
    )
    assert first == []
    assert isinstance(second, DBusError) and second.type == c.DEVICE_NOT_FOUND_ERROR
    assert await dm(client, "Devices") == [[]]
