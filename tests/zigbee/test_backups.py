"""The ZigBee network's backups: taken at formation and on every change, in the open
coordinator format, private; a new stick takes the network over from them, a restore
puts one onto a wiped radio, and the frame counter moves on as zigpy moves it."""

import asyncio
import json
import stat

import pytest

from services import contract as c
from services.zigbee.backups import PREFIX
from services.zigbee.sim.radio import COUNTER_JUMP
from tests.helpers import eventually
from tests.zigbee.network import CLIMATE, INTERVIEW, TEMPERATURE, joined


async def backed_up(adapter, devices: int) -> list:
    async def kept():
        files = adapter.backups.files()
        return files if files and files[-1].devices == devices else None

    return await eventually(kept, timeout=30)


async def reports_again(adapter, reports: asyncio.Queue, count: int = 3) -> None:
    for _ in range(count):
        address, value = await asyncio.wait_for(reports.get(), 30)
        assert address == CLIMATE and len(value) == 2


def listen(adapter) -> asyncio.Queue:
    reports: asyncio.Queue = asyncio.Queue()
    adapter.on_record = lambda address, profile, value: reports.put_nowait((address, value))
    return reports


async def test_the_network_is_backed_up_at_formation_and_after_joins_in_the_open_format(
    zigbee_factory, tmp_path
):
    adapter = await zigbee_factory()
    (formed,) = await backed_up(adapter, 0)
    await adapter.permit(30)
    await joined(adapter)
    files = await backed_up(adapter, 5)
    assert files[0] == formed and len(files) == 2

    folder = tmp_path / "state" / "zigbee" / "backups"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # it holds the network key
    document = json.loads((folder / files[-1].name).read_text())
    assert document["metadata"]["format"] == "zigpy/open-coordinator-backup"
    network = adapter.app.state.network_info
    assert document["pan_id"] == network.pan_id.serialize()[::-1].hex()
    assert document["network_key"]["key"] == network.network_key.key.serialize().hex()
    listed = {d["ieee_address"] for d in document["devices"]}
    assert CLIMATE.replace(":", "") in listed and len(listed) == 5


async def test_a_new_stick_takes_the_network_over_without_pairing(zigbee_factory, tmp_path):
    state = tmp_path / "state"
    adapter = await zigbee_factory(state_dir=state)
    await adapter.permit(30)
    await joined(adapter)
    await backed_up(adapter, 5)
    network = adapter.app.state.network_info
    counter = adapter.app.tx_counter
    await adapter.stop()

    # Another stick: an empty NVRAM. The gateway's own backup goes onto it at start.
    again = await zigbee_factory(state_dir=state, radio_file=tmp_path / "new-stick.json")
    radio = again.app
    assert radio.nvram_path.name == "new-stick.json"
    assert radio.state.network_info.extended_pan_id == network.extended_pan_id
    assert radio.state.network_info.network_key.key == network.network_key.key
    assert radio.tx_counter >= counter + 10_000  # as zigpy advances it on a restore
    reports = listen(again)
    await again.subscribe(CLIMATE, TEMPERATURE)
    await reports_again(again, reports)
    assert not any(radio.sent[(CLIMATE, cmd)] for cmd in INTERVIEW)


async def test_a_backup_restored_onto_a_wiped_radio_brings_every_device_back(zigbee_factory):
    adapter = await zigbee_factory(request_timeout_s=2.0)
    await adapter.permit(30)
    await joined(adapter)
    await adapter.permit(0)
    reports = listen(adapter)
    await adapter.subscribe(CLIMATE, TEMPERATURE)
    await reports_again(adapter, reports, 1)
    taken = await adapter.take_backup()
    text = adapter.backups.read(taken.name)
    counter = json.loads(text)["network_key"]["frame_counter"]

    await adapter.app.reset_network_info()  # the stick's NVRAM erased (a new firmware)
    before = await adapter.restore(text)

    assert before is None  # the wiped radio held nothing to keep
    radio = adapter.app
    assert radio.tx_counter >= counter + 10_000
    assert len(adapter.visible_devices()) == 5  # nobody paired again
    while not reports.empty():
        reports.get_nowait()
    await reports_again(adapter, reports)  # the subscription holds across the restore
    assert not any(radio.sent[(CLIMATE, cmd)] for cmd in INTERVIEW)
    assert len(await adapter.read(CLIMATE, TEMPERATURE)) == 2


