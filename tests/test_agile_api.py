"""AGILE's whole D-Bus API on the running services: every method with AGILE's signature
(seen by an independent client's introspection), the signals declared, and the methods
AGILE's HTTP API calls (Profile, Update, Batch, ...) doing what they say."""

import asyncio
import json
import subprocess
import xml.etree.ElementTree as ET

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.contract_api import ADDITIONS, AGILE_METHODS, AGILE_SIGNALS
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.protocolmanager.service import create as create_pm
from tests.devicemanager_helpers import listen_records
from tests.helpers import SWITCH, THERMOMETER, device, dm, eventually

THERMO_ID = THERMOMETER.device_id
SWITCH_ID = SWITCH.device_id


@pytest.fixture
async def core(services, client):
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config(**{"record-interval": "0.05"})))
    services.dm = await services.start(create_dm(services.config()))
    for overview in (THERMOMETER, SWITCH):
        await dm(client, "Register", "(ssss)s", overview.to_wire(), "")
    return services


def introspect(address: str, name: str, path: str) -> ET.Element:
    """The object's introspection as busctl (not our own bus library) reads it."""
    done = subprocess.run(
        ["busctl", f"--address={address}", "introspect", "--xml-interface", name, path],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return ET.fromstring(done.stdout)


def members(node: ET.Element, iface: str, kind: str) -> dict[str, tuple[str, str]]:
    found = {}
    for element in node.findall(f"./interface[@name='{iface}']/{kind}"):
        args = element.findall("arg")
        ins = "".join(a.get("type", "") for a in args if a.get("direction", "in") == "in")
        outs = "".join(a.get("type", "") for a in args if a.get("direction") == "out")
        if kind == "signal":
            ins, outs = "", "".join(a.get("type", "") for a in args)
        found[element.get("name", "")] = (ins, outs)
    return found


OBJECTS = {
    c.PROTOCOL_MANAGER_IFACE: (c.PROTOCOL_MANAGER_NAME, c.PROTOCOL_MANAGER_PATH),
    c.DEVICE_MANAGER_IFACE: (c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH),
    c.DEVICE_IFACE: (c.DEVICE_NAME, c.device_path(THERMO_ID)),
    c.PROTOCOL_IFACE: (c.protocol_bus_name("Dummy"), c.protocol_path("Dummy")),
}


@pytest.mark.parametrize("iface", list(AGILE_METHODS))
async def test_every_agile_method_has_agiles_signature(core, bus_address, iface) -> None:
    name, path = OBJECTS[iface]
    node = await asyncio.to_thread(introspect, bus_address, name, path)
    methods = members(node, iface, "method")
    for member, m in AGILE_METHODS[iface].items():
        assert methods.get(member) == (m.ins, m.outs), f"{iface}.{member}"
    for member, m in ADDITIONS.get(iface, {}).items():
        assert methods.get(member) == (m.ins, m.outs), f"{iface}.{member} (addition)"
    signals = members(node, iface, "signal")
    for member, signature in AGILE_SIGNALS.get(iface, {}).items():
        assert signals.get(member) == ("", signature), f"signal {iface}.{member}"


async def test_a_call_on_an_object_that_does_not_exist_is_unknown_object(core, client) -> None:
    with pytest.raises(DBusError) as err:
        await device(client, "dummyNOPE", "Name")
    assert err.value.type == "org.freedesktop.DBus.Error.UnknownObject"
    assert "/org/eclipse/agail/Device/dummyNOPE" in err.value.text
    assert (await device(client, THERMO_ID, "Name"))[0] == "Dummy Thermometer 1"  # still serving


async def test_profile_protocol_configuration_and_data(core, client) -> None:
    (profile,) = await device(client, THERMO_ID, "Profile")
    assert [c.DeviceComponent.from_wire(x) for x in profile] == [
        c.DeviceComponent("temperature", "°C"),
        c.DeviceComponent("humidity", "%"),
    ]
    assert await device(client, THERMO_ID, "Protocol") == [c.protocol_bus_name("Dummy")]
    (configuration,) = await device(client, SWITCH_ID, "Configuration")
    assert json.loads(configuration) == {
        "deviceType": "dummy-switch",
        "commands": ["on", "off"],
        "writable": ["state"],
        "subscribable": ["state"],
        "subscribed": {},
        "private": [],
    }
    with pytest.raises(DBusError) as err:
        await device(client, THERMO_ID, "Data")
    assert err.value.type == c.NO_RESULT_ERROR
    await device(client, THERMO_ID, "Read", "s", "temperature")
    (read,) = await device(client, THERMO_ID, "Read", "s", "humidity")
    (data,) = await device(client, THERMO_ID, "Data")
    assert data == read  # the most recent record of any component


async def test_find_lists_the_registered_devices(core, client) -> None:
    (found,) = await dm(client, "Find")
    devices = {d["deviceId"]: d for d in json.loads(found)}
    assert set(devices) == {THERMO_ID, SWITCH_ID}
    assert devices[SWITCH_ID]["type"] == "dummy-switch"
    assert devices[THERMO_ID]["streams"][0] == {"id": "temperature", "unit": "°C"}


async def test_update_renames_and_retypes_a_registered_device(core, client) -> None:
    (wire,) = await dm(client, "Read", "s", THERMO_ID)
    renamed = [*wire[:2], "Kitchen", *wire[3:]]  # the definition AGILE read, a new name
    await dm(client, "Update", "s(ssssssa(ss))", THERMO_ID, renamed)
    assert await device(client, THERMO_ID, "Name") == ["Kitchen"]
    stored = json.loads((core.state_dir / "devicemanager" / "devices.json").read_text())
    assert "Kitchen" in json.dumps(stored)  # persisted

    retyped = [THERMO_ID, "", "", "dummy-switch", "", "", []]  # empty fields stay
    await dm(client, "Update", "s(ssssssa(ss))", THERMO_ID, retyped)
    (definition,) = await dm(client, "Read", "s", THERMO_ID)
    assert definition[2] == "Kitchen" and [s[0] for s in definition[6]] == ["state"]
    assert await device(client, THERMO_ID, "Commands") == [["on", "off"]]


@pytest.mark.parametrize(
    "change, error",
    [
        ({1: "D0:00:00:00:00:09"}, c.INVALID_ARGS_ERROR),  # another address
        ({3: "no-such-type"}, c.INVALID_ARGS_ERROR),
        ({3: "ble-generic"}, c.INVALID_ARGS_ERROR),  # a type of another protocol
    ],
)
async def test_update_refuses_what_it_cannot_do(core, client, change, error) -> None:
    (wire,) = await dm(client, "Read", "s", THERMO_ID)
    wanted = list(wire)
    for index, value in change.items():
        wanted[index] = value
    with pytest.raises(DBusError) as err:
        await dm(client, "Update", "s(ssssssa(ss))", THERMO_ID, wanted)
    assert err.value.type == error
    assert await dm(client, "Read", "s", THERMO_ID) == [wire]  # nothing changed


async def test_update_of_an_unknown_device_or_while_subscribed(core, client) -> None:
    (wire,) = await dm(client, "Read", "s", THERMO_ID)
    with pytest.raises(DBusError) as err:
        await dm(client, "Update", "s(ssssssa(ss))", "dummyNOPE", wire)
    assert err.value.type == c.DEVICE_NOT_FOUND_ERROR
    await device(client, THERMO_ID, "Subscribe", "s", "temperature")
    retyped = [THERMO_ID, "", "", "dummy-switch", "", "", []]
    with pytest.raises(DBusError) as err:
        await dm(client, "Update", "s(ssssssa(ss))", THERMO_ID, retyped)
    assert err.value.type == c.NO_RESULT_ERROR and "unsubscribe" in err.value.text


async def test_batch_runs_one_operation_over_many_devices(core, client) -> None:
    records = await listen_records(client)
    await dm(client, "Batch", "ss", "connect", "{}")
    statuses = [(await device(client, d, "Status"))[0][0] for d in (THERMO_ID, SWITCH_ID)]
    assert statuses == ["CONNECTED", "CONNECTED"]
    await dm(
        client,
        "Batch",
        "ss",
        "subscribe",
        json.dumps({"devices": [THERMO_ID], "component": "humidity"}),
    )
    record = await asyncio.wait_for(records.get(), 60)
    assert (record.device_id, record.component_id) == (THERMO_ID, "humidity")
    await dm(
        client, "Batch", "ss", "execute", json.dumps({"devices": [SWITCH_ID], "command": "on"})
    )
    assert (await device(client, SWITCH_ID, "Read", "s", "state"))[0][2] == "on"
    await dm(client, "Batch", "ss", "delete", json.dumps({"devices": [SWITCH_ID]}))
    assert [d[0] for d in (await dm(client, "Devices"))[0]] == [THERMO_ID]


@pytest.mark.parametrize(
    "operation, arguments, error, says",
    [
        ("explode", "{}", c.INVALID_ARGS_ERROR, "operations: connect, disconnect"),
        ("connect", "not json", c.INVALID_ARGS_ERROR, "not JSON"),
        ("write", "{}", c.INVALID_ARGS_ERROR, "needs component, value"),
        ("connect", '{"devices": ["dummyNOPE"]}', c.DEVICE_NOT_FOUND_ERROR, "dummyNOPE"),
        ("execute", '{"command": "on"}', c.NO_RESULT_ERROR, "1 of 2 failed"),
    ],
)
async def test_batch_says_what_is_wrong(core, client, operation, arguments, error, says) -> None:
    with pytest.raises(DBusError) as err:
        await dm(client, "Batch", "ss", operation, arguments)
    assert err.value.type == error and says in err.value.text
    assert len((await dm(client, "Devices"))[0]) == 2  # the service keeps running


async def test_protocols_are_listed_in_agiles_order_and_spelling(core, client) -> None:
    from tests.helpers import pm

    (protocols,) = await eventually(lambda: pm(client, "Protocols"))
    assert [list(p) for p in protocols] == [
        ["Dummy", "Dummy", c.protocol_bus_name("Dummy"), "Available"]
    ]


async def test_every_status_and_every_radio_info_in_one_call_each(core, client) -> None:
    from tests.helpers import pm

    (statuses,) = await dm(client, "DevicesStatus")
    assert {k: v[0] for k, v in statuses.items()} == {
        THERMO_ID: "DISCONNECTED",
        SWITCH_ID: "DISCONNECTED",
    }
    await device(client, THERMO_ID, "Connect")
    (statuses,) = await dm(client, "DevicesStatus")
    assert statuses[THERMO_ID][0] == "CONNECTED"
    (info,) = await eventually(lambda: pm(client, "DevicesInfo"))
    assert isinstance(info, dict)  # by device id; the Dummy tells nothing of its radio
