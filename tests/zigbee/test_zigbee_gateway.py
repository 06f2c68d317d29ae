"""ZigBee over the gateway bus: discovery opens joining, registration, values, commands."""

import asyncio
import json

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.devicemanager.service import create as create_dm
from services.protocolmanager.service import create as create_pm
from services.zigbee.service import create as create_zigbee
from tests.devicemanager_helpers import listen_records
from tests.helpers import agile_gateway, device, dm, eventually, pm, protocol

ZB = c.protocol_bus_name("ZB")
CLIMATE, PLUG, PIR = "00:12:4b:00:1c:00:00:01", "00:12:4b:00:1c:00:00:02", "00:12:4b:00:1c:00:00:04"
CLIMATE_ID, PLUG_ID, PIR_ID = "zb00124b001c000001", "zb00124b001c000002", "zb00124b001c000004"


@pytest.fixture
async def gateway(services):
    await services.start(create_pm(services.config(**{"poll-interval": "0.2"})))
    options = {"report-interval": "0.2", "faults": "0"}
    services.zigbee = await services.start(create_zigbee(services.config(**options)))
    await services.start(create_dm(services.config()))
    return services


async def discover(client, *addresses: str) -> dict[str, c.DeviceOverview]:
    await pm(client, "StartDiscovery")

    async def listed():
        (wire,) = await pm(client, "Devices")
        found = {o.id: o for o in map(c.DeviceOverview.from_wire, wire) if o.protocol == ZB}
        return found if set(addresses) <= set(found) else None

    return await eventually(listed, timeout=60)


async def register(client, overview: c.DeviceOverview, type_name: str = "") -> c.DeviceDefinition:
    (wire,) = await dm(client, "Register", "(ssss)s", overview.to_wire(), type_name)
    return c.DeviceDefinition.from_wire(wire)


async def test_discovery_opens_joining_and_lists_the_joined_devices(gateway, client) -> None:
    found = await discover(client, CLIMATE, PLUG, PIR)
    (remaining,) = await protocol(client, "ZB", "PermitJoinRemaining")
    assert 50 <= remaining <= 60
    (status,) = await pm(client, "DiscoveryStatus")
    assert (ZB, "RUNNING") in status
    assert found[CLIMATE].name == "AGILE Sim TH-100"
    await protocol(client, "ZB", "PermitJoin", "u", 5)
    assert (await protocol(client, "ZB", "PermitJoinRemaining"))[0] <= 5
    await pm(client, "StopDiscovery")
    assert (await protocol(client, "ZB", "DiscoveryStatus")) == ["NONE"]
    with pytest.raises(DBusError) as err:
        await protocol(client, "ZB", "PermitJoin", "u", 1000)
    assert err.value.type == c.INVALID_ARGS_ERROR


async def test_register_a_climate_sensor_read_and_subscribe(gateway, client) -> None:
    found = await discover(client, CLIMATE)
    (types,) = await dm(client, "MatchingDeviceTypes", "(ssss)", found[CLIMATE].to_wire())
    assert types == ["zigbee-climate", "zigbee-generic"]
    definition = await register(client, found[CLIMATE])
    assert definition.device_id == CLIMATE_ID
    assert [(s.id, s.unit) for s in definition.streams] == [
        ("temperature", "°C"),
        ("humidity", "%"),
        ("battery", "%"),
    ]
    temperature = c.RecordObject.from_wire(
        (await device(client, CLIMATE_ID, "Read", "s", "temperature"))[0]
    )
    assert temperature.unit == "°C" and 15.0 <= float(temperature.value) <= 30.0
    humidity = c.RecordObject.from_wire(
        (await device(client, CLIMATE_ID, "Read", "s", "humidity"))[0]
    )
    assert humidity.unit == "%" and 30.0 <= float(humidity.value) <= 60.0
    battery = c.RecordObject.from_wire(
        (await device(client, CLIMATE_ID, "Read", "s", "battery"))[0]
    )
    assert battery.value == "90"

    records = await listen_records(client)
    await device(client, CLIMATE_ID, "Subscribe", "s", "temperature")
    got = [await asyncio.wait_for(records.get(), 60) for _ in range(3)]
    assert {(r.device_id, r.component_id, r.unit) for r in got} == {
        (CLIMATE_ID, "temperature", "°C")
    }
    assert len({r.last_update for r in got}) == 3


