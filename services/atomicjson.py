"""Files that are never left half-written, and a TinyDB storage built on them.

TinyDB's JSONStorage truncates and rewrites its file in place, so a kill -9 or a
power cut during a write loses the whole database. Here every write goes to a
temporary file, is fsynced, renamed over the old one, and the folder is fsynced.
"""

import json
import os
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

TMP_SUFFIX = ".tmp"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
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
        return json.loads(text) if text.strip() else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        write_atomic(self.path, json.dumps(data, **self.json_kwargs).encode())

    def close(self) -> None:
        pass
