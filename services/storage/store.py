"""The store: streams of records kept in segment files, written in batches.

Layout under the store's folder::

    streams/<deviceId>/<componentId>/<first ms>-<n>.seg   segments (TinyDB JSON, or sealed)
    streams/<deviceId>/<componentId>/index.json           count/first/last/bytes per segment

`append` only buffers; `flush` (the service calls it every flush interval) turns
each stream's buffer into one chunk of its newest segment and rewrites just
those segments, each through a temporary file, fsync and rename. A crash loses
at most the records appended since the last flush; a failed flush (a full
disk) keeps them in memory and the next flush tries again.
"""

import json
import logging
import os
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from tinydb import TinyDB

from services import errors
from services.atomicjson import TMP_SUFFIX, write_atomic
from services.contract import RecordObject
from services.storage.crypto import Sealer, StorageKeyError, TamperedSegment, is_sealed
from services.storage.downsample import minmax_indices
from services.storage.segment import (
    SUFFIX,
    Columns,
    SegmentStorage,
    columns_of,
    decode_blob,
    digest,
    middleware,
    open_db,
    pack_run,
    salvage,
    segment_storage,
    unpack,
)

log = logging.getLogger(__name__)

INDEX = "index.json"
SEALED_MARK = ".indexes-sealed"
HOUR_MS = 3_600_000


class StorageError(errors.StorageError, RuntimeError):
    """A write failed (e.g. the disk is full); nothing stored is lost, the batch is kept."""


@dataclass
class SegmentInfo:
    name: str
    count: int
    first: int
    last: int
    bytes: int = 0
    encrypted: bool = False
    seq: int = 0  # the highest sequence number of a record in it (0: none known)
    digest: str = ""  # of its bytes as written ("" where an older version wrote it)

    def to_json(self) -> list[object]:
        row: list[object] = [self.count, self.first, self.last, self.bytes, self.encrypted]
        row.append(self.seq)
        return [*row, self.digest] if self.digest else row

    @classmethod
    def from_json(cls, name: str, row: list[Any]) -> "SegmentInfo":  # JSON, read back
        # An index from before has no seq, or no digest.
        count, first, last, size, encrypted, *rest = row
        return cls(
            name,
            int(count),
            int(first),
            int(last),
            int(size),
            bool(encrypted),
            int(rest[0]) if rest else 0,
            str(rest[1]) if len(rest) > 1 else "",
        )


@dataclass(frozen=True)
class StreamInfo:
    device_id: str
    component_id: str
    count: int
    first_ms: int
    last_ms: int
    bytes: int
    segments: int
    encrypted: bool
    refused: int = 0  # segments not read: not what the authenticated index lists


def _folder_name(text: str) -> str:
    # Ids come from the bus: percent-encode so that no id can name another folder.
    name = quote(text, safe="")
    return name.replace(".", "%2E") if name.startswith(".") else name


