"""The storage store vs naive TinyDB and SQLite (WAL), same records, same batches, one run.

    ./dev bench storage [--quick]

Records: 10 streams at 1 Hz each, fixed-point values ("21.37"), interleaved as
they arrive at a gateway. Ingest goes in batches of BATCH records: one
`append`s + `flush` for the store (plain and AES-GCM), one transaction
(`executemany`) for SQLite in WAL mode with synchronous=FULL (durable at each
commit, as the store's fsync per flush is), and one `insert` per record for
naive TinyDB (its default JSON storage rewrites the file on each insert).

1. Sustained ingest rate of WINDOW records once the history holds 10k, 100k
   and 1M records. Naive TinyDB cannot be grown to 1M by inserts (hours); its
   history is written as one JSON file and then a few single inserts are timed.
2. At the 1M history: "last hour of one stream" (3,600 points) and "24 h of one
   stream downsampled to 500 points" — median of REPEAT runs; for the store also
   cold (its segment cache emptied; the OS page cache stays warm for every one).
   SQLite downsamples in SQL (min and max per time bucket), its best case.
3. Bytes on disk per record at 1M.
"""

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from tinydb import Query, TinyDB

from services.contract import RecordObject
from services.storage.crypto import Sealer
from services.storage.store import Store

T0 = 1_790_000_000_000
STREAMS = 10
BATCH = 2_000
WINDOW = 20_000
REPEAT = 20
HISTORIES = (10_000, 100_000, 1_000_000)
HOUR = 3_600_000


def records(start: int, n: int) -> Iterator[tuple[str, str, int, str]]:
    """Record number start..start+n: (device, component, t, value), 10 streams at 1 Hz."""
    rng = random.Random(start)
    for i in range(start, start + n):
        tick, stream = divmod(i, STREAMS)
        yield f"dev{stream}", "temperature", T0 + tick * 1000, f"{20 + rng.random() * 5:.2f}"


class Contestant:
    name = ""

    def ingest(self, start: int, n: int) -> None:
        raise NotImplementedError

    def last_hour(self, end_t: int) -> int:
        raise NotImplementedError

    def day_downsampled(self, end_t: int) -> int:
        raise NotImplementedError

    def cold(self) -> None:
        """Forget in-process caches before a cold query."""

    def bytes(self) -> int:
        raise NotImplementedError


class SegmentStore(Contestant):
    def __init__(self, folder: Path, encrypt: bool) -> None:
        self.name = "store, AES-GCM" if encrypt else "store"
        self.folder = folder
        self.store = Store(folder, Sealer(os.urandom(32)) if encrypt else None)
        for s in range(STREAMS):
            self.store.set_encrypt(f"dev{s}", "temperature", encrypt)

    def ingest(self, start: int, n: int) -> None:
        for b in range(start, start + n, BATCH):
            for dev, comp, t, value in records(b, min(BATCH, start + n - b)):
                self.store.append(RecordObject(dev, comp, value, "°C", "float", t))
            self.store.flush()

    def last_hour(self, end_t: int) -> int:
        return len(self.store.rows("dev3", "temperature", end_t - HOUR + 1, end_t))

    def day_downsampled(self, end_t: int) -> int:
        return len(self.store.rows("dev3", "temperature", end_t - 24 * HOUR + 1, end_t, 500))

    def cold(self) -> None:
        self.store.cache.clear()

    def bytes(self) -> int:
        return self.store.bytes_on_disk()


