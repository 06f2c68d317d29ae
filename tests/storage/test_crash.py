"""kill -9 of the storage process during sustained ingest, in a real gateway process tree."""

import asyncio
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
# A flush starts FLUSH_S after the previous one ended and takes a few ms (fsyncs):
# a record can wait that long, plus signal delivery, before it is on disk.
ALLOWED_LOSS_MS = int(FLUSH_S * 1000) + 250


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

    windows = []  # (kill, recording again): records sent in between may be lost
    for delay in (1.3, 0.77, 1.05):  # different moments of the flush cycle
        await eventually(recording)
        await asyncio.sleep(delay)
        status = json.loads((gw.state_dir / "runtime.json").read_text())
        killed = now_ms()
        os.kill(status["services"]["storage"]["pid"], signal.SIGKILL)
        await asyncio.sleep(0.2)
        await eventually(recording)
        windows.append((killed, now_ms()))
    await asyncio.sleep(1)
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
        for t in lost:
            assert any(k - ALLOWED_LOSS_MS <= t <= back for k, back in windows), (t, windows)
        print(f"{component}: {len(sent)} sent, {len(lost)} lost over {len(windows)} kills")
