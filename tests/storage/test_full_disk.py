"""Storage on a disk that fills up: it says so, keeps answering, pauses recording, and
once space returns takes what it missed from the replay: nothing lost, nothing twice."""

import pytest

from services.bus import connect
from services.storage.store import Store
from tests.helpers import THERMOMETER, device, dm, eventually, fill_up, storage

THERMO = THERMOMETER.device_id
WHILE_FULL = 500  # records produced while the disk is full: 5 s at 100 records/s


@pytest.mark.timeout(300)
async def test_a_full_disk_pauses_recording_and_loses_nothing_when_space_returns(
    gateway_factory, tmpfs
):
    disk = tmpfs("2m")
    gw = gateway_factory(
        "dummy:record-interval=0.01",
        f"storage:folder={disk / 'storage'}",
        "storage:flush-interval=0.2",
        "storage:resubscribe-interval=0.2",
    )
    bus = await connect(gw.address)
    await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    await storage(bus, "SetPolicy", "ssa{sv}", THERMO, "temperature", {})

    async def stats() -> dict:
        (wire,) = await storage(bus, "Stats")
        return {k: v.value for k, v in wire.items()}

    async def numbered() -> int:
        (bounds,) = await device(bus, THERMO, "Sequence", "s", "temperature")
        return bounds[1]

    async def written() -> bool:
        return (await stats())["records_written"] > 100

    await eventually(written)
    ballast = fill_up(disk)

    async def paused() -> dict | None:
        s = await stats()
        return s if s["paused"] else None

    said = await eventually(paused)
    assert "No space left on device" in said["error"]
    target = await numbered() + WHILE_FULL

    async def produced() -> bool:
        return await numbered() >= target

    await eventually(produced)
    (rows,) = await storage(bus, "Query", "ssxxu", THERMO, "temperature", 0, 2**62, 0)
    assert rows  # queries are answered while the disk is full
    s = await stats()
    assert s["paused"] and s["records_unflushed"] == said["records_unflushed"]  # no growth

    ballast.unlink()
    (replay,) = await device(bus, THERMO, "Replay", "st", "temperature", await numbered() - 1)
    newest_ms = replay[0][0][5]

    async def caught_up() -> bool:
        s = await stats()
        (latest,) = await storage(bus, "Latest", "ss", THERMO, "temperature")
        return not s["paused"] and not s["error"] and latest[5] >= newest_ms

    await eventually(caught_up)
    assert (await stats())["replay_numbers_skipped"] == 0
    rows, after = [], 0
    while batch := (await device(bus, THERMO, "Replay", "st", "temperature", after))[0]:
        rows += batch
        after = batch[-1][1]
    bus.disconnect()
    gw.stop()

    assert [seq for _, seq in rows] == list(range(1, len(rows) + 1))
    wanted = [(wire[5], wire[2]) for wire, _ in rows]
    store = Store(disk / "storage", readonly=True)
    kept = [(r.last_update, r.value) for r in store.query(THERMO, "temperature", 0, 2**62)]
    assert len(wanted) > WHILE_FULL
    assert kept[: len(wanted)] == wanted  # every record, once, in order
    assert "recording paused" in (gw.state_dir / "logs" / "storage.log").read_text()
    print(f"{len(wanted)} records, {WHILE_FULL}+ made while the disk was full: 0 lost, 0 repeated")
