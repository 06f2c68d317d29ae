"""A bus that goes away under a connection leaves nothing for asyncio to complain
about later: its loss is seen even when no one waits for it (otherwise the
"Future exception was never retrieved" lands in whatever test runs at collection)."""

import asyncio
import gc
import logging
import time
from pathlib import Path

import pytest

from services.bus import connect
from services.busconfig import start_bus_daemon


async def test_a_bus_lost_under_a_connection_logs_nothing_when_collected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gc.collect()  # earlier tests' garbage (other connections) is not this test's to judge
    proc, address = start_bus_daemon(tmp_path / "bus")
    bus = await connect(address)
    proc.kill()
    proc.wait(5)
    deadline = time.monotonic() + 10
    while bus.connected:
        assert time.monotonic() < deadline, "the connection never saw its bus go"
        await asyncio.sleep(0.01)
    caplog.set_level(logging.ERROR, logger="asyncio")
    caplog.clear()
    del bus
    gc.collect()
    assert not [r.getMessage() for r in caplog.records if r.name == "asyncio"]