class Stream:
    def __init__(self, store: "Store", device_id: str, component_id: str) -> None:
        self.store = store
        self.device_id = device_id
        self.component_id = component_id
        self.rel = f"{_folder_name(device_id)}/{_folder_name(component_id)}"
        self.folder = store.root / "streams" / self.rel
        self.segments: dict[str, SegmentInfo] = {}
        self.pending = Columns()
        self.pending_seq: list[int] = []  # beside `pending`: each record's number, or 0
        self.index_seq = 0  # the highest number the index has seen, kept past expiry
        self.encrypt = False
        self.head: tuple[SegmentInfo, TinyDB] | None = None
        self.dirty: dict[str, tuple[SegmentInfo, TinyDB]] = {}
        self.index_dirty = False
        # Why the stream's segments are not what its authenticated index says (a plain
        # segment over a sealed one, one from elsewhere, an older copy, one missing):
        # kept in the index itself, and every read of the stream says it.
        self.problem = ""
        # Segments refused by name, and why: never read again (an older copy that opens
        # with the key must not pass for a crash's newer write at the next start).
        self.refused: dict[str, str] = {}

    # -- opening --

    def load(self) -> None:
        """Read the index, and re-scan any segment it does not describe (a crash between
        writing a segment and writing the index). The index of a stream with sealed
        segments is sealed too: then each segment must be the one it lists."""
        sealed = False
        try:
            blob = (self.folder / INDEX).read_bytes()
            sealed = is_sealed(blob)
            if sealed:
                if self.store.sealer is None:
                    raise StorageKeyError("the index is sealed and no key is loaded")
                blob = self.store.sealer.open(blob, self.aad(INDEX))
            index = json.loads(blob)
            known = {
                name: SegmentInfo.from_json(name, row) for name, row in index["segments"].items()
            }
            self.index_seq = int(index.get("seq", 0))
            self.problem = str(index.get("problem", ""))
            self.refused = {str(k): str(v) for k, v in dict(index.get("refused", {})).items()}
        except StorageKeyError as exc:
            known, self.problem = {}, str(exc)  # not checked: neither read nor written
            log.error("%s: %s", self.rel, exc)
        except TamperedSegment:
            known = {}
            self._tampered(f"{INDEX}: authentication failed (tampered, or another key)")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.warning("%s: index unreadable (%s); scanning the segments", self.rel, exc)
            known = {}
        lost = False
        for path in self.folder.iterdir():
            if path.name.endswith(TMP_SUFFIX):
                if not self.store.readonly:
                    path.unlink()  # a write that a crash cut short; the old file is intact
                continue
            if not path.name.endswith(SUFFIX):
                continue
            size = path.stat().st_size
            info = known.get(path.name)
            if path.name in self.refused:
                log.warning("%s: %s refused: %s", self.rel, path.name, self.refused[path.name])
                continue
            if sealed:
                info = self._check(path, info)
                lost = lost or (path.name in self.refused and path.name in known)
            elif info is None or info.bytes != size:
                scanned = self._scan(path, size)
                if info is not None and (scanned is None or scanned.seq < info.seq):
                    lost = True
                info = scanned
                self.index_dirty = True
            if info is not None:
                self.segments[path.name] = info
        for name in sorted(set(known) - set(self.segments) - set(self.refused)):
            self.index_dirty = True
            if sealed:  # a hole in the stream
                self._refuse(name, "the segment is missing")
                lost = True
        if lost:
            # Records the index had seen are gone with the medium: a follower asks the
            # replay for them again from what is still here.
            self.index_seq = max((s.seq for s in self.segments.values()), default=0)
        if not sealed and any(s.encrypted for s in self.segments.values()):
            if self.store.indexes_sealed:
                # This store seals every such index: a plain one was put in its place.
                self._tampered("a plain index where this store sealed one")
            self.index_dirty = True  # from an older version: sealed from now on

    def _check(self, path: Path, listed: SegmentInfo | None) -> SegmentInfo | None:
        """A segment of a stream whose index is authenticated: the one listed, or a newer
        write of it that a crash kept from the index. Anything else is refused."""
        blob = path.read_bytes()
        if listed is not None and listed.digest == digest(blob):
            return listed
        scanned = self._scan(path, len(blob))
        if scanned is None:
            why = "authentication failed (tampered, or another key)"
        elif not scanned.encrypted and (listed is None or listed.encrypted):
            why = "plain where the index has it sealed or not at all"
        elif listed is not None and (scanned.count, scanned.seq) < (listed.count, listed.seq):
            why = "an older copy than the index lists"
        else:
            self.index_dirty = True
            return scanned
        self._refuse(path.name, why)
        return None

    def _refuse(self, name: str, why: str) -> None:
        """Said, kept in the sealed index, and never read; the replay brings back what
        it still holds of the records."""
        log.error("%s: %s: %s; refused", self.rel, name, why)
        self.refused[name] = why
        self.index_dirty = True

    def _tampered(self, why: str) -> None:
        log.error("%s: %s: the stream is not read until this is looked into", self.rel, why)
        self.problem = f"{self.problem}; {why}" if self.problem else why
        self.index_dirty = True

    def _scan(self, path: Path, size: int) -> SegmentInfo | None:
        blob = path.read_bytes()
        aad = self.aad(path.name)
        try:
            try:
                data = decode_blob(blob, aad, self.store.sealer)
            except TamperedSegment:
                # A plain segment cut short keeps its whole chunks; a sealed one is a
                # single authenticated message, and a cut cannot be told from tampering.
                salvaged = None if is_sealed(blob) else salvage(blob)
                if salvaged is None:
                    raise
                data = salvaged
                size = self._repair(path, aad, data)
            cols = columns_of(data, path.name)
        except TamperedSegment as exc:
            log.error("%s: %s; segment left as is and not used", self.rel, exc)
            return None
        sealed = is_sealed(blob)
        mark = digest(path.read_bytes()) if size != len(blob) else digest(blob)
        if not cols.t:
            return SegmentInfo(path.name, 0, 0, 0, size, sealed, 0, mark)
        seq = max(
            (int(d.get("q", 0)) for d in (data or {}).get("_default", {}).values()), default=0
        )
        return SegmentInfo(path.name, len(cols), cols.t[0], cols.t[-1], size, sealed, seq, mark)

    def _repair(self, path: Path, aad: str, data: dict[str, Any]) -> int:
        """Rewrite a segment cut short with what was salvaged of it; its size."""
        chunks = len(data["_default"])
        log.warning("%s: %s was cut short; its %d whole chunks are kept", self.rel, path, chunks)
        if self.store.readonly:
            return path.stat().st_size
        storage = SegmentStorage(path, aad, None, False)
        storage.write(data)
        return storage.bytes_written

    @property
    def seq(self) -> int:
        """The highest sequence number stored or staged (0: none known)."""
        return max([self.index_seq, *(s.seq for s in self.segments.values()), *self.pending_seq])

    def aad(self, name: str) -> str:
        return f"{self.rel}/{name}"

    # -- writing --

    def stage(self) -> None:
        """Move the buffered records into their segments' TinyDB caches (memory only)."""
        p, seqs = self.pending, self.pending_seq
        if not p.t:
            return
        self.pending, self.pending_seq = Columns(), []
        start = 0
        while start < len(p):
            info, db = self._head_for(p.t[start])
            room = self.store.segment_records - info.count
            end = start + 1
            limit = (self.store.partition(info.first if info.count else p.t[start]) + 1) * (
                self.store.segment_ms
            )
            meta, t_all = p.meta[start], p.t
            while (
                end < len(p) and end - start < room and p.meta[end] == meta and t_all[end] < limit
            ):
                end += 1
            t = t_all[start:end]
            values, decimals = pack_run(p.v[start:end])  # type: ignore[arg-type]  # pending: the records' strings
            doc = {"t": t, "v": values, "u": meta[0], "f": meta[1]}
            if decimals is not None:
                doc["p"] = decimals
            if seqs[end - 1]:
                doc["q"] = seqs[end - 1]  # where a consumer of the replay goes on from
                info.seq = max(info.seq, seqs[end - 1])
            db.insert(doc)
            info.first = min(t) if not info.count else min(info.first, min(t))
            info.last = max(info.last, max(t))
            info.count += end - start
            self.dirty[info.name] = (info, db)
            self.store.cache.pop(self.aad(info.name), None)
            start = end

    def _head_for(self, t: int) -> tuple[SegmentInfo, TinyDB]:
        if self.head is None and self.segments:
            newest = max(self.segments.values(), key=lambda s: (s.first, s.name))
            if newest.count < self.store.segment_records:
                db = self._open(newest)
                try:
                    middleware(db).read()
                    self.head = (newest, db)
                except TamperedSegment as exc:
                    log.error("%s: %s; starting a new segment", self.rel, exc)
        if self.head is not None:
            info, db = self.head
            segment_storage(db).encrypt = self.encrypt
            if info.count < self.store.segment_records and self.store.partition(
                t
            ) <= self.store.partition(info.first):
                return self.head
        n = 0
        while (name := f"{t:013d}-{n}{SUFFIX}") in self.segments or name in self.refused:
            n += 1
        info = SegmentInfo(name, 0, t, t, 0, self.encrypt)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segments[name] = info
        self.head = (info, self._open(info))
        return self.head

    def _open(self, info: SegmentInfo) -> TinyDB:
        return open_db(
            self.folder / info.name, self.aad(info.name), self.store.sealer, self.encrypt
        )

    def write(self) -> int:
        """Write every segment with unwritten chunks, then the index; records written."""
        written = 0
        for name, (info, db) in list(self.dirty.items()):
            mw = middleware(db)
            try:
                mw.flush()
            except OSError as exc:
                raise StorageError(
                    f"cannot write {self.folder / name}: {exc.strerror or exc}"
                ) from None
            info.bytes = segment_storage(db).bytes_written
            info.encrypted = segment_storage(db).encrypt
            info.digest = segment_storage(db).digest
            written += info.count - self.store.flushed_counts.get(self.aad(name), 0)
            self.store.flushed_counts[self.aad(name)] = info.count
            del self.dirty[name]
            self.index_dirty = True
        if self.index_dirty:
            self.write_index()
        return written

    def write_index(self) -> None:
        rows = {name: info.to_json() for name, info in sorted(self.segments.items())}
        self.index_seq = max([self.index_seq, *(s.seq for s in self.segments.values())])
        index: dict[str, object] = {"segments": rows, "seq": self.index_seq}
        if self.problem:
            index["problem"] = self.problem
        if self.refused:
            index["refused"] = self.refused
        data = json.dumps(index).encode()
        if any(s.encrypted for s in self.segments.values()) or self.problem or self.refused:
            if self.store.sealer is None:
                # Unsealed, the index would no longer vouch for the stream's segments.
                log.error("%s: the index is not written without the key", self.rel)
                return
            data = self.store.sealer.seal(data, self.aad(INDEX))
            self.store.mark_indexes_sealed()
        try:
            write_atomic(self.folder / INDEX, data)
        except OSError as exc:
            raise StorageError(
                f"cannot write {self.folder / INDEX}: {exc.strerror or exc}"
            ) from None
        self.index_dirty = False

    # -- reading --

    def columns(self, info: SegmentInfo) -> Columns:
        if self.problem:
            raise TamperedSegment(f"{self.rel}: {self.problem}")
        aad = self.aad(info.name)
        cols = self.store.cache.get(aad)
        if cols is not None:
            self.store.cache.move_to_end(aad)
            return cols
        if self.head is not None and self.head[0] is info:
            cols = columns_of(middleware(self.head[1]).read() or {}, aad)
        elif info.name in self.dirty:
            cols = columns_of(middleware(self.dirty[info.name][1]).read() or {}, aad)
        else:
            try:
                blob = (self.folder / info.name).read_bytes()
            except FileNotFoundError:
                raise TamperedSegment(f"{aad}: segment file is missing") from None
            cols = columns_of(decode_blob(blob, aad, self.store.sealer), aad)
        self.store.remember(aad, cols)
        return cols

    def select(self, since: int, until: int) -> Columns:
        if self.problem:
            raise TamperedSegment(f"{self.rel}: {self.problem}")
        self.stage()
        wanted = sorted(
            (s for s in self.segments.values() if s.count and s.first <= until and s.last >= since),
            key=lambda s: (s.first, s.name),
        )
        out = Columns()
        overlap = False
        for info in wanted:
            cols = self.columns(info)
            lo, hi = bisect_left(cols.t, since), bisect_right(cols.t, until)
            if out.t and lo < hi and cols.t[lo] < out.t[-1]:
                overlap = True  # late records put a segment's range inside another's
            out.extend(
                Columns(cols.t[lo:hi], cols.v[lo:hi], cols.meta[lo:hi])
                if (lo, hi) != (0, len(cols))
                else cols
            )
        if overlap:
            out.sort()
        return out

    # -- retention --

    def expire(self, cutoff_ms: int) -> int:
        """Drop records older than `cutoff_ms`: whole segments, and a trim at the boundary."""
        self.stage()
        self.write()
        removed = 0
        gone: list[Path] = []
        for info in sorted(self.segments.values(), key=lambda s: s.first):
            if info.count and info.first >= cutoff_ms:
                continue
            path = self.folder / info.name
            if self.head is not None and self.head[0] is info:
                self.head = None
            self.store.cache.pop(self.aad(info.name), None)
            if not info.count or info.last < cutoff_ms:
                gone.append(path)  # after the index: a crash between leaves no hole in it
                del self.segments[info.name]
                removed += info.count
                self.index_dirty = True
                continue
            cols = self.columns(info)
            keep = bisect_left(cols.t, cutoff_ms)
            kept = Columns(cols.t[keep:], cols.v[keep:], cols.meta[keep:])
            storage = SegmentStorage(path, self.aad(info.name), self.store.sealer, info.encrypted)
            storage.write({"_default": _chunks(kept)})
            self.store.cache.pop(self.aad(info.name), None)
            removed += keep
            info.count, info.first, info.bytes = len(kept), kept.t[0], storage.bytes_written
            info.digest = storage.digest
            self.store.flushed_counts[self.aad(info.name)] = info.count
            self.index_dirty = True
        if self.index_dirty:
            self.write_index()
        for path in gone:
            path.unlink(missing_ok=True)
        return removed


