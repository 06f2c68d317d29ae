"""Device firmware over the air, end to end on the virtual radio: zigpy's OTA serves an
image from the local folder; the devices' OTA clients pull it block by block at their
own pace, resume a download cut off, and a sleepy one is served when it wakes."""

import pytest
import zigpy.types as t

from services import contract as c
from services.zigbee.sim.devices import FIRST_FIRMWARE, climate_sensor, smart_plug
from tests.helpers import eventually
from tests.zigbee.network import CLIMATE, PLUG, joined, ota_file

NEW = FIRST_FIRMWARE + 1
PLUG_IMAGE, CLIMATE_IMAGE = 0x0201, 0x0202


async def status(adapter, address: str) -> dict:
    return {k: v.value for k, v in (await adapter.firmware_status(address)).items()}


async def firmware_reaches(adapter, address: str, state: str, timeout: float = 90) -> dict:
    async def reached():
        now = await status(adapter, address)
        return now if now["State"] == state else None

    return await eventually(reached, timeout=timeout, interval=0.2)


async def test_a_plug_cut_off_halfway_resumes_and_runs_the_new_firmware(zigbee_factory, tmp_path):
    plug = smart_plug(2, report_interval_s=0.2)
    plug.ota.block_interval_s = 0.02
    adapter = await zigbee_factory(
        devices=[plug], ota_folder=str(tmp_path / "ota"), ota_stall_s=1.5
    )
    await adapter.permit(30)
    await joined(adapter, 1)
    before = await eventually(lambda: status(adapter, PLUG))  # its version, read at join
    assert before["Version"] == FIRST_FIRMWARE and before["Available"] == 0

    image = ota_file(tmp_path / "ota", PLUG_IMAGE, NEW, size=3_000)
    assert (await status(adapter, PLUG))["Available"] == NEW
    await adapter.update_firmware(PLUG)

    async def halfway():
        return len(plug.ota.data) >= image.stat().st_size // 2

    await eventually(halfway, timeout=60, interval=0.05)
    plug.present = False  # it drops off the air mid-download
    cut = await firmware_reaches(adapter, PLUG, "interrupted", timeout=30)
    kept = len(plug.ota.data)
    assert 0 < cut["Done"] < image.stat().st_size and kept > 0
    asked_before = plug.ota.blocks_asked

    plug.present = True  # back: the next frame it sends restarts the update
    adapter.app._announce(plug)
    done = await firmware_reaches(adapter, PLUG, "done", timeout=120)
    assert done["Target"] == NEW and plug.ota.version == NEW
    # Resumed where it stopped: the blocks after the cut cover what was left, not the
    # whole image again (50 bytes a block; a retried block or two aside).
    left = image.stat().st_size - kept
    assert plug.ota.blocks_asked - asked_before <= left // 50 + 4
    assert (await status(adapter, PLUG))["Version"] == NEW


async def test_a_sleepy_sensor_is_updated_when_it_wakes(zigbee_factory, tmp_path):
    sensor = climate_sensor(1, report_interval_s=0.5, sleep_s=3.0)
    sensor.ota.block_interval_s = 0.02
    adapter = await zigbee_factory(devices=[sensor], ota_folder=str(tmp_path / "ota"))
    await adapter.permit(30)
    await joined(adapter, 1)
    await eventually(lambda: status(adapter, CLIMATE))
    ota_file(tmp_path / "ota", CLIMATE_IMAGE, NEW)
    radio = adapter.app

    async def asleep():
        return radio.asleep(sensor)

    await eventually(asleep, timeout=60, interval=0.05)
    await adapter.update_firmware(CLIMATE)
    queued = await status(adapter, CLIMATE)
    assert queued["State"] == "queued" and "wake" in queued["Said"]
    done = await firmware_reaches(adapter, CLIMATE, "done", timeout=120)
    assert done["Target"] == NEW and sensor.ota.version == NEW
    assert radio.devices[t.EUI64.convert(CLIMATE)].is_initialized


async def test_an_image_for_another_device_or_an_older_one_is_not_offered(zigbee_factory, tmp_path):
    adapter = await zigbee_factory(ota_folder=str(tmp_path / "ota"))
    await adapter.permit(30)
    await joined(adapter)
    await eventually(lambda: status(adapter, PLUG))
    ota_file(tmp_path / "ota", CLIMATE_IMAGE, NEW)  # the climate sensor's, not the plug's
    ota_file(tmp_path / "ota", PLUG_IMAGE, FIRST_FIRMWARE - 1)  # older than it runs
    assert (await status(adapter, PLUG))["Available"] == 0
    with pytest.raises(c.NoResult, match="no newer firmware"):
        await adapter.update_firmware(PLUG)