class SQLiteWAL(Contestant):
    name = "SQLite WAL"

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.path = folder / "records.db"
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE records (device TEXT, component TEXT, t INTEGER, value TEXT,"
            " unit TEXT, format TEXT)"
        )
        self.db.execute("CREATE INDEX by_stream_time ON records (device, component, t)")

    def ingest(self, start: int, n: int) -> None:
        for b in range(start, start + n, BATCH):
            rows = [
                (dev, comp, t, value, "°C", "float")
                for dev, comp, t, value in records(b, min(BATCH, start + n - b))
            ]
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
            self.db.execute("COMMIT")

    def last_hour(self, end_t: int) -> int:
        rows = self.db.execute(
            "SELECT device, component, value, unit, format, t FROM records"
            " WHERE device = ? AND component = ? AND t BETWEEN ? AND ? ORDER BY t",
            ("dev3", "temperature", end_t - HOUR + 1, end_t),
        ).fetchall()
        return len(rows)

    def day_downsampled(self, end_t: int) -> int:
        since = end_t - 24 * HOUR + 1
        width = (24 * HOUR) // 250
        rows = self.db.execute(
            "SELECT (t - ?) / ? AS bucket, min(CAST(value AS REAL)), max(CAST(value AS REAL)),"
            " min(t), max(t) FROM records"
            " WHERE device = ? AND component = ? AND t BETWEEN ? AND ? GROUP BY bucket",
            (since, width, "dev3", "temperature", since, end_t),
        ).fetchall()
        return 2 * len(rows)

    def bytes(self) -> int:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in self.path.parent.iterdir())