def _chunks(cols: Columns) -> dict[str, dict[str, object]]:
    """Columns as chunk documents, one per run of equal unit and format."""
    docs: dict[str, dict[str, object]] = {}
    start = 0
    for i in range(1, len(cols) + 1):
        if i == len(cols) or cols.meta[i] != cols.meta[start]:
            unit, fmt, decimals = cols.meta[start]
            doc = {"t": cols.t[start:i], "v": cols.v[start:i], "u": unit, "f": fmt}
            if decimals is not None:
                doc["p"] = decimals
            docs[str(len(docs) + 1)] = doc
            start = i
    return docs


class Store:
    def __init__(
        self,
        root: Path,
        sealer: Sealer | None = None,
        segment_ms: int = HOUR_MS,
        segment_records: int = 4096,
        cache_segments: int = 64,
        max_unflushed: int = 500_000,
        readonly: bool = False,
    ) -> None:
        self.root = root
        self.sealer = sealer
        self.segment_ms = segment_ms
        self.segment_records = segment_records
        self.cache_segments = cache_segments
        self.max_unflushed = max_unflushed
        self.cache: OrderedDict[str, Columns] = OrderedDict()
        self.flushed_counts: dict[str, int] = {}
        self.streams: dict[tuple[str, str], Stream] = {}
        self.unflushed = 0
        self.dropped = 0
        self.written = 0
        self.flushes = 0
        self.last_error = ""
        self.readonly = readonly  # e.g. an export beside the running service: touch nothing
        # Present once this store sealed an index: from then on a plain index beside
        # sealed segments is not an older version's but a replacement.
        self.indexes_sealed = (root / SEALED_MARK).exists()
        if not readonly:
            (root / "streams").mkdir(parents=True, exist_ok=True)
        elif not (root / "streams").is_dir():
            return
        for dev_dir in sorted((root / "streams").iterdir()):
            for comp_dir in sorted(p for p in dev_dir.iterdir() if p.is_dir()):
                stream = self._stream(unquote(dev_dir.name), unquote(comp_dir.name))
                stream.load()
                for info in stream.segments.values():
                    self.flushed_counts[stream.aad(info.name)] = info.count

    def mark_indexes_sealed(self) -> None:
        if not self.indexes_sealed:
            write_atomic(self.root / SEALED_MARK, b"indexes of encrypted streams are sealed\n")
            self.indexes_sealed = True

    def partition(self, t: int) -> int:
        return t // self.segment_ms

    def _stream(self, device_id: str, component_id: str) -> Stream:
        key = (device_id, component_id)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(self, device_id, component_id)
        return stream

    def last_seq(self, device_id: str, component_id: str) -> int:
        """The highest replay sequence number of the stream's records here (0: none)."""
        stream = self.streams.get((device_id, component_id))
        return stream.seq if stream is not None else 0

    def set_encrypt(self, device_id: str, component_id: str, encrypt: bool) -> None:
        if encrypt and self.sealer is None:
            raise StorageError("encryption asked for but the store has no key")
        self._stream(device_id, component_id).encrypt = encrypt

    # -- writing --

    def append(self, record: RecordObject, seq: int = 0) -> bool:
        """Buffer a record until the next flush; False if dropped (the buffer is full
        because writes have been failing). `seq`: its number in its stream's replay."""
        if self.unflushed >= self.max_unflushed:
            if not self.dropped:
                log.error(
                    "%d records wait for the disk; dropping new ones until a flush succeeds",
                    self.unflushed,
                )
            self.dropped += 1
            return False
        stream = self._stream(record.device_id, record.component_id)
        stream.pending_seq.append(seq)
        p = stream.pending
        p.t.append(int(record.last_update))
        p.v.append(record.value)  # packed per chunk when staged
        meta = (record.unit, record.format, None)
        p.meta.append(p.meta[-1] if p.meta and p.meta[-1] == meta else meta)
        self.unflushed += 1
        return True

    def flush(self) -> int:
        """Write every buffered record; raises StorageError and keeps them on failure."""
        if self.readonly:
            raise StorageError("the store is open read-only")
        written = 0
        try:
            for stream in self.streams.values():
                stream.stage()
                written += stream.write()
        except StorageError as exc:
            if exc.args[0] != self.last_error:
                log.error("%s; records are kept in memory and written when it succeeds", exc)
            self.last_error = exc.args[0]
            self.unflushed -= written
            self.written += written
            raise
        if self.last_error:
            log.info("writes succeed again (%s is over)", self.last_error)
        self.last_error = ""
        self.unflushed -= written
        self.written += written
        self.flushes += 1
        if self.dropped:
            log.warning("%d records were dropped while the disk was unwritable", self.dropped)
        return written

    def close(self) -> None:
        self.flush()

    # -- reading --

    def remember(self, aad: str, cols: Columns) -> None:
        self.cache[aad] = cols
        if len(self.cache) > self.cache_segments:
            self.cache.popitem(last=False)

    def rows(
        self, device_id: str, component_id: str, since: int, until: int, max_points: int = 0
    ) -> list[tuple[str, str, str, str, str, int]]:
        """Records of a stream in [since, until] in time order, as RecordObject wire tuples,
        downsampled to at most `max_points` (0: all). A tampered segment raises
        TamperedSegment."""
        stream = self.streams.get((device_id, component_id))
        if stream is None or until < since:
            return []
        cols = stream.select(since, until)
        t, v, meta = cols.t, cols.v, cols.meta
        return [
            (device_id, component_id, unpack(v[i], meta[i][2]), meta[i][0], meta[i][1], t[i])
            for i in minmax_indices(t, v, max_points)
        ]

    def query(
        self, device_id: str, component_id: str, since: int, until: int, max_points: int = 0
    ) -> list[RecordObject]:
        return [
            RecordObject(*row)
            for row in self.rows(device_id, component_id, since, until, max_points)
        ]

    def latest(self, device_id: str, component_id: str) -> RecordObject | None:
        stream = self.streams.get((device_id, component_id))
        if stream is None:
            return None
        if stream.problem:
            raise TamperedSegment(f"{stream.rel}: {stream.problem}")
        stream.stage()
        live = [s for s in stream.segments.values() if s.count]
        if not live:
            return None
        newest = max(live, key=lambda s: s.last)
        cols = stream.columns(newest)
        i = len(cols) - 1
        return RecordObject(
            device_id,
            component_id,
            unpack(cols.v[i], cols.meta[i][2]),
            cols.meta[i][0],
            cols.meta[i][1],
            cols.t[i],
        )

    def stream_infos(self) -> list[StreamInfo]:
        out = []
        for (dev, comp), stream in sorted(self.streams.items()):
            stream.stage()
            live = [s for s in stream.segments.values() if s.count]
            if not live and not stream.refused:
                continue
            out.append(
                StreamInfo(
                    dev,
                    comp,
                    sum(s.count for s in live),
                    min((s.first for s in live), default=0),
                    max((s.last for s in live), default=0),
                    sum(s.bytes for s in live),
                    len(live),
                    any(s.encrypted for s in live) or bool(stream.refused),
                    len(stream.refused),
                )
            )
        return out

    def bytes_on_disk(self) -> int:
        total = 0
        for folder, _, files in os.walk(self.root / "streams"):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
        return total

    # -- retention --

    def expire(self, device_id: str, component_id: str, cutoff_ms: int) -> int:
        stream = self.streams.get((device_id, component_id))
        return stream.expire(cutoff_ms) if stream is not None else 0
