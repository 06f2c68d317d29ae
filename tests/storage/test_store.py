"""The store on its own: layout, values, ranges, downsampling, retention, encryption, faults."""

import os
from pathlib import Path

import pytest

from services.contract import RecordObject
from services.storage.crypto import Sealer, TamperedSegment
from services.storage.store import StorageError, Store
from tests.helpers import fill_up

T0 = 1_700_000_000_000
HOUR = 3_600_000


def rec(t: int, value: str = "21.50", dev: str = "dummyD0", comp: str = "temperature"):
    return RecordObject(dev, comp, value, "°C", "float", t)


def fill(store: Store, n: int, step_ms: int = 1000, start: int = T0, **kw) -> None:
    for i in range(n):
        store.append(rec(start + i * step_ms, f"{20 + (i % 50) / 10:.2f}", **kw))
    store.flush()


def segment_files(root: Path) -> list[Path]:
    return sorted(root.glob("streams/*/*/*.seg"))


def test_values_round_trip_exactly(tmp_path: Path):
    store = Store(tmp_path)
    values = ["21.50", "-0.00", "7", "-12", "3.14159", "1e-05", "on", "", "ünïcode", "007", "nan"]
    for i, v in enumerate(values):
        store.append(rec(T0 + i, v))
    store.flush()
    reopened = Store(tmp_path)
    got = reopened.query("dummyD0", "temperature", 0, 2**62)
    assert [r.value for r in got] == values
    assert got[0] == rec(T0, "21.50")


def test_query_returns_the_range_in_time_order_across_segments(tmp_path: Path):
    store = Store(tmp_path, segment_records=100)
    fill(store, 1000)
    got = store.query("dummyD0", "temperature", T0 + 250_000, T0 + 749_000)
    assert [r.last_update for r in got] == list(range(T0 + 250_000, T0 + 750_000, 1000))
    assert store.query("dummyD0", "temperature", T0 + 5, T0 + 6) == []
    assert store.query("nobody", "temperature", 0, 2**62) == []
    assert store.stream_infos()[0].segments == 10


def test_late_records_are_merged_in_time_order(tmp_path: Path):
    store = Store(tmp_path, segment_records=10)
    fill(store, 30)
    store.append(rec(T0 + 4_500, "99"))
    store.flush()
    times = [r.last_update for r in store.query("dummyD0", "temperature", 0, 2**62)]
    assert times == sorted(times) and len(times) == 31


def test_segments_are_cut_at_partition_boundaries(tmp_path: Path):
    store = Store(tmp_path, segment_ms=HOUR)
    fill(store, 3 * 60, step_ms=60_000, start=T0 - T0 % HOUR)  # three hours, one per minute
    assert len(segment_files(tmp_path)) == 3


def test_a_flush_rewrites_only_the_newest_segment(tmp_path: Path):
    store = Store(tmp_path, segment_records=100)
    fill(store, 450)
    before = {p.name: p.stat().st_mtime_ns for p in segment_files(tmp_path)}
    fill(store, 10, start=T0 + 450_000)
    after = {p.name: p.stat().st_mtime_ns for p in segment_files(tmp_path)}
    changed = [n for n in after if before.get(n) != after[n]]
    assert changed == [max(after)]


