"""One segment file of one stream: a small TinyDB database of column chunks.

A naive TinyDB store (one document per record, one JSON file) rewrites the whole
history on every insert. Here a stream's history is cut into segments (a time
partition, capped in records), each its own TinyDB database, and each of its
documents is a *chunk*: one flush's records of that stream as columns
(`{"t": [ms, ...], "v": [value, ...], "u": unit, "f": format}`). Appending
rewrites only the stream's newest segment, so the cost of a record does not grow
with history, and a plain segment is still an ordinary TinyDB JSON file.

Values are stored as JSON numbers when that gives back the exact string, else
as strings, so queries round-trip the RecordObject value unchanged.
"""

import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware
from tinydb.storages import Storage

from services.atomicjson import write_atomic
from services.storage.crypto import Sealer, TamperedSegment, is_sealed

SUFFIX = ".seg"
Value = int | float | str


class SegmentStorage(Storage):
    """TinyDB storage of one segment: compact JSON, sealed with AES-GCM when asked,
    written through a temporary file, fsync and rename."""

    def __init__(self, path: Path, aad: str, sealer: Sealer | None, encrypt: bool) -> None:
        self.path = path
        self.aad = aad
        self.sealer = sealer
        self.encrypt = encrypt
        self.bytes_written = 0
        self.digest = ""

    def read(self) -> dict[str, Any] | None:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return decode_blob(blob, self.aad, self.sealer)

    def write(self, data: dict[str, Any]) -> None:
        blob = json.dumps(data, separators=(",", ":")).encode()
        if self.encrypt:
            if self.sealer is None:
                raise TamperedSegment(f"{self.aad}: encryption asked for but no key is loaded")
            blob = self.sealer.seal(blob, self.aad)
        write_atomic(self.path, blob)
        self.bytes_written = len(blob)
        self.digest = digest(blob)

    def close(self) -> None:
        pass


class BatchMiddleware(CachingMiddleware):
    """TinyDB's write cache, flushed only when the store says so (a group write per flush)."""

    WRITE_CACHE_SIZE = sys.maxsize

    @property
    def dirty(self) -> bool:
        return self._cache_modified_count > 0


def digest(blob: bytes) -> str:
    """What an authenticated index holds of a segment's bytes."""
    return hashlib.sha256(blob).hexdigest()


def decode_blob(blob: bytes, aad: str, sealer: Sealer | None) -> dict[str, Any]:
    if is_sealed(blob):
        if sealer is None:
            raise TamperedSegment(f"{aad}: segment is encrypted and no key is loaded")
        blob = sealer.open(blob, aad)
    try:
        data = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TamperedSegment(f"{aad}: not a readable segment ({exc})") from None
    if not isinstance(data, dict):
        raise TamperedSegment(f"{aad}: not a readable segment (no tables)")
    return data


_HEAD = '{"_default":{'
_DECODER = json.JSONDecoder()


def salvage(blob: bytes) -> dict[str, Any] | None:
    """The whole chunks of a plain segment whose end was cut off (a medium that lost the
    tail of a write), or None when the damage is anything but a cut.

    Chunks are complete JSON objects one after another, so those before the cut parse
    and the one it falls in does not: nothing of a chunk is ever half-read. Only an error
    where the text runs out counts as a cut; one before it is corruption, not salvaged.
    """
    try:
        text = blob.decode("ascii")  # segments are written with every non-ASCII escaped
    except UnicodeDecodeError:
        return None
    if not text.startswith(_HEAD):
        cut_in_head = len(text) < len(_HEAD) and _HEAD.startswith(text)
        return {"_default": {}} if cut_in_head else None
    table: dict[str, Any] = {}
    pos = len(_HEAD)
    try:
        while True:
            key, pos = _DECODER.raw_decode(text, pos)
            if text[pos] != ":" or not isinstance(key, str):
                return None
            doc, pos = _DECODER.raw_decode(text, pos + 1)
            table[key] = doc
            if text[pos] == "}":
                return None if text[pos:] != "}}"[: len(text) - pos] else {"_default": table}
            if text[pos] != ",":
                return None
            pos += 1
    except IndexError:  # the cut falls right after a value
        return {"_default": table}
    except json.JSONDecodeError as exc:
        # Within the last 6 characters: the longest token a cut can split is "\\uXXXX".
        cut = exc.msg.startswith("Unterminated string") or exc.pos > len(text) - 6
        return {"_default": table} if cut else None


