"""Devices that leave, drop off and come back, or have a lossy link; a kill -9 mid-interview."""

import asyncio
import json
import os
import signal

import pytest

from services import contract as c
from services.devicetypes.zigbee import zcl
from services.zigbee.sim.devices import climate_sensor, motion_sensor
from tests.helpers import eventually, protocol

TEMPERATURE = zcl(0x0402, 0x0000)


def address(dev) -> str:
    return str(dev.ieee)


async def visible(adapter, dev) -> bool:
    return address(dev) in {d.id for d in adapter.visible_devices()}


async def test_a_device_that_leaves_is_dropped_and_can_rejoin(zigbee_factory):
    leaver = motion_sensor(0x21, report_interval_s=0.1)
    adapter = await zigbee_factory(devices=[leaver])
    await adapter.permit(60)
    await eventually(lambda: visible(adapter, leaver))
    await adapter.permit(0)
    adapter.app.leave(leaver.ieee)
    await eventually(lambda: _not(visible(adapter, leaver)))
    with pytest.raises(c.NoResult, match="has left the network"):
        await adapter.read(address(leaver), zcl(0x0406, 0x0000))
    assert adapter.device_status(address(leaver)) == c.DeviceStatus.DISCONNECTED
    assert not leaver.joined  # a closed network: it stays out

    async def forgotten() -> bool:  # zigpy removes a device that left (and its database row)
        return leaver.ieee not in adapter.app.devices

    await eventually(forgotten)
    await adapter.permit(60)
    await eventually(lambda: visible(adapter, leaver))


async def _not(aw) -> bool:
    return not await aw


async def test_a_device_that_drops_off_is_unreachable_then_answers_again(zigbee_factory):
    flaky = climate_sensor(0x22, report_interval_s=0.1)
    adapter = await zigbee_factory(devices=[flaky])
    await adapter.permit(30)
    await eventually(lambda: visible(adapter, flaky))
    flaky.present = False  # off the air (what `dropout` does on a schedule)
    with pytest.raises(c.NoResult, match="not reachable"):
        await adapter.read(address(flaky), TEMPERATURE)
    flaky.present = True

    async def back() -> bytes:
        return await adapter.read(address(flaky), TEMPERATURE)

    assert len(await eventually(back)) == 2


async def test_a_lossy_link_fails_some_requests_with_an_error_and_never_hangs(zigbee_factory):
    lossy = climate_sensor(0x23, loss=0.5, latency_s=0.05, report_interval_s=0.2)
    adapter = await zigbee_factory(devices=[lossy], request_timeout_s=20)
    await adapter.permit(60)
    await eventually(lambda: visible(adapter, lossy), timeout=60)
    ok, failed = 0, 0
    for _ in range(8):
        try:  # the request timeout (20 s) ends a lost request: it never hangs
            await asyncio.wait_for(adapter.read(address(lossy), TEMPERATURE), 120)
            ok += 1
        except c.NoResult as exc:
            assert "not reachable" in exc.text
            failed += 1
    assert ok and ok + failed == 8


async def test_kill_9_mid_interview_then_restart_finishes_joining(gateway_factory):
    gw = gateway_factory("zigbee:latency=0.3", "zigbee:faults=0")
    from services.bus import connect

    bus = await connect(gw.address)
    await protocol(bus, "ZB", "PermitJoin", "u", 60)
    nvram = gw.state_dir / "zigbee" / "virtual-radio.json"

    async def joined_not_interviewed():
        joined = json.loads(nvram.read_text()).get("children", {})
        (listed,) = await protocol(bus, "ZB", "Devices")
        return len(joined) >= 3 and len(listed) < len(joined)

    await eventually(joined_not_interviewed)
    pid = json.loads((gw.state_dir / "runtime.json").read_text())["services"]["zigbee"]["pid"]
    os.kill(pid, signal.SIGKILL)

    async def restarted():
        status = json.loads((gw.state_dir / "runtime.json").read_text())["services"]["zigbee"]
        return (
            status["pid"] != pid
            and status["state"] == "running"
            and (await protocol(bus, "ZB", "Status"))
        )

    await eventually(restarted, timeout=60)
    await protocol(bus, "ZB", "PermitJoin", "u", 60)  # for any that had not joined yet

    async def all_interviewed():
        (listed,) = await protocol(bus, "ZB", "Devices")
        if len(listed) < 5:
            return None
        infos = [(await protocol(bus, "ZB", "DeviceInfo", "s", d[0]))[0] for d in listed]
        return all(i["Interviewed"].value for i in infos) and infos

    infos = await eventually(all_interviewed, timeout=60)
    assert {i["Model"].value for i in infos} == {
        "TH-100",
        "PLUG-16A",
        "BULB-E27-DIM",
        "PIR-1",
        "DOOR-1",
    }
    record = await protocol(bus, "ZB", "Read", "sa{ss}", "00:12:4b:00:1c:00:00:01", TEMPERATURE)
    assert len(record[0]) == 2
    bus.disconnect()