class NaiveTinyDB(Contestant):
    name = "naive TinyDB"
    inserts_at = {10_000: 200, 100_000: 20, 1_000_000: 3}  # timed single inserts

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.path = folder / "db.json"
        self.db = TinyDB(self.path)

    @staticmethod
    def doc(dev: str, comp: str, t: int, value: str) -> dict[str, object]:
        return {"d": dev, "c": comp, "t": t, "v": value, "u": "°C", "f": "float"}

    def ingest(self, start: int, n: int) -> None:
        for dev, comp, t, value in records(start, n):
            self.db.insert(self.doc(dev, comp, t, value))

    def grow(self, upto: int) -> None:
        """Write the history as TinyDB's own file would hold it, in one go."""
        docs = {str(i + 1): self.doc(*r) for i, r in enumerate(records(0, upto))}
        self.db.close()
        self.path.write_text(json.dumps({"_default": docs}))
        self.db = TinyDB(self.path)

    def _search(self, since: int, until: int) -> list[dict]:
        q = Query()
        found = self.db.search(
            (q.d == "dev3") & (q.c == "temperature") & (q.t >= since) & (q.t <= until)
        )
        return sorted(found, key=lambda d: d["t"])

    def last_hour(self, end_t: int) -> int:
        return len(self._search(end_t - HOUR + 1, end_t))

    def day_downsampled(self, end_t: int) -> int:
        from services.storage.downsample import minmax_indices

        found = self._search(end_t - 24 * HOUR + 1, end_t)
        t = [d["t"] for d in found]
        v = [float(d["v"]) for d in found]
        return len(minmax_indices(t, v, 500))

    def bytes(self) -> int:
        return self.path.stat().st_size


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeat)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="histories of 10k and 100k only")
    args = parser.parse_args()
    histories = HISTORIES[:2] if args.quick else HISTORIES
    top = histories[-1]
    work = Path(tempfile.mkdtemp(prefix="agile-bench-storage-", dir="/var/tmp"))
    try:
        run(work, histories, top)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, histories: tuple[int, ...], top: int) -> None:
    plain = SegmentStore(work / "store", encrypt=False)
    sealed = SegmentStore(work / "store-aes", encrypt=True)
    sqlite = SQLiteWAL(work / "sqlite")
    naive = NaiveTinyDB(work / "tinydb")
    rates: dict[str, dict[int, float]] = {}
    print(f"{STREAMS} streams at 1 Hz; batches of {BATCH}; window of {WINDOW} records; {work}\n")
    for c in (plain, sealed, sqlite):
        have = 0
        for h in histories:
            c.ingest(have, h - have)
            have = h
            seconds = timed(partial(c.ingest, have, WINDOW))
            have += WINDOW
            rates.setdefault(c.name, {})[h] = WINDOW / seconds
            print(f"  {c.name:<16} history {h:>9,}: {WINDOW / seconds:>10,.0f} records/s")
    for h in histories:
        naive.grow(h)
        n = NaiveTinyDB.inserts_at[h]
        seconds = timed(partial(naive.ingest, h, n))
        rates.setdefault(naive.name, {})[h] = n / seconds
        print(f"  {naive.name:<16} history {h:>9,}: {n / seconds:>10,.1f} records/s ({n} inserts)")

    end_t = T0 + ((top + WINDOW) // STREAMS - 1) * 1000
    print(f"\nIngest, records/s (history = records stored before the timed {WINDOW:,})")
    header = f"{'':<16}" + "".join(f"{h:>12,}" for h in histories) + "   last/first"
    print(header)
    for name, by_h in rates.items():
        row = "".join(f"{by_h[h]:>12,.0f}" for h in histories)
        print(f"{name:<16}{row}   {by_h[histories[-1]] / by_h[histories[0]]:>6.2f}x")
    base = rates["SQLite WAL"]
    ratio = "".join(f"{rates['store'][h] / base[h]:>11.2f}x" for h in histories)
    print(f"{'store/SQLite':<16}{ratio}")

    print(f"\nQueries at a history of {top + len(histories) * WINDOW:,} records (ms)")
    print(f"{'':<16}{'last hour':>12}{'24 h → 500':>14}")
    q: dict[str, tuple[float, float]] = {}
    for c in (plain, sealed):
        c.cold()
        cold_hour = timed(partial(c.last_hour, end_t)) * 1000
        c.cold()
        cold_day = timed(partial(c.day_downsampled, end_t)) * 1000
        print(f"{c.name + ' (cold)':<16}{cold_hour:>12.2f}{cold_day:>14.2f}")
    for c in (plain, sealed, sqlite):
        assert c.last_hour(end_t) == 3600, c.last_hour(end_t)
        assert c.day_downsampled(end_t) <= 500
        q[c.name] = (
            median_ms(partial(c.last_hour, end_t), REPEAT),
            median_ms(partial(c.day_downsampled, end_t), REPEAT),
        )
        print(f"{c.name:<16}{q[c.name][0]:>12.2f}{q[c.name][1]:>14.2f}")
    q[naive.name] = (
        timed(lambda: naive.last_hour(end_t)) * 1000,
        timed(lambda: naive.day_downsampled(end_t)) * 1000,
    )
    print(f"{naive.name + ' (1 run)':<16}{q[naive.name][0]:>12.2f}{q[naive.name][1]:>14.2f}")
    s, b = q["store"], q["SQLite WAL"]
    print(f"{'store/SQLite':<16}{s[0] / b[0]:>11.2f}x{s[1] / b[1]:>13.2f}x")

    print("\nBytes on disk per record")
    stored = top + len(histories) * WINDOW
    for kept in (plain, sealed, sqlite, naive):
        n = top + NaiveTinyDB.inserts_at[top] if kept is naive else stored
        print(f"  {kept.name:<16}{kept.bytes() / n:>8.1f}")

    r = rates["store"]
    print("\nGoals (store, this run)")
    for ok, text in (
        (
            min(r.values()) >= 20_000,
            f"ingest >= 20,000/s at every history: min {min(r.values()):,.0f}",
        ),
        (
            r[histories[0]] / r[histories[-1]] <= 1.5,
            f"rate at {histories[-1]:,} within 1.5x of 10k: "
            f"{r[histories[0]] / r[histories[-1]]:.2f}x",
        ),
        (s[0] <= 10, f"last hour <= 10 ms: {s[0]:.2f} ms"),
        (s[1] <= 50, f"24 h downsampled <= 50 ms: {s[1]:.2f} ms"),
    ):
        print(f"  [{'met' if ok else 'MISSED'}] {text}")


if __name__ == "__main__":
    main()
