"""No ZigBee stick: the protocol stays on the bus, unavailable, says why once, and opens
the radio when it is plugged in (the virtual radio standing for the stick at a path)."""

import json
from pathlib import Path

import pytest

from services import contract as c
from services.bus import connect
from services.zigbee.adapter import ZigBeeAdapter
from services.zigbee.sim.devices import population
from tests.helpers import agile_gateway, eventually, pm, protocol


async def test_without_its_port_the_adapter_waits_and_opens_the_radio_when_it_appears(
    tmp_path: Path,
) -> None:
    stick = tmp_path / "ttyACM0"
    adapter = ZigBeeAdapter(
        tmp_path / "state",
        radio="virtual",
        port=str(stick),
        sim={"devices": population(report_interval_s=0.2)},
    )
    changed: list[str] = []
    adapter.on_status_change = lambda: changed.append(adapter.status())
    await adapter.start()
    try:
        assert adapter.status() == c.ProtocolState.UNAVAILABLE
        assert adapter.unavailable == f"no ZigBee radio at {stick} (set zigbee:port)"
        assert adapter.visible_devices() == []
        with pytest.raises(c.NoResult, match="no ZigBee radio at"):
            await adapter.permit(30)
        stick.touch()  # plugged in

        async def opened() -> bool:
            return adapter.status() == c.ProtocolState.AVAILABLE

        await eventually(opened)
        assert changed == [c.ProtocolState.AVAILABLE]
        await adapter.permit(30)

        async def joined() -> bool:
            return len(adapter.visible_devices()) >= 5

        await eventually(joined)
    finally:
        await adapter.stop()


def gateway_up(state_dir: Path, *options: str) -> None:
    args = [a for o in options for a in ("--option", o)]
    up = agile_gateway("up", "--native", "--wait", "--state-dir", str(state_dir), *args)
    assert up.returncode == 0, up.stderr


@pytest.fixture
def state_dir(tmp_path: Path):
    folder = tmp_path / "gw"
    yield folder
    agile_gateway("down", "--native", "--state-dir", str(folder))


@pytest.mark.gateway
async def test_a_gateway_without_a_stick_is_up_and_says_so_once(state_dir: Path) -> None:
    port = state_dir.parent / "ttyUSB0"
    gateway_up(state_dir, f"zigbee:port={port}")
    bus = await connect((state_dir / "bus.address").read_text().strip())
    try:
        assert await protocol(bus, "ZB", "Status") == ["UNAVAILABLE"]

        async def listed() -> list:
            (protocols,) = await pm(bus, "Protocols")
            return [list(p) for p in protocols if p[0] == "ZB"]

        assert await eventually(listed) == [
            ["ZB", "ZigBee", c.protocol_bus_name("ZB"), "Unavailable"]
        ]
    finally:
        bus.disconnect()
    log = (state_dir / "logs" / "zigbee.log").read_text()
    assert log.count(f"no ZigBee radio at {port} (set zigbee:port)") == 1
    assert "Traceback" not in log
    status = json.loads((state_dir / "runtime.json").read_text())["services"]["zigbee"]
    assert status["restarts"] == 0 and status["state"] == "running"


@pytest.mark.gateway
async def test_a_stick_plugged_in_later_makes_the_protocol_available(state_dir: Path) -> None:
    stick = state_dir.parent / "ttyACM0"
    gateway_up(state_dir, "zigbee:radio=virtual", f"zigbee:port={stick}")
    bus = await connect((state_dir / "bus.address").read_text().strip())
    try:
        assert await protocol(bus, "ZB", "Status") == ["UNAVAILABLE"]
        stick.touch()

        async def available() -> bool:
            (protocols,) = await pm(bus, "Protocols")
            return ["ZB", "ZigBee", c.protocol_bus_name("ZB"), "Available"] in map(list, protocols)

        await eventually(available)
        await protocol(bus, "ZB", "PermitJoin", "u", 60)

        async def devices() -> list:
            (listed,) = await protocol(bus, "ZB", "Devices")
            return listed

        assert await eventually(devices)
    finally:
        bus.disconnect()