def pack(value: str) -> Value:
    """The most compact JSON form that gives `value` back exactly."""
    try:
        number = int(value)
        if str(number) == value:
            return number
    except ValueError:
        pass
    try:
        real = float(value)
        if math.isfinite(real) and repr(real) == value:
            return real
    except ValueError:
        pass
    return value


_FIXED = tuple(f"%.{d}f" for d in range(20))


def pack_run(values: list[str]) -> tuple[list[Value], int | None]:
    """Values of one chunk, packed; with `decimals` when they are fixed-point strings
    ("21.50") kept as floats and printed back with that many decimals."""
    first = values[0]
    dot = first.find(".")
    try:
        if dot < 0:
            ints: list[Value] = [int(s) for s in values]
            if all(str(i) == s for i, s in zip(ints, values, strict=True)):
                return ints, None
        else:
            decimals = len(first) - dot - 1
            if decimals >= len(_FIXED):
                raise ValueError("too many decimals to print back")
            reals = [float(s) for s in values]
            if all(
                math.isfinite(x) and f"{x:.{decimals}f}" == s
                for x, s in zip(reals, values, strict=True)
            ):
                return list[Value](reals), decimals
    except ValueError:
        pass
    return [pack(s) for s in values], None


def unpack(value: Value, decimals: int | None) -> str:
    if isinstance(value, float):
        return repr(value) if decimals is None else _FIXED[decimals] % value
    return str(value)


Meta = tuple[str, str, int | None]  # unit, format, decimals


@dataclass
class Columns:
    """A stream's records in time order, as parallel lists."""

    t: list[int] = field(default_factory=list)
    v: list[Value] = field(default_factory=list)
    meta: list[Meta] = field(default_factory=list)  # shared tuples, one per chunk

    def __len__(self) -> int:
        return len(self.t)

    def extend(self, other: "Columns") -> None:
        self.t += other.t
        self.v += other.v
        self.meta += other.meta

    def sort(self) -> None:
        t = self.t
        if t == sorted(t):
            return
        order = sorted(range(len(t)), key=t.__getitem__)
        self.t = [t[i] for i in order]
        self.v = [self.v[i] for i in order]
        self.meta = [self.meta[i] for i in order]


def columns_of(tables: dict[str, Any], aad: str) -> Columns:
    """The chunks of a segment's default table, merged in time order."""
    cols = Columns()
    table = tables.get("_default", {})
    try:
        for _, doc in sorted(table.items(), key=lambda kv: int(kv[0])):
            t, v = doc["t"], doc["v"]
            if len(t) != len(v):
                raise ValueError("columns of different lengths")
            cols.t += t
            cols.v += v
            decimals = doc.get("p")
            cols.meta += [
                (str(doc["u"]), str(doc["f"]), None if decimals is None else int(decimals))
            ] * len(t)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TamperedSegment(f"{aad}: malformed chunk ({exc})") from None
    cols.sort()
    return cols


def open_db(path: Path, aad: str, sealer: Sealer | None, encrypt: bool) -> TinyDB:
    return TinyDB(
        path,
        aad,
        sealer,
        encrypt,
        storage=BatchMiddleware(SegmentStorage),
    )


def middleware(db: TinyDB) -> BatchMiddleware:
    return db.storage  # type: ignore[return-value]  # TinyDB says Storage; we gave it this


def segment_storage(db: TinyDB) -> SegmentStorage:
    return middleware(db).storage  # type: ignore[return-value]  # what we wrapped in it
