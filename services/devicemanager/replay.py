"""The replay buffer: every record a Device produces gets the next sequence number of
its stream and is kept on disk for a while, so that a consumer that was away (Storage
or the MQTT bridge restarted, killed, or slow) asks for everything after the last
number it has, as a Kafka or NATS consumer resumes from its offset.

Numbers are never given twice: they are reserved in blocks, and the reservation is
committed before a number of the block goes out. A Device manager killed mid-block
starts the next one after it, so what it numbered but never stored is a visible gap,
not a number that means two records; one stopped cleanly goes on where it was.
Records are committed in batches within FLUSH_S; a reader always sees the batch still
in memory too.

SQLite in WAL mode with `synchronous=NORMAL`, as the bridge's spool: a commit survives
the process being killed. A commit that fails (a full disk) keeps its batch in memory,
readers see it there, and it is tried again every FLUSH_RETRY_S; past `max_records`
waiting, the oldest go (a gap the consumers say). A stream whose reservation cannot be
committed numbers nothing: its records still reach AGILE's subscribers, not the replay.

A private stream (one that Storage encrypts) is numbered the same way, but its records
are kept in memory only, never on disk in clear: the device manager holds no key (a key
in every service that handles records would widen who can read them), so a device
manager restarted loses what it held of them, a gap its consumers say.
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from pathlib import Path

from services.contract import RECORD_VALUE_MAX, UNIT_MAX, RecordObject
from services.errors import StorageError
from services.sqlitewal import open_wal

RESERVE = 1024  # numbers reserved per commit of a stream's reservation
SQLITE_MAX = 2**63 - 1
FLUSH_S = 0.01  # a numbered record is committed within this (a kill loses only these)
FLUSH_RETRY_S = 1.0  # after a commit failed
Key = tuple[str, str]  # (device id, component id)
Row = tuple[str, str, int, str, str, str, int]  # device, component, seq, value, unit, format, ts

log = logging.getLogger(__name__)


class ReplayUnavailable(StorageError, RuntimeError):
    """The buffer cannot take a record (its reservation cannot be written)."""


class ReplayBuffer:
    """Per stream, the newest `max_records` records not older than `max_age_ms`."""

    def __init__(
        self, path: Path, max_records: int, max_age_ms: int, clock_ms: Callable[[], int]
    ) -> None:
        self.max_records = max_records
        self.max_age_ms = max_age_ms
        self.clock_ms = clock_ms
        self.db = open_wal(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS records (device TEXT, component TEXT, seq INTEGER,"
            " value TEXT, unit TEXT, format TEXT, ts INTEGER,"
            " PRIMARY KEY (device, component, seq)) WITHOUT ROWID"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS streams (device TEXT, component TEXT, reserved INTEGER,"
            " PRIMARY KEY (device, component)) WITHOUT ROWID"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS follows (device TEXT, component TEXT, consumer TEXT,"
            " PRIMARY KEY (device, component, consumer)) WITHOUT ROWID"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS private (device TEXT, component TEXT,"
            " PRIMARY KEY (device, component)) WITHOUT ROWID"
        )
        # What a private stream's records were before: overwritten when deleted (FAST:
        # within their pages, no extra writes).
        self.db.execute("PRAGMA secure_delete=FAST")
        self.private: set[Key] = set(self.db.execute("SELECT device, component FROM private"))
        self.memory: dict[Key, deque[Row]] = {}  # private streams' records
        self.next: dict[Key, int] = {}
        self.reserved: dict[Key, int] = {}
        self.pending: list[Row] = []
        self.failing = ""  # why the last commit failed ("" while commits succeed)
        self.dropped = 0  # records let go while commits failed
        self._flush_at: asyncio.TimerHandle | None = None

    def number(self, record: RecordObject) -> int:
        """The record's sequence number in its stream; the record is kept."""
        key = (record.device_id, record.component_id)
        if key not in self.next:
            row = self.db.execute(
                "SELECT reserved FROM streams WHERE device = ? AND component = ?", key
            ).fetchone()
            self.reserved[key] = row[0] if row else 0
            self.next[key] = self.reserved[key] + 1  # after all a killed run may have used
        seq = self.next[key]
        if seq > self.reserved[key]:
            try:
                self.db.execute(
                    "INSERT OR REPLACE INTO streams VALUES (?, ?, ?)", (*key, seq + RESERVE - 1)
                )
            except sqlite3.Error as exc:
                raise ReplayUnavailable(f"replay buffer: {exc}") from None
            self.reserved[key] = seq + RESERVE - 1
        self.next[key] = seq + 1
        row = (*key, seq, record.value, record.unit, record.format, record.last_update)
        if key in self.private:
            kept = self.memory.setdefault(key, deque(maxlen=self.max_records))
            kept.append(row)
            while kept and kept[0][6] < self.clock_ms() - self.max_age_ms:
                kept.popleft()
            return seq
        if self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
        self.pending.append(row)
        return seq

    def set_private(self, key: Key, private: bool) -> None:
        """Keep the stream's records in memory only (True), or on disk again."""
        if private == (key in self.private):
            return
        self.flush()
        with self.db:
            self.db.execute("BEGIN")
            if private:
                self.db.execute("INSERT OR IGNORE INTO private VALUES (?, ?)", key)
                self.db.execute("DELETE FROM records WHERE device = ? AND component = ?", key)
            else:
                self.db.execute("DELETE FROM private WHERE device = ? AND component = ?", key)
        if private:
            self.private.add(key)
            # The WAL still holds them as written: checkpointed and cut, they are gone.
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            self.private.discard(key)
            self.pending = list(self.memory.pop(key, ())) + self.pending

    def flush(self) -> None:
        """Commit what `number` kept since the last flush, and let the oldest go."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?)", batch)
                for key in {(d, k) for d, k, *_ in batch}:
                    self.db.execute(
                        "DELETE FROM records WHERE device = ? AND component = ? AND seq <= ("
                        " SELECT seq FROM records WHERE device = ? AND component = ?"
                        " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                        (*key, *key, self.max_records),
                    )
                self.db.execute(
                    "DELETE FROM records WHERE ts < ?", (self.clock_ms() - self.max_age_ms,)
                )
        except sqlite3.Error as exc:
            self._keep(batch, str(exc))
            return
        if self.failing:
            log.info("replay buffer commits again (%s is over)", self.failing)
            self.failing = ""

    def _keep(self, batch: list[Row], why: str) -> None:
        """A batch whose commit failed waits in memory, at most `max_records` of it."""
        if not self.failing:
            log.error("replay buffer cannot commit (%s); records wait in memory", why)
        self.failing = why
        self.pending = batch + self.pending
        if (over := len(self.pending) - self.max_records) > 0:
            del self.pending[:over]
            self.dropped += over
        with contextlib.suppress(RuntimeError):  # no loop: closing
            self._flush_at = asyncio.get_running_loop().call_later(FLUSH_RETRY_S, self.flush)

    def after(self, key: Key, seq: int, limit: int) -> list[tuple[RecordObject, int]]:
        """At most `limit` records of the stream numbered after `seq`, in order."""
        self.flush()
        rows = self.db.execute(
            "SELECT seq, value, unit, format, ts FROM records"
            " WHERE device = ? AND component = ? AND seq > ? ORDER BY seq LIMIT ?",
            (*key, min(seq, SQLITE_MAX), limit),  # a t beyond SQLite's integers: none
        ).fetchall()
        waiting = [row[2:] for row in self.pending if row[:2] == key and row[2] > seq]
        waiting += [row[2:] for row in self.memory.get(key, ()) if row[2] > seq]
        rows = sorted(rows + waiting)[:limit]  # commits failing: the rest waits in memory
        good = [row for row in rows if _valid(row)]
        if len(good) < len(rows):
            log.error("%s/%s: %d stored records not valid, skipped", *key, len(rows) - len(good))
        return [(RecordObject(*key, v, u, f, ts), n) for n, v, u, f, ts in good]

    def bounds(self, key: Key) -> tuple[int, int]:
        """(first number still held, last number given); (0, 0) for a stream with none."""
        self.flush()
        first, last = self.db.execute(
            "SELECT min(seq), max(seq) FROM records WHERE device = ? AND component = ?", key
        ).fetchone()
        waiting = [row[2] for row in self.pending if row[:2] == key]
        waiting += [row[2] for row in self.memory.get(key, ())]
        held = [n for n in (first, *waiting) if n]
        return (min(held, default=0), self.next.get(key, max([last or 0, *waiting]) + 1) - 1)

    # -- durable subscriptions: a consumer's hold on a stream outlives its connection --

    def follows(self) -> list[tuple[str, str, str]]:
        """(device, component, consumer) of every durable subscription."""
        return list(self.db.execute("SELECT device, component, consumer FROM follows"))

    def set_follow(self, key: Key, consumer: str, on: bool) -> None:
        sql = (
            "INSERT OR IGNORE INTO follows VALUES (?, ?, ?)"
            if on
            else "DELETE FROM follows WHERE device = ? AND component = ? AND consumer = ?"
        )
        self.db.execute(sql, (*key, consumer))

    def forget(self, device_id: str) -> None:
        """A device deleted: its records go. Its numbers stay reserved: registered again,
        it goes on after them, so a consumer's last number still means what it meant."""
        self.pending = [row for row in self.pending if row[0] != device_id]
        for key in [k for k in self.memory if k[0] == device_id]:
            del self.memory[key]
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM records WHERE device = ?", (device_id,))
            self.db.execute("DELETE FROM follows WHERE device = ?", (device_id,))

    def close(self) -> None:
        """A clean stop hands back the unused rest of each reservation: the next run goes
        on without a gap. (Killed, the rest stays a gap: said, never reused.)"""
        self.flush()
        self.db.executemany(
            "UPDATE streams SET reserved = ? WHERE device = ? AND component = ?",
            [(n - 1, *key) for key, n in self.next.items()],
        )
        self.db.close()


def _valid(row: tuple[object, ...]) -> bool:
    """A stored record as this buffer writes it: what a hand edit or an older version
    left otherwise would break every Replay of its stream."""
    n, value, unit, fmt, ts = row
    return (
        isinstance(n, int)
        and isinstance(ts, int)
        and -(2**63) <= ts < 2**63
        and isinstance(value, str)
        and len(value.encode(errors="replace")) <= RECORD_VALUE_MAX
        and all(isinstance(x, str) and len(x) <= UNIT_MAX for x in (unit, fmt))
    )
