"""kill -9 of the storage process during sustained ingest, in a real gateway process tree:
with the replay, what a kill cuts short comes back, and nothing twice."""

import json
import os
import signal

import pytest

from services.bus import connect
from services.storage.store import Store
from tests.helpers import THERMOMETER, device, dm, eventually, storage

THERMO = THERMOMETER.device_id
COMPONENTS = ("temperature", "humidity")
KILLS = 5
RECORDS_BETWEEN_KILLS = 1_200  # 12 s of each stream at 100 records/s: 60 s in all


@pytest.mark.timeout(400)
async def test_kill_9_of_storage_five_times_at_200_records_per_s_loses_and_repeats_nothing(
    gateway_factory,
):
    gw = gateway_factory(
        "dummy:record-interval=0.01",  # two streams: 200 records/s
        "storage:flush-interval=0.5",
        "storage:resubscribe-interval=0.2",
    )
    bus = await connect(gw.address)
    await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    for component in COMPONENTS:
        await storage(bus, "SetPolicy", "ssa{sv}", THERMO, component, {})

    async def numbered(component: str) -> int:
        (bounds,) = await device(bus, THERMO, "Sequence", "s", component)
        return bounds[1]

    async def recording() -> bool:
        (stats,) = await storage(bus, "Stats")
        return stats["subscribed"].value == len(COMPONENTS)

    def storage_pid() -> int | None:
        status = json.loads((gw.state_dir / "runtime.json").read_text())
        return status["services"]["storage"]["pid"]

    for _ in range(KILLS):
        await eventually(recording)
        target = await numbered("temperature") + RECORDS_BETWEEN_KILLS

        async def produced(target: int = target) -> bool:
            return await numbered("temperature") >= target

        await eventually(produced)
        pid = storage_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda old=pid: _restarted(storage_pid(), old))
    await eventually(recording)

    # What the device manager numbered, against what Storage has once it caught up.
    produced_records: dict[str, list[tuple[int, str]]] = {}
    for component in COMPONENTS:
        rows, after = [], 0
        while batch := (await device(bus, THERMO, "Replay", "st", component, after))[0]:
            rows += batch
            after = batch[-1][1]
        assert [seq for _, seq in rows] == list(range(1, len(rows) + 1))  # none skipped
        produced_records[component] = [(wire[5], wire[2]) for wire, _ in rows]
        newest = rows[-1][0][5]

        async def caught_up(component: str = component, newest: int = newest) -> bool:
            (latest,) = await storage(bus, "Latest", "ss", THERMO, component)
            return latest[5] >= newest

        await eventually(caught_up)
    (stats,) = await storage(bus, "Stats")
    assert stats["replay_numbers_skipped"].value == 0
    bus.disconnect()
    gw.stop()  # SIGTERM: the storage process flushes what it holds

    store = Store(gw.state_dir / "storage")
    for component in COMPONENTS:
        wanted = produced_records[component]
        kept = [(r.last_update, r.value) for r in store.query(THERMO, component, 0, 2**62)]
        assert len(wanted) > KILLS * RECORDS_BETWEEN_KILLS
        assert kept[: len(wanted)] == wanted  # every record, once, in order
        print(f"{component}: {len(wanted)} records over {KILLS} kills: 0 lost, 0 repeated")


async def _restarted(pid: int | None, old: int) -> bool:
    return pid is not None and pid != old


async def test_kill_9_of_the_device_manager_is_a_gap_that_storage_says(gateway_factory):
    """The records the device manager had numbered but not kept are gone with it: the
    numbers say so, Storage counts them and logs it, and recording goes on."""
    gw = gateway_factory("dummy:record-interval=0.01", "storage:resubscribe-interval=0.2")
    bus = await connect(gw.address)
    await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    await storage(bus, "SetPolicy", "ssa{sv}", THERMO, "temperature", {})

    async def stored() -> int:
        (stats,) = await storage(bus, "Stats")
        return stats["records_written"].value + stats["records_unflushed"].value

    async def some_stored() -> bool:
        return await stored() > 100

    await eventually(some_stored)
    status = json.loads((gw.state_dir / "runtime.json").read_text())
    os.kill(status["services"]["devicemanager"]["pid"], signal.SIGKILL)

    async def gap_said() -> bool:
        (stats,) = await storage(bus, "Stats")
        return stats["replay_numbers_skipped"].value > 0

    await eventually(gap_said)
    before = await stored()

    async def recording_again() -> bool:
        return await stored() > before + 100

    await eventually(recording_again)
    bus.disconnect()
    assert "are not in the replay" in (gw.state_dir / "logs" / "storage.log").read_text()