def test_downsampling_keeps_spikes_and_dips(tmp_path: Path):
    store = Store(tmp_path)
    for i in range(86_400 // 10):
        value = "20.00"
        if i == 1234:
            value = "95.00"
        elif i == 5678:
            value = "-40.00"
        store.append(rec(T0 + i * 10_000, value))
    store.flush()
    got = store.query("dummyD0", "temperature", 0, 2**62, max_points=500)
    assert len(got) <= 500
    values = [float(r.value) for r in got]
    assert max(values) == 95.0 and min(values) == -40.0
    times = [r.last_update for r in got]
    assert times == sorted(times)
    assert times[0] == T0 and times[-1] == T0 + (86_400 // 10 - 1) * 10_000


def test_latest_and_stream_info(tmp_path: Path):
    store = Store(tmp_path)
    fill(store, 10)
    store.append(rec(T0 + 60_000, "30.25"))  # not yet flushed: still visible
    assert store.latest("dummyD0", "temperature") == rec(T0 + 60_000, "30.25")
    (info,) = store.stream_infos()
    assert (info.count, info.first_ms, info.last_ms) == (11, T0, T0 + 60_000)
    assert store.latest("dummyD0", "humidity") is None


def test_retention_drops_whole_segments_and_trims_the_boundary(tmp_path: Path):
    store = Store(tmp_path, segment_records=100)
    fill(store, 1000)
    cutoff = T0 + 250_500
    removed = store.expire("dummyD0", "temperature", cutoff)
    assert removed == 251
    got = store.query("dummyD0", "temperature", 0, 2**62)
    assert got[0].last_update == T0 + 251_000 and len(got) == 749
    assert len(segment_files(tmp_path)) == 8  # two whole segments gone, one trimmed
    reopened = Store(tmp_path)
    assert reopened.stream_infos()[0].count == 749


def test_encrypted_segments_round_trip_and_hide_their_contents(tmp_path: Path):
    key = os.urandom(32)
    store = Store(tmp_path, Sealer(key))
    store.set_encrypt("dummyD0", "temperature", True)
    fill(store, 100)
    for path in segment_files(tmp_path):
        blob = path.read_bytes()
        assert b"temperature" not in blob and b"20.5" not in blob and b"_default" not in blob
    reopened = Store(tmp_path, Sealer(key))
    assert len(reopened.query("dummyD0", "temperature", 0, 2**62)) == 100
    assert reopened.stream_infos()[0].encrypted


def test_the_wrong_key_reads_nothing(tmp_path: Path):
    store = Store(tmp_path, Sealer(os.urandom(32)))
    store.set_encrypt("dummyD0", "temperature", True)
    fill(store, 100)
    other = Store(tmp_path, Sealer(os.urandom(32)))
    with pytest.raises(TamperedSegment, match="authentication failed"):
        other.query("dummyD0", "temperature", 0, 2**62)
    with pytest.raises(TamperedSegment, match="no key"):
        Store(tmp_path).query("dummyD0", "temperature", 0, 2**62)


@pytest.mark.parametrize("encrypted", [True, False])
def test_a_tampered_segment_is_reported_not_returned(tmp_path: Path, encrypted: bool):
    sealer = Sealer(os.urandom(32))
    store = Store(tmp_path, sealer, segment_records=100)
    store.set_encrypt("dummyD0", "temperature", encrypted)
    fill(store, 300)
    victim = segment_files(tmp_path)[1]
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0x01 if encrypted else ord("[") ^ ord("{")  # same size
    victim.write_bytes(bytes(blob))
    reopened = Store(tmp_path, sealer)
    assert len(reopened.query("dummyD0", "temperature", T0, T0 + 99_000)) == 100
    if not encrypted:
        with pytest.raises(TamperedSegment):
            reopened.query("dummyD0", "temperature", 0, 2**62)
        return
    # An encrypted stream's index is authenticated: the segment is refused (said in the
    # log and in the stream's figures, and at every start), never read.
    for store in (reopened, Store(tmp_path, sealer)):
        assert len(store.query("dummyD0", "temperature", 0, 2**62)) == 200
        assert store.stream_infos()[0].refused == 1


def test_a_segment_swapped_for_another_is_detected(tmp_path: Path):
    sealer = Sealer(os.urandom(32))
    store = Store(tmp_path, sealer, segment_records=100)
    store.set_encrypt("dummyD0", "temperature", True)
    fill(store, 200)
    first, second = segment_files(tmp_path)
    first.write_bytes(second.read_bytes())
    reopened = Store(tmp_path, sealer)
    assert reopened.query("dummyD0", "temperature", 0, T0 + 50_000) == []
    assert reopened.stream_infos()[0].refused == 1


def test_leftovers_of_a_crash_are_cleaned_and_a_stale_index_is_rebuilt(tmp_path: Path):
    store = Store(tmp_path, segment_records=100)
    fill(store, 150)
    index = next(tmp_path.glob("streams/*/*/index.json"))
    stale = index.read_bytes()
    fill(store, 100, start=T0 + 150_000)
    index.write_bytes(stale)  # as if killed between the segment and the index write
    (index.parent / ".0000000000000-0.seg.tmp").write_bytes(b'{"_default": {"1": {"t": [')
    reopened = Store(tmp_path)
    assert reopened.stream_infos()[0].count == 250
    assert not list(index.parent.glob(".*.tmp"))


def test_a_full_disk_raises_keeps_everything_and_recovers(tmpfs):
    tiny_disk = tmpfs("256k")
    store = Store(tiny_disk / "store")
    fill(store, 1000)
    ballast = fill_up(tiny_disk)
    for i in range(5000):
        store.append(rec(T0 + 1_000_000 + i * 1000, "22.00"))
    with pytest.raises(StorageError, match="No space left"):
        store.flush()
    assert store.last_error and store.unflushed == 5000
    assert len(store.query("dummyD0", "temperature", 0, 2**62)) == 6000  # kept in memory
    assert len(Store(tiny_disk / "store").query("dummyD0", "temperature", 0, 2**62)) == 1000
    ballast.unlink()
    assert store.flush() == 5000
    assert store.last_error == "" and store.unflushed == 0
    assert len(Store(tiny_disk / "store").query("dummyD0", "temperature", 0, 2**62)) == 6000


def _batches(store: Store, batches: int, size: int) -> list[bytes]:
    """`batches` flushes of `size` numbered records; the segment's bytes after each."""
    seen = []
    for n in range(1, batches * size + 1):
        store.append(rec(T0 + n * 1000, f"{n}.25"), seq=n)
        if n % size == 0:
            store.flush()
            seen.append(segment_files(store.root)[0].read_bytes())
    return seen


def test_a_segment_cut_anywhere_in_its_last_batch_keeps_every_batch_before_it(tmp_path: Path):
    before, whole = _batches(Store(tmp_path), 4, 5)[-2:]
    (segment,) = segment_files(tmp_path)
    index = next(tmp_path.glob("streams/*/*/index.json"))
    index_bytes = index.read_bytes()
    start = len(before) - 2  # the last batch's chunk takes the place of the closing "}}"
    assert whole[:start] == before[:start]
    outcomes = set()
    for cut in range(start, len(whole)):
        segment.write_bytes(whole[:cut])
        reopened = Store(tmp_path)
        values = [r.value for r in reopened.query("dummyD0", "temperature", 0, 2**62)]
        n = len(values)
        assert n in (15, 20), f"cut at byte {cut} of {len(whole)}: {n} records read back"
        assert values == [f"{i}.25" for i in range(1, n + 1)]
        assert reopened.last_seq("dummyD0", "temperature") == n  # the replay brings the rest
        outcomes.add(n)
        segment.write_bytes(whole)
        index.write_bytes(index_bytes)
    assert outcomes == {15, 20}
    print(f"cut at each of {len(whole) - start} offsets: every whole batch kept, none half-read")

    segment.write_bytes(whole[: start + 40])
    reopened = Store(tmp_path)
    reopened.append(rec(T0 + 999_000, "1.5"), seq=21)
    reopened.flush()
    assert len(Store(tmp_path).query("dummyD0", "temperature", 0, 2**62)) == 16


def test_a_sealed_segment_cut_short_is_left_unread_and_replayed(tmp_path: Path):
    sealer = Sealer(os.urandom(32))
    store = Store(tmp_path, sealer)
    store.set_encrypt("dummyD0", "temperature", True)
    _batches(store, 2, 5)
    (segment,) = segment_files(tmp_path)
    whole = segment.read_bytes()
    segment.write_bytes(whole[:-1])
    reopened = Store(tmp_path, sealer)
    assert reopened.query("dummyD0", "temperature", 0, 2**62) == []
    assert reopened.last_seq("dummyD0", "temperature") == 0
    assert segment.read_bytes() == whole[:-1]  # left as it is, for whoever investigates


# -- an encrypted stream's segments are authenticated as a set -----------------------


def encrypted_store(tmp_path: Path, sealer: Sealer, n: int = 300) -> Store:
    store = Store(tmp_path, sealer, segment_records=100)
    store.set_encrypt("dummyD0", "temperature", True)
    fill(store, n)
    return store


def test_a_plain_segment_over_a_sealed_one_is_refused_not_read(tmp_path: Path):
    sealer = Sealer(os.urandom(32))
    encrypted_store(tmp_path, sealer)
    forger = Store(tmp_path / "forger", segment_records=100)  # plain, no key
    fill(forger, 100, start=T0 + 100_000, **{"dev": "dummyD0"})
    (forged,) = segment_files(tmp_path / "forger")
    victim = segment_files(tmp_path)[1]
    victim.write_bytes(forged.read_bytes().replace(b"21", b"99"))
    for store in (Store(tmp_path, sealer), Store(tmp_path, sealer)):  # and at every start
        values = {r.value for r in store.query("dummyD0", "temperature", 0, 2**62)}
        assert len(values) and not any(v.startswith("99") for v in values)
        (info,) = store.stream_infos()
        assert (info.count, info.refused, info.encrypted) == (200, 1, True)


def test_a_segment_of_another_stream_is_refused(tmp_path: Path):
    sealer = Sealer(os.urandom(32))
    store = encrypted_store(tmp_path, sealer, 100)
    store.set_encrypt("dummyD1", "temperature", True)
    fill(store, 100, start=T0 + 500_000, dev="dummyD1")
    theirs = next(tmp_path.glob("streams/dummyD1/temperature/*.seg"))
    ours = next(tmp_path.glob("streams/dummyD0/temperature/*.seg"))
    (ours.parent / theirs.name).write_bytes(theirs.read_bytes())
    reopened = Store(tmp_path, sealer)
    assert len(reopened.query("dummyD0", "temperature", 0, 2**62)) == 100
    assert reopened.stream_infos()[0].refused == 1


def test_an_older_copy_of_a_segment_is_refused(tmp_path: Path):
    sealer = Sealer(os.urandom(32))
    store = Store(tmp_path, sealer)
    store.set_encrypt("dummyD0", "temperature", True)
    older, _newer = _batches(store, 2, 5)
    (segment,) = segment_files(tmp_path)
    segment.write_bytes(older)  # sealed with the right key and name: it opens
    for reopened in (Store(tmp_path, sealer), Store(tmp_path, sealer)):
        assert reopened.query("dummyD0", "temperature", 0, 2**62) == []
        assert reopened.stream_infos()[0].refused == 1
        assert reopened.last_seq("dummyD0", "temperature") == 0  # the replay brings them


def test_a_deleted_middle_segment_is_said(tmp_path: Path, caplog):
    sealer = Sealer(os.urandom(32))
    encrypted_store(tmp_path, sealer)
    segment_files(tmp_path)[1].unlink()
    reopened = Store(tmp_path, sealer)
    assert reopened.stream_infos()[0].refused == 1
    assert "the segment is missing; refused" in caplog.text


def test_an_index_forged_or_put_back_plain_refuses_the_stream(tmp_path: Path):
    sealer = Sealer(os.urandom(32))
    encrypted_store(tmp_path, sealer)
    index = next(tmp_path.glob("streams/*/*/index.json"))
    sealed = index.read_bytes()
    index.write_bytes(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(TamperedSegment, match=r"index\.json: authentication failed"):
        Store(tmp_path, sealer).query("dummyD0", "temperature", 0, 2**62)
    index.write_text('{"segments": {}, "seq": 0}')  # as an older version would have
    with pytest.raises(TamperedSegment, match="a plain index where this store sealed one"):
        Store(tmp_path, sealer).query("dummyD0", "temperature", 0, 2**62)
