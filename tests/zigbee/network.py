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


def ota_file(folder, image_type: int, version: int, size: int = 2_000):
    """A ZigBee OTA file (the specification's header, one upgrade image element) for the
    virtual devices' manufacturer, in `folder`; its path."""
    import random

    from zigpy.ota.image import ElementTagId, FieldControl, OTAImage, OTAImageHeader, SubElement

    from services.zigbee.sim.devices import MANUFACTURER_CODE

    payload = random.Random(version).randbytes(size)
    element = SubElement(tag_id=ElementTagId.UPGRADE_IMAGE, data=payload)
    header = OTAImageHeader(
        upgrade_file_id=OTAImageHeader.MAGIC_VALUE,
        header_version=0x0100,
        header_length=56,
        field_control=FieldControl(0),
        manufacturer_id=MANUFACTURER_CODE,
        image_type=image_type,
        file_version=version,
        stack_version=2,
        header_string="AGILE Sim firmware",
        image_size=56 + len(element.serialize()),
    )
    path = folder / f"agile-sim-{image_type:04x}-{version:08x}.ota"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(OTAImage(header=header, subelements=[element]).serialize())
    return path
