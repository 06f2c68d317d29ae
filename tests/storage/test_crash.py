"""kill -9 of the storage process during sustained ingest, in a real gateway process tree."""

import json
import os
import signal
import time

from services.bus import connect
from services.storage.store import Store
from tests.devicemanager_helpers import listen_records
from tests.helpers import THERMOMETER, dm, eventually, storage

THERMO = "dummyD00000000001"
COMPONENTS = ("temperature", "humidity")
FLUSH_S = 0.5


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_kill_9_during_ingest_loses_at_most_the_unflushed_batch(gateway_factory):
    gw = gateway_factory(
        "dummy:record-interval=0.01",
        f"storage:flush-interval={FLUSH_S}",
        "storage:resubscribe-interval=0.2",
    )
    bus = await connect(gw.address)
    seen = await listen_records(bus)
    await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    for component in COMPONENTS:
        await storage(bus, "SetPolicy", "ssa{sv}", THERMO, component, {})

    async def recording() -> bool:
        (stats,) = await storage(bus, "Stats")
        return stats["subscribed"].value == len(COMPONENTS)

    def storage_pid() -> int | None:
        status = json.loads((gw.state_dir / "runtime.json").read_text())
        return status["services"]["storage"]["pid"]

    async def more_records(n: int) -> None:
        target = seen.qsize() + n

        async def enough() -> bool:
            return seen.qsize() >= target

        await eventually(enough)

    kills = []  # (killed, recording again): records sent in between may be lost
    for more in (260, 154, 210):  # records between kills: other moments of the flush cycle
        await eventually(recording)
        await more_records(more)
        pid = storage_pid()
        killed = now_ms()
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda old=pid: _restarted(storage_pid(), old))
        await eventually(recording)
        kills.append((killed, now_ms()))
    await more_records(200)
    bus.disconnect()
    gw.stop()  # SIGTERM: the storage process flushes what it holds

    records = []
    while not seen.empty():
        records.append(seen.get_nowait())
    store = Store(gw.state_dir / "storage")
    for stream in store.streams.values():
        for info in stream.segments.values():
            assert len(stream.columns(info)) == info.count > 0  # every segment reads
    for component in COMPONENTS:
        kept = {r.last_update for r in store.query(THERMO, component, 0, 2**62)}
        sent = [r.last_update for r in records if r.component_id == component]
        lost = [t for t in sent if t not in kept]
        assert len(sent) > 300
        # What a kill loses is what had not been flushed yet: the records after the
        # last one kept before it, up to the moment storage records again. Everything
        # flushed before a kill, and everything between kills, is kept.
        windows = [
            (max((k for k in kept if k < killed), default=0), back) for killed, back in kills
        ]
        for t in lost:
            assert any(flushed < t <= back for flushed, back in windows), (t, windows)
        print(f"{component}: {len(sent)} sent, {len(lost)} lost over {len(kills)} kills")


async def _restarted(pid: int | None, old: int) -> bool:
    return pid is not None and pid != old
