"""The bridge's durable queue: every message goes to disk first and leaves it only once
the broker has acknowledged it, so a broker that is away, or a bridge killed, loses
nothing but what the last write had not reached.

SQLite in WAL mode with `synchronous=NORMAL`: a committed write survives the process
being killed (the power failing may lose the last commits), one transaction per batch
keeps the cost of a record at a few microseconds, and the queue is one file that any
sqlite3 shell can inspect. Each stream's replay position (the number of the last record
queued) is committed in the same transaction as its messages: a bridge killed at any
moment takes the replay from exactly what it had queued.
"""

from dataclasses import dataclass
from pathlib import Path

from services.sqlitewal import open_wal

DEAD_KEPT = 100  # dead letters kept for a person to look at (the count goes on)


@dataclass(frozen=True)
class Queued:
    seq: int
    topic: str
    payload: bytes
    retain: bool
    problem: str = ""  # why the row cannot be sent as it is stored ("" if it can)


class Spool:
    """A bounded FIFO of MQTT messages on disk; past `limit` messages, the oldest are
    dropped and counted (`dropped`, kept across restarts)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.limit = limit
        self.db = open_wal(path)
        # Sent messages' bytes do not linger in free pages (FAST: no extra writes).
        self.db.execute("PRAGMA secure_delete=FAST")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS queue"
            " (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, payload BLOB, retain INTEGER)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS positions (device TEXT, component TEXT, seq INTEGER,"
            " PRIMARY KEY (device, component)) WITHOUT ROWID"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS dead (seq INTEGER PRIMARY KEY, topic TEXT, reason TEXT)"
        )
        (self.length,) = self.db.execute("SELECT count(*) FROM queue").fetchone()
        self.dropped = self._counter("dropped")
        self.dead = self._counter("dead")

    def _counter(self, name: str) -> int:
        row = self.db.execute("SELECT n FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row and isinstance(row[0], int) else 0

    def put(
        self,
        messages: list[tuple[str, bytes, bool]],
        positions: dict[tuple[str, str], int] | None = None,
    ) -> None:
        """Append, with the streams' new replay `positions`, in one transaction; then
        drop the oldest past the limit."""
        if not messages and not positions:
            return
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO queue (topic, payload, retain) VALUES (?, ?, ?)", messages
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)",
                [(*key, seq) for key, seq in (positions or {}).items()],
            )
            self.length += len(messages)
            over = self.length - self.limit
            if over > 0:
                self.db.execute(
                    "DELETE FROM queue WHERE seq IN (SELECT seq FROM queue ORDER BY seq LIMIT ?)",
                    (over,),
                )
                self.length -= over
                self.dropped += over
                self.db.execute(
                    "INSERT OR REPLACE INTO counters VALUES ('dropped', ?)", (self.dropped,)
                )

    def position(self, key: tuple[str, str]) -> int:
        """The number of the stream's last record queued (0: none)."""
        row = self.db.execute(
            "SELECT seq FROM positions WHERE device = ? AND component = ?", key
        ).fetchone()
        return row[0] if row else 0

    def head(self, n: int) -> list[Queued]:
        """The oldest `n` messages, oldest first."""
        rows = self.db.execute(
            "SELECT seq, topic, payload, retain FROM queue ORDER BY seq LIMIT ?", (n,)
        )
        return [_queued(*row) for row in rows]

    def bury(self, message: Queued, reason: str) -> None:
        """A message the broker or the client refuses (a bad topic, an oversized payload):
        out of the queue, so that it never holds up the ones behind it; counted, and the
        last DEAD_KEPT kept with the reason."""
        with self.db:
            self.db.execute("BEGIN")
            gone = self.db.execute("DELETE FROM queue WHERE seq = ?", (message.seq,)).rowcount
            self.length -= gone
            self.dead += 1
            self.db.execute("INSERT OR REPLACE INTO counters VALUES ('dead', ?)", (self.dead,))
            self.db.execute(
                "INSERT OR REPLACE INTO dead VALUES (?, ?, ?)",
                (message.seq or None, message.topic[:1000], reason[:1000]),
            )
            self.db.execute(
                "DELETE FROM dead WHERE seq NOT IN"
                " (SELECT seq FROM dead ORDER BY seq DESC LIMIT ?)",
                (DEAD_KEPT,),
            )

    def remove_through(self, seq: int) -> None:
        """The broker has every message up to `seq`: forget them."""
        with self.db:
            self.db.execute("BEGIN")
            gone = self.db.execute("DELETE FROM queue WHERE seq <= ?", (seq,)).rowcount
            self.length -= gone

    def close(self) -> None:
        self.db.close()


def _queued(seq: int, topic: object, payload: object, retain: object) -> Queued:
    """A stored row as a message; what no version of the bridge wrote (a hand edit, an
    old row) comes with its problem, to be buried rather than sent."""
    if not isinstance(topic, str):
        return Queued(seq, str(topic), b"", False, f"the stored topic is a {type(topic).__name__}")
    if not isinstance(payload, bytes):
        return Queued(seq, topic, b"", False, f"the stored payload is a {type(payload).__name__}")
    return Queued(seq, topic, payload, bool(retain))
