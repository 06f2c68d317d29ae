"""zigpy end to end on the virtual radio: formation, joining, interview, ZCL, reports, restart."""

import asyncio
import logging

import pytest
import zigpy.types as t

from services import contract as c
from services.devicetypes.zigbee import zcl
from tests.zigbee.network import (
    CLIMATE,
    INTERVIEW,
    ON_OFF,
    PLUG,
    TEMPERATURE,
    joined,
    reporting,
)


async def test_a_network_forms_and_devices_join_only_while_permitted(zigbee_factory):
    adapter = await zigbee_factory()
    app = adapter.app
    assert app.state.network_info.channel == 15 and app.state.network_info.pan_id
    # A closed network: nothing admits devices, so nobody joins.
    assert app.permit_remaining_s() == 0 and app._join_task is None
    assert not any(dev.joined for dev in app.air.values())
    assert adapter.visible_devices() == []
    await adapter.permit(30)
    assert adapter.discovery_state() == c.DiscoveryState.RUNNING
    assert 0 < adapter.permit_remaining_s() <= 30
    devices = await joined(adapter)
    assert {d.name for d in devices} == {
        "AGILE Sim TH-100",
        "AGILE Sim PLUG-16A",
        "AGILE Sim BULB-E27-DIM",
        "AGILE Sim PIR-1",
        "AGILE Sim DOOR-1",
    }
    info = {k: v.value for k, v in adapter.device_info(CLIMATE).items()}
    assert info["Interviewed"] and info["Model"] == "TH-100"
    assert {"1/0x0402", "1/0x0405", "1/0x0001"} <= set(info["Clusters"])
    assert info["LQI"] > 0 and info["RSSI"] < 0
    await adapter.permit(0)
    assert adapter.discovery_state() == c.DiscoveryState.NONE


async def test_read_command_and_reports(zigbee_factory):
    adapter = await zigbee_factory()
    await adapter.permit(30)
    await joined(adapter)
    raw = await adapter.read(CLIMATE, TEMPERATURE)
    assert 1500 <= int.from_bytes(raw, "little", signed=True) <= 3000

    await adapter.write(PLUG, {"endpoint": "1", "cluster": "0x0006", "command": "payload"}, b"\x00")
    assert await adapter.read(PLUG, ON_OFF) == b"\x00"
    await adapter.write(PLUG, {"endpoint": "1", "cluster": "0x0006", "command": "payload"}, b"\x02")
    assert await adapter.read(PLUG, ON_OFF) == b"\x01"

    reports: asyncio.Queue = asyncio.Queue()
    adapter.on_record = lambda address, profile, value: reports.put_nowait(
        (address, profile, value)
    )
    await adapter.subscribe(CLIMATE, TEMPERATURE)
    for _ in range(3):
        address, profile, value = await asyncio.wait_for(reports.get(), 60)
        assert (address, profile, len(value)) == (CLIMATE, TEMPERATURE, 2)
    await adapter.unsubscribe(CLIMATE, TEMPERATURE)
    # No subscription and no listener on the cluster left: the device's reports, which
    # it keeps sending as configured, reach nobody.
    assert not adapter.subscriptions and not adapter._listening


async def test_a_restart_restores_the_network_without_a_new_interview(zigbee_factory, tmp_path):
    adapter = await zigbee_factory()
    pan_id = adapter.app.state.network_info.pan_id
    await adapter.permit(30)
    await joined(adapter)
    await adapter.stop()

    again = await zigbee_factory(state_dir=tmp_path / "state")
    assert again.app.state.network_info.pan_id == pan_id
    assert len(again.visible_devices()) == 5  # straight from zigpy's database
    radio = again.app
    # Restored as interviewed: zigpy has nothing to ask them again.
    assert all(radio.devices[dev.ieee].is_initialized for dev in radio.air.values() if dev.joined)
    raw = await again.read(CLIMATE, TEMPERATURE)
    assert len(raw) == 2
    assert not any(radio.sent[(CLIMATE, cmd)] for cmd in INTERVIEW)


async def test_bad_addresses_profiles_and_attributes_get_clear_errors(zigbee_factory):
    adapter = await zigbee_factory()
    await adapter.permit(30)
    await joined(adapter)
    cases = [
        ("not-an-ieee", TEMPERATURE, c.InvalidArgs, "not a ZigBee IEEE"),
        ("00:12:4b:00:99:99:99:99", TEMPERATURE, c.DeviceNotFound, "no ZigBee device"),
        (CLIMATE, {"endpoint": "1"}, c.InvalidArgs, "needs 'cluster'"),
        (CLIMATE, {**TEMPERATURE, "cluster": "temperature"}, c.InvalidArgs, "not a number"),
        (CLIMATE, zcl(0x0006, 0x0000), c.NoResult, "no cluster 0x0006"),
        (CLIMATE, zcl(0x0402, 0x0000, endpoint=7), c.NoResult, "no endpoint 7"),
        (CLIMATE, zcl(0x0402, 0x7777), c.NoResult, "no attribute 0x7777"),
    ]
    for address, profile, error, text in cases:
        with pytest.raises(error, match=text):
            await adapter.read(address, profile)
    with pytest.raises(c.NoResult, match="UNSUPPORTED_ATTRIBUTE"):
        await adapter.read(CLIMATE, zcl(0x0402, 0x0003))  # tolerance: defined, not on device
    with pytest.raises(c.InvalidArgs, match="permit-join lasts"):
        await adapter.permit(600)


async def test_a_device_that_never_answers_times_out(zigbee_factory):
    adapter = await zigbee_factory(request_timeout_s=0.5)
    await adapter.permit(30)
    await joined(adapter)
    adapter.app.air[t.EUI64.convert(CLIMATE)].mute = True
    with pytest.raises(c.NoResult, match=r"did not answer .* within 0\.5 s"):
        await adapter.read(CLIMATE, TEMPERATURE)


async def test_malformed_frames_from_a_device_are_logged_and_skipped(zigbee_factory, caplog):
    adapter, reports = await reporting(zigbee_factory)
    radio = adapter.app
    ieee = t.EUI64.convert(CLIMATE)
    caplog.set_level(logging.DEBUG)
    for garbage in (b"\x18", b"\x18\x01\x0a\x00\x00\x29\x01", b"\xff" * 7, b""):
        radio.inject(ieee, 1, 0x0402, garbage)  # truncated, wrong type, nonsense, empty
    await asyncio.wait_for(reports.get(), 60)  # the device's real reports still arrive
    assert len(adapter.visible_devices()) == 5
    assert any(
        "0x0402" in r.getMessage() or "parse" in r.getMessage().lower() for r in caplog.records
    )
