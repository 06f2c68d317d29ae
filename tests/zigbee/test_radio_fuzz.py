"""Fuzzed radio input: thousands of generated ZCL frames — random bytes, real headers
with random payloads, attribute reports of every data type with cut or oversized
values — sent to the coordinator as if a joined device had sent them. Each is logged
and skipped; the adapter keeps working (the device's real reports still arrive)."""

import asyncio
import gc
import logging
import os

import zigpy.types as t
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.zigbee.network import CLIMATE, TEMPERATURE, reporting

FRAMES = int(os.environ.get("AGILE_FUZZ_FRAMES", "10000"))
CLUSTERS = [0x0000, 0x0001, 0x0006, 0x0008, 0x0402, 0x0405, 0x0406, 0x0500, 0xFFFF]
ZCL_TYPES = [0x10, 0x18, 0x20, 0x21, 0x23, 0x28, 0x29, 0x2B, 0x30, 0x39, 0x41, 0x42, 0xE2, 0xFF]


def _report(attr: int, zcl_type: int, value: bytes) -> bytes:
    return bytes([0x18, 0x01, 0x0A]) + attr.to_bytes(2, "little") + bytes([zcl_type]) + value


FRAME = st.one_of(
    st.binary(max_size=96),  # anything
    st.builds(  # a ZCL header (any frame control, command) then anything
        lambda fc, cmd, rest: bytes([fc, 0x01, cmd]) + rest,
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=64),
    ),
    st.builds(  # an attribute report whose value is cut short, too long or of a wrong type
        _report,
        st.sampled_from([0x0000, 0x0001, 0x0021, 0x4000, 0xFFFF]),
        st.sampled_from(ZCL_TYPES),
        st.binary(max_size=300),
    ),
)


def generated_frames(n: int) -> list[tuple[int, bytes]]:
    """n (cluster, frame) pairs drawn by hypothesis, the same on every run."""
    drawn: list[tuple[int, bytes]] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None)
    @given(st.sampled_from(CLUSTERS), FRAME)
    def collect(cluster: int, frame: bytes) -> None:
        drawn.append((cluster, frame))

    collect()
    return drawn


async def test_fuzzed_zcl_frames_are_logged_and_skipped(zigbee_factory, caplog):
    adapter, reports = await reporting(zigbee_factory)
    await asyncio.wait_for(reports.get(), 60)
    gc.collect()  # what earlier tests left behind is not this adapter's doing
    caplog.clear()
    caplog.set_level(logging.WARNING)
    frames = generated_frames(FRAMES)
    ieee = t.EUI64.convert(CLIMATE)
    for cluster, frame in frames:
        adapter.app.inject(ieee, 1, cluster, frame)
    while not reports.empty():
        reports.get_nowait()
    value = await asyncio.wait_for(reports.get(), 60)  # real reports still arrive
    assert 1500 <= int.from_bytes(value, "little", signed=True) <= 3000
    assert len(adapter.visible_devices()) == 5
    assert int.from_bytes(await adapter.read(CLIMATE, TEMPERATURE), "little", signed=True) >= 1500
    crashes = [r for r in caplog.records if r.exc_info]  # a handler raised
    assert not crashes, crashes[0].getMessage()
    print(f"{len(frames)} fuzzed ZCL frames: 0 crashes, the adapter kept working")
