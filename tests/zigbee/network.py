"""The virtual network the ZigBee tests use: its devices' addresses, the attributes read,
and an adapter the devices joined."""

import asyncio

from services import contract as c
from services.devicetypes.zigbee import zcl
from tests.helpers import eventually

CLIMATE = "00:12:4b:00:1c:00:00:01"
PLUG = "00:12:4b:00:1c:00:00:02"
TEMPERATURE = zcl(0x0402, 0x0000)
ON_OFF = zcl(0x0006, 0x0000)
INTERVIEW = (0x0002, 0x0005, 0x0004)  # Node_Desc_req, Active_EP_req, Simple_Desc_req


async def joined(adapter, n: int = 5) -> list[c.DeviceOverview]:
    async def enough():
        devices = adapter.visible_devices()
        return devices if len(devices) >= n else None

    return await eventually(enough, timeout=60)


async def reporting(zigbee_factory) -> tuple:
    """An adapter whose network the climate sensor joined, subscribed to its temperature;
    and the queue of the values it reports."""
    adapter = await zigbee_factory()
    await adapter.permit(30)
    await joined(adapter)
    reports: asyncio.Queue = asyncio.Queue()
    adapter.on_record = lambda address, profile, value: reports.put_nowait(value)
    await adapter.subscribe(CLIMATE, TEMPERATURE)
    return adapter, reports
