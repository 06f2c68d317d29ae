"""ZigBee fixtures: zigpy on the virtual radio, in a private state folder."""

import contextlib
from pathlib import Path

import pytest

from services.zigbee.adapter import ZigBeeAdapter
from services.zigbee.sim.devices import population


@pytest.fixture
async def zigbee_factory(tmp_path: Path):
    """Adapters on the virtual radio; `faults` adds the lossy/dropping/leaving devices."""
    started: list[ZigBeeAdapter] = []

    async def start(
        faults: bool = False,
        state_dir: Path | None = None,
        devices=None,
        radio_file: Path | None = None,
        **kw,
    ) -> ZigBeeAdapter:
        """`radio_file`: the virtual stick's NVRAM (another file: another stick)."""
        sim = {"devices": devices or population(faults=faults, report_interval_s=0.2)}
        if radio_file is not None:
            sim["nvram"] = str(radio_file)
        adapter = ZigBeeAdapter(state_dir or tmp_path / "state", sim=sim, **kw)
        await adapter.start()
        started.append(adapter)
        return adapter

    yield start
    for adapter in started:
        with contextlib.suppress(Exception):  # some tests stop theirs themselves
            await adapter.stop()
