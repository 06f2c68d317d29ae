"""The paper benchmark's finished series, kept as they finish (OUT/series/, one JSON file
each): the full run takes hours, so it runs in parts — `--resume` keeps what an earlier
part finished and runs only the rest — and the report is made of every series there."""

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from buildhost.paper_rows import FILES, Results

KINDS = {kind.__name__: kind for kind in FILES}


class SeriesStore:
    def __init__(self, folder: Path, resume: bool) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if not resume:
            for old in folder.glob("*.json"):
                old.unlink()

    def _path(self, key: str) -> Path:
        slug = "".join(c if c.isalnum() else "-" for c in key)[:80]
        return self.folder / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:8]}.json"

    def done(self, key: str) -> bool:
        return self._path(key).exists()

    def save(self, key: str, rows: list[Any]) -> None:
        """A finished series' rows (written whole, then renamed: a cut run leaves none)."""
        body = {
            "key": key,
            "rows": [{"type": type(r).__name__, "row": dataclasses.asdict(r)} for r in rows],
        }
        path = self._path(key)
        part = path.with_suffix(".part")
        part.write_text(json.dumps(body, indent=1))
        part.rename(path)

    def results(self) -> Results:
        """Every kept series' rows, by kind, in the order they were run."""
        found = Results()
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
            for row in json.loads(path.read_text())["rows"]:
                kind = KINDS[row["type"]]
                getattr(found, FILES[kind][1]).append(kind(**row["row"]))
        return found
