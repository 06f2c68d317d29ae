"""Files that are never left half-written, and a TinyDB storage built on them.

TinyDB's JSONStorage truncates and rewrites its file in place, so a kill -9 or a
power cut during a write loses the whole database. Here every write goes to a
temporary file, is fsynced, renamed over the old one, and the folder is fsynced.
"""

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from dbus_fast import DBusError
from tinydb.storages import Storage

TMP_SUFFIX = ".tmp"
T = TypeVar("T")
log = logging.getLogger(__name__)


def write_atomic(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file
    (made with `mode`, less the umask)."""
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # e.g. a full disk: leave no partial file behind
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _documents(data: dict[str, dict[str, Any]], path: Path) -> dict[str, dict[str, Any]]:
    """Each table's documents as TinyDB can take them (an object under a number); what is
    not one is said and left out, rather than failing every read of the table."""
    out: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        out[name] = {}
        for doc_id, doc in table.items():
            if doc_id.isdigit() and isinstance(doc, dict):
                out[name][doc_id] = doc
            else:
                log.error("%s: table %s: document %.40r is not valid, skipped", path, name, doc_id)
    return out


class AtomicJSONStorage(Storage):
    def __init__(self, path: str | Path, **json_kwargs: Any) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.json_kwargs = json_kwargs

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text) if text.strip() else None
            if data is not None and not (
                isinstance(data, dict) and all(isinstance(t, dict) for t in data.values())
            ):
                raise ValueError("not a TinyDB database")
        except ValueError as exc:
            # A file no version of this wrote (a hand edit, a bad medium): kept aside for a
            # person to look at, and the service starts without it rather than not at all.
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log.error("%s is not readable (%s): moved to %s, starting empty", self.path, exc, aside)
            return None
        return _documents(data, self.path) if data is not None else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        write_atomic(self.path, json.dumps(data, **self.json_kwargs).encode())

    def close(self) -> None:
        pass


def good_rows(
    rows: Iterable[Any], parse: Callable[[Any], T], what: str, logger: logging.Logger
) -> list[T]:
    """What `parse` makes of each stored row; a row it refuses is said and skipped, so that
    one bad row (an older version's, a hand edit) never stops a service."""
    out = []
    for row in rows:
        try:
            out.append(parse(row))
        except (DBusError, ValueError, KeyError, TypeError, AttributeError) as exc:
            text = exc.text if isinstance(exc, DBusError) else f"{type(exc).__name__}: {exc}"
            logger.error("a stored %s is not valid and was skipped: %s", what, text[:300])
    return out