async def test_execute_toggles_the_plug_and_its_state_reads_back(gateway, client) -> None:
    found = await discover(client, PLUG)
    definition = await register(client, found[PLUG])
    assert {s.id for s in definition.streams} == {"state", "switch", "power", "voltage", "energy"}
    assert await device(client, PLUG_ID, "Commands") == [["on", "off", "toggle"]]

    async def state() -> str:
        return c.RecordObject.from_wire(
            (await device(client, PLUG_ID, "Read", "s", "state"))[0]
        ).value

    assert await state() == "on"
    await device(client, PLUG_ID, "Execute", "s", "toggle")
    assert await state() == "off"
    power = c.RecordObject.from_wire((await device(client, PLUG_ID, "Read", "s", "power"))[0])
    assert power.unit == "W"
    await device(client, PLUG_ID, "Execute", "s", "on")
    assert await state() == "on"
    await device(client, PLUG_ID, "Write", "ss", "switch", "off")
    assert await state() == "off"
    with pytest.raises(DBusError, match="on, off or toggle"):
        await device(client, PLUG_ID, "Write", "ss", "switch", "dim")


async def test_the_generic_type_exposes_every_reportable_attribute(gateway, client) -> None:
    found = await discover(client, PIR)
    (types,) = await dm(client, "MatchingDeviceTypes", "(ssss)", found[PIR].to_wire())
    assert types == ["zigbee-motion", "zigbee-generic"]
    definition = await register(client, found[PIR], "zigbee-generic")
    ids = {s.id for s in definition.streams}
    assert "1/occupancy/occupancy" in ids
    record = c.RecordObject.from_wire(
        (await device(client, PIR_ID, "Read", "s", "1/occupancy/occupancy"))[0]
    )
    assert record.value in ("Unoccupied", "Occupied")  # the ZCL enum names, from zigpy


async def test_agile_gateway_zigbee_backs_the_network_up_and_restores_it(
    gateway, client, bus_address, tmp_path
) -> None:
    await discover(client, CLIMATE, PLUG, PIR)
    await pm(client, "StopDiscovery")
    saved = tmp_path / "network.json"

    done = await asyncio.to_thread(
        agile_gateway, "zigbee", "backup", str(saved), "--bus", bus_address
    )
    assert done.returncode == 0, done.stderr
    assert saved.stat().st_mode & 0o777 == 0o600  # it holds the network key
    assert "ieee_address" in saved.read_text() and "backed up" in done.stderr
    listing = await asyncio.to_thread(agile_gateway, "zigbee", "backups", "--bus", bus_address)
    devices = len(json.loads(saved.read_text())["devices"])
    assert devices >= 3 and f"{devices:3d} devices" in listing.stdout, listing.stdout

    pan_id = gateway.zigbee.adapter.app.state.network_info.pan_id
    await gateway.zigbee.adapter.app.reset_network_info()  # the stick wiped
    done = await asyncio.to_thread(
        agile_gateway, "zigbee", "restore", str(saved), "--bus", bus_address
    )
    assert done.returncode == 0, done.stderr
    assert gateway.zigbee.adapter.app.state.network_info.pan_id == pan_id
    (listed,) = await protocol(client, "ZB", "Devices")
    assert {CLIMATE, PLUG, PIR} <= {o[0] for o in listed}

    saved.write_text('{"metadata": {"format": "zigpy/open-coordinator-backup"}}')
    refused = await asyncio.to_thread(
        agile_gateway, "zigbee", "restore", str(saved), "--bus", bus_address
    )
    assert refused.returncode == 1 and "not a ZigBee network backup" in refused.stderr
    assert (await protocol(client, "ZB", "Status")) == ["AVAILABLE"]


async def test_a_devices_firmware_is_read_and_updated_through_its_device_object(
    gateway, client
) -> None:
    from services.zigbee.sim.devices import FIRST_FIRMWARE
    from tests.zigbee.network import ota_file

    found = await discover(client, PLUG)
    await register(client, found[PLUG])

    async def version() -> str:
        (said,) = await device(client, PLUG_ID, "FirmwareVersion")
        return said

    assert await eventually(version) == f"0x{FIRST_FIRMWARE:08x}"
    with pytest.raises(DBusError) as err:
        await device(client, PLUG_ID, "Update")
    assert "no newer firmware" in err.value.text

    ota_file(gateway.state_dir / "zigbee" / "ota", 0x0201, FIRST_FIRMWARE + 1)
    (firmware,) = await device(client, PLUG_ID, "Firmware")
    assert firmware["Available"].value == FIRST_FIRMWARE + 1
    await device(client, PLUG_ID, "Update")

    async def updated() -> bool:
        return await version() == f"0x{FIRST_FIRMWARE + 1:08x}"

    await eventually(updated, timeout=120, interval=0.5)
    (firmware,) = await device(client, PLUG_ID, "Firmware")
    assert firmware["State"].value == "done" and firmware["Done"].value == firmware["Total"].value
