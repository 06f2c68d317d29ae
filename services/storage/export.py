"""`agile-gateway storage export`: a stored stream as CSV or JSON, read from the files.

It reads the store folder directly (read-only), so it works whether or not the
gateway is running; records still in the running service's unflushed batch
(at most one flush interval) are not in the files yet.
"""

import csv
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from services.contract import RecordObject
from services.storage.crypto import KEY_ENV, Sealer, load_key
from services.storage.policy import parse_duration_ms
from services.storage.store import Store

FIELDS = ("time", "epoch_ms", "device_id", "component_id", "value", "unit", "format")


def parse_time_ms(text: str, now_ms: int) -> int:
    """Epoch ms, an ISO 8601 time, or a duration ago ("1h", "7d")."""
    text = text.strip()
    if text.isdigit() and len(text) >= 10:
        return int(text)
    try:
        return now_ms - parse_duration_ms(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (epoch ms, ISO 8601 like 2026-11-29T08:00, or 1h, 7d ago)"
        ) from None
    return int(moment.timestamp() * 1000)


def open_store(folder: Path, key_file: Path) -> Store:
    sealer = Sealer(load_key(key_file)) if KEY_ENV in os.environ or key_file.exists() else None
    return Store(folder, sealer, readonly=True)


def write_records(records: list[RecordObject], fmt: str, out: TextIO) -> None:
    rows = [
        {
            "time": datetime.fromtimestamp(r.last_update / 1000)
            .astimezone()
            .isoformat(timespec="milliseconds"),
            "epoch_ms": r.last_update,
            "device_id": r.device_id,
            "component_id": r.component_id,
            "value": r.value,
            "unit": r.unit,
            "format": r.format,
        }
        for r in records
    ]
    if fmt == "json":
        json.dump(rows, out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        writer = csv.DictWriter(out, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def now_ms() -> int:
    return int(time.time() * 1000)
