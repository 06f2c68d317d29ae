"""The bridge's queue on disk: in order, bounded, and still there after a restart."""

from pathlib import Path

from services.bridge.spool import Spool


def _messages(start: int, n: int) -> list[tuple[str, bytes, bool]]:
    return [(f"t/{i}", str(i).encode(), i % 2 == 0) for i in range(start, start + n)]


def test_messages_leave_in_order_and_only_once_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "q.db", limit=1000)
    spool.put(_messages(0, 10))
    head = spool.head(4)
    assert [m.payload for m in head] == [b"0", b"1", b"2", b"3"]
    assert [m.retain for m in head] == [True, False, True, False]
    assert spool.head(4) == head  # not acknowledged: still first
    spool.remove_through(head[-1].seq)
    assert [m.topic for m in spool.head(100)] == [f"t/{i}" for i in range(4, 10)]
    assert spool.length == 6


def test_the_queue_survives_a_restart_and_keeps_counting(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "q.db", limit=1000)
    spool.put(_messages(0, 5))
    spool.remove_through(spool.head(2)[-1].seq)
    # no close: as if killed after the write
    again = Spool(tmp_path / "q.db", limit=1000)
    assert again.length == 3
    again.put(_messages(5, 2))
    assert [m.payload for m in again.head(10)] == [b"2", b"3", b"4", b"5", b"6"]
    seqs = [m.seq for m in again.head(10)]
    assert seqs == sorted(seqs)


def test_past_its_limit_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "q.db", limit=100)
    spool.put(_messages(0, 80))
    spool.put(_messages(80, 50))
    assert spool.length == 100 and spool.dropped == 30
    assert spool.head(1)[0].payload == b"30"
    spool.close()
    assert Spool(tmp_path / "q.db", limit=100).dropped == 30