async def test_a_stick_restored_without_moving_its_frame_counter_on_goes_unheard(
    zigbee_factory,
):
    """Why the counter moves on: devices drop frames whose counter they have seen."""
    adapter = await zigbee_factory(request_timeout_s=1.0)
    await adapter.permit(30)
    await joined(adapter)
    await adapter.permit(0)
    taken = adapter.backups.read((await adapter.take_backup()).name)
    for _ in range(5):
        await adapter.read(CLIMATE, TEMPERATURE)  # frames the device has now seen

    from services.zigbee.backups import parse

    await adapter.app.backups.restore_backup(parse(taken), counter_increment=0)
    with pytest.raises(c.NoResult, match="did not answer"):
        await adapter.read(CLIMATE, TEMPERATURE)
    await adapter.app.backups.restore_backup(parse(taken))  # zigpy's own: 10,000 on
    assert len(await adapter.read(CLIMATE, TEMPERATURE)) == 2


async def test_the_radio_resumes_its_counter_ahead_of_every_frame_it_sent(zigbee_factory, tmp_path):
    state = tmp_path / "state"
    adapter = await zigbee_factory(state_dir=state)
    await adapter.permit(30)
    await joined(adapter)
    sent = adapter.app.tx_counter
    # Killed: nothing written since the last jump.
    nvram = json.loads(adapter.app.nvram_path.read_text())
    assert sent < nvram["counter_written"] <= sent + COUNTER_JUMP
    await adapter.stop()
    again = await zigbee_factory(state_dir=state)
    assert again.app.tx_counter >= sent
    assert len(await again.read(CLIMATE, TEMPERATURE)) == 2


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("not json", "not a ZigBee network backup", id="not-json"),
        pytest.param('{"metadata": {}}', "not a ZigBee network backup", id="no-network"),
        pytest.param("[]", "not a ZigBee network backup", id="a-list"),
        pytest.param("x" * (1 << 21), "at most", id="two-megabytes"),
    ],
)
async def test_what_is_not_a_backup_is_refused_and_the_network_stays(zigbee_factory, text, error):
    adapter = await zigbee_factory()
    pan_id = adapter.app.state.network_info.pan_id
    with pytest.raises(c.InvalidArgs, match=error):
        await adapter.restore(text)
    assert adapter.app.state.network_info.pan_id == pan_id


async def test_only_the_newest_backups_are_kept_and_a_bad_file_is_skipped(
    zigbee_factory, tmp_path, caplog
):
    adapter = await zigbee_factory(backups_kept=3)
    await backed_up(adapter, 0)
    folder = tmp_path / "state" / "zigbee" / "backups"
    (folder / f"{PREFIX}00000000T000000000Z.json").write_text("{broken")
    for _ in range(4):
        await adapter.take_backup()
    names = [f.name for f in adapter.backups.files()]
    assert len(names) == 3 and names == sorted(names)
    assert "not a readable ZigBee backup" in caplog.text
    with pytest.raises(c.InvalidArgs, match="no ZigBee backup"):
        adapter.backups.read("../virtual-radio.json")


async def test_with_automatic_backups_off_only_a_requested_one_is_written(zigbee_factory):
    adapter = await zigbee_factory(backups_kept=0)
    await adapter.permit(30)
    await joined(adapter)
    await adapter._backup_after_change()  # what a join would have taken
    assert adapter.backups.files() == []
    taken = await adapter.take_backup()
    assert [f.name for f in adapter.backups.files()] == [taken.name] and taken.devices == 5
