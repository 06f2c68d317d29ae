"""SQLite as the gateway's durable queues use it (the bridge's spool, the replay buffer)."""

import sqlite3
from pathlib import Path


def open_wal(path: Path) -> sqlite3.Connection:
    """WAL with `synchronous=NORMAL`: a commit survives the process being killed (the
    power failing may lose the last ones) and costs no fsync; transactions explicit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db
