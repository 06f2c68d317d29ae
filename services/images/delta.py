"""Binary deltas between image layers: zstd "patch from" (the old layer's tar as a raw
prefix, long-distance matching over it), and the bundle that carries one image's deltas.

Why zstd's patch-from rather than bsdiff4 (`./dev bench deltas` prints both): bsdiff4
makes smaller deltas of scattered small changes (a wheel upgraded: 6 KB against 29 KB;
a Debian package added: 173 KB against 185 KB) but takes 50-60x longer to make (29 s
against 0.5 s for a 51 MB layer, with the old and new layers and its suffix array in
memory: the benchmark's process peaked at 970 MB) and applies only with both whole
layers in memory; zstd applies as a stream, twice as fast, and any zstd tool can check
a frame. The cffi bindings of the `zstandard` library are used because its high-level
API loads a dictionary as a CDict, which long-distance matching does not index: a
304 KB delta came out 18.5 MB that way.

A layer is a tar, and its delta knows it (see `make_layer`): unchanged entries are
copies of old bytes, changed ones zstd frames patched from the old entry of the same
name, in pieces of at most PIECE bytes, so applying one is bounded in memory.

A bundle turns one published version into the next:

    b"AGILEDELTA3\\n" | u32 header length | JSON header | payloads, in header order

The header lists, for the new image's config and each of its layers, how to make it:
("same", i) the old image's layer i as it is, ("layer", i) a layer delta from old layer
i, ("delta", i) one zstd patch-from frame (the config), ("full", -1) zstd of the whole
tar; with the payload's length, the made tar's length, and for a layer patched or whole
its diff id and the old layer's length (a "same" layer's is the old one's). From the
header and the old image's diff ids a gateway knows which old layers it must take and
their lengths, so it takes them in one pass over `docker save`.
Everything made is checked against a digest the registry gives (the new config's) or
that the config gives (the layers' diff ids): a delta never produces anything unchecked.
"""

import hashlib
import io
import json
import mmap
import re
import struct
import tarfile
from collections.abc import Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass

from zstandard import backend_cffi as _zstd

from services.errors import AgileError

# What a delta reads and is read from: bytes, or a file mapped into memory.
Buffer = bytes | bytearray | memoryview | mmap.mmap

MAGIC = b"AGILEDELTA3\n"
LEVEL = 9  # measured: level 19 is 20x slower and no smaller on patch-from deltas
CHUNK = 1 << 20
PIECE = 16 << 20  # new bytes per frame at most: bounds the memory of applying
_lib, _ffi = _zstd.lib, _zstd.ffi


class DeltaError(AgileError, ValueError):
    """A delta that cannot be applied (cut, corrupt, wrong basis): fall back to a pull."""


@dataclass(frozen=True)
class Part:
    kind: str  # "same" | "delta" | "full"
    basis: int  # index of the old layer it comes from (-1 for "full")
    size: int  # payload bytes in the bundle
    length: int  # bytes of the tar (or config) it makes
    digest: str = ""  # a "layer" or "full" part's: the diff id of the layer it makes
    basis_length: int = 0  # a "layer" part's: bytes of the old layer it patches


def _check(code: int) -> int:
    if _lib.ZSTD_isError(code):
        raise DeltaError(_ffi.string(_lib.ZSTD_getErrorName(code)).decode())
    return code


def make(old: Buffer, new: Buffer, level: int = LEVEL) -> bytes:
    """A zstd frame that makes `new` from `old` (empty `old`: plain compression).

    Compressed as a stream, in pieces: on a 180 MB squashed layer that halves the delta
    against one-shot compression of the same bytes (40 KB against 84 KB, measured)."""
    old_p, new_p = _ffi.from_buffer(old), _ffi.from_buffer(new)
    cctx = _lib.ZSTD_createCCtx()
    try:
        window = max(20, min(31, (max(len(old_p), len(new_p), 1) - 1).bit_length()))
        _check(_lib.ZSTD_CCtx_setParameter(cctx, _lib.ZSTD_c_compressionLevel, level))
        _check(_lib.ZSTD_CCtx_setParameter(cctx, _lib.ZSTD_c_windowLog, window))
        _check(_lib.ZSTD_CCtx_setParameter(cctx, _lib.ZSTD_c_enableLongDistanceMatching, 1))
        _check(_lib.ZSTD_CCtx_setPledgedSrcSize(cctx, len(new_p)))
        if len(old_p):
            _check(_lib.ZSTD_CCtx_refPrefix(cctx, old_p, len(old_p)))
        inb = _ffi.new("ZSTD_inBuffer *")
        outb = _ffi.new("ZSTD_outBuffer *")
        piece = _ffi.new("char[]", CHUNK)
        out: list[bytes] = []
        start = 0
        while True:
            end = min(start + CHUNK, len(new_p))
            last = end == len(new_p)
            inb.src, inb.size, inb.pos = new_p + start, end - start, 0
            mode = _lib.ZSTD_e_end if last else _lib.ZSTD_e_continue
            while True:
                outb.dst, outb.size, outb.pos = piece, CHUNK, 0
                left = _check(_lib.ZSTD_compressStream2(cctx, outb, inb, mode))
                out.append(bytes(_ffi.buffer(piece, outb.pos)))
                if (left == 0) if last else (inb.pos == inb.size):
                    break
            if last:
                return b"".join(out)
            start = end
    finally:
        _lib.ZSTD_freeCCtx(cctx)
        _ffi.release(old_p)  # or a mapped file could not be closed
        _ffi.release(new_p)


def patch(old: Buffer, delta: Buffer, length: int) -> Iterator[bytes]:
    """The bytes `delta` makes from `old`, in pieces of at most 1 MiB; DeltaError if the
    delta is corrupt, cut, or makes other than `length` bytes. Memory: `old` (by
    reference) plus the decoder's window, at most the made length."""
    old_p, src = _ffi.from_buffer(old), _ffi.from_buffer(delta)
    dctx = _lib.ZSTD_createDCtx()
    try:
        _check(_lib.ZSTD_DCtx_setParameter(dctx, _lib.ZSTD_d_windowLogMax, 31))
        if len(old_p):
            _check(_lib.ZSTD_DCtx_refPrefix(dctx, old_p, len(old_p)))
        inb = _ffi.new("ZSTD_inBuffer *", {"src": src, "size": len(src), "pos": 0})
        outb = _ffi.new("ZSTD_outBuffer *")
        piece = _ffi.new("char[]", CHUNK)
        made, pending = 0, 1
        while pending:
            outb.dst, outb.size, outb.pos = piece, CHUNK, 0
            pending = _check(_lib.ZSTD_decompressStream(dctx, outb, inb))
            made += outb.pos
            if made > length:
                raise DeltaError(f"the delta makes more than the {length:,} bytes it names")
            if outb.pos:
                yield bytes(_ffi.buffer(piece, outb.pos))
            elif pending and inb.pos == inb.size:
                raise DeltaError("the delta is cut short")
        if made != length:
            raise DeltaError(f"the delta made {made:,} bytes, not {length:,}")
    finally:
        _lib.ZSTD_freeDCtx(dctx)
        _ffi.release(old_p)
        _ffi.release(src)


def _entries(layer: Buffer) -> list[tuple[str | None, int, int]]:
    """A layer tar cut into its entries: (name, start, end), header and padded data each,
    tiling the tar exactly (what follows the last entry it can read is one nameless piece,
    so even a tar that is not one is cut into pieces that make it whole)."""
    starts: list[tuple[str | None, int]] = []
    end = 0
    source: mmap.mmap | io.BytesIO
    if isinstance(layer, mmap.mmap):
        layer.seek(0)
        source = layer
    else:
        source = io.BytesIO(layer)
    with suppress(tarfile.TarError), tarfile.open(fileobj=source, mode="r:") as tar:
        for member in tar:
            starts.append((member.name, member.offset))
            end = member.offset_data + (-(-member.size // 512) * 512 if member.isreg() else 0)
    if starts and starts[0][1]:
        starts.insert(0, (None, 0))  # a pax global header before the first entry
    cuts = [start for _, start in starts] + [end]
    pieces = [(name, a, b) for (name, a), b in zip(starts, cuts[1:], strict=True)]
    if end < len(layer):
        pieces.append((None, end, len(layer)))
    return pieces


def _pieces(old_length: int, length: int) -> Iterator[tuple[int, int, int, int]]:
    """(new start, new end, old start, old end) per piece of at most PIECE bytes of one
    entry: each patched from the old entry's bytes around the same place, one piece either
    side (what an edit shifts stays well inside that), so that a gateway's memory is
    bounded by three pieces whatever the size of the layer or of a file in it."""
    for start in range(0, max(length, 1), PIECE):
        end = min(start + PIECE, length)
        yield start, end, min(max(0, start - PIECE), old_length), min(old_length, end + PIECE)


def make_layer(old: Buffer, new: Buffer, level: int = LEVEL) -> bytes:
    """A layer delta that knows tars: each entry of `new` the same, byte for byte, as an
    entry of `old` (wherever it is) is a copy of those old bytes; each other one is a zstd
    frame patched from the old entry of the same name, or of a name that differs only in
    its numbers (or, for new files, compressed together with the new files beside it).

    Why not one zstd frame over the whole layer: zstd spends some 25 bytes per 128 KB
    block even when a block is one long match, so a one-line change in a 190 MB squashed
    layer cost 39 KB that way, and applying it held the whole old layer and a window as
    large in memory. Payload: u32 length | JSON [[old start, old length, frame bytes,
    made bytes], ...] | the frames; frame bytes 0 is a copy."""
    olds, news = _entries(old), _entries(new)
    with memoryview(old) as before, memoryview(new) as after:
        where = {_digest(before[a:b]): a for _, a, b in olds}
        named = {name: (a, b) for name, a, b in olds if name is not None}
        # A file whose path changed only in its numbers (tinydb-4.8.0.dist-info/RECORD,
        # libfoo.so.3.1) is still best patched from its old self.
        alike = {_unversioned(name): (a, b) for name, a, b in olds if name is not None}
        plan: list[list[int]] = []  # [new start, new end, old start, old end, copy?]
        for name, s, e in news:
            found = where.get(_digest(after[s:e]))
            last = plan[-1] if plan else None
            if found is not None:
                if last and last[4] and last[3] == found:
                    last[1], last[3] = e, found + e - s
                else:
                    plan.append([s, e, found, found + e - s, 1])
                continue
            basis = named.get(name) or alike.get(_unversioned(name)) if name else None
            a, b = basis or (0, 0)
            if last and not last[4] and _joins(last, e, a, b):
                # Changed files beside each other share one frame (and their old bytes):
                # a layer rebuilt later differs in every header's time, and a frame
                # per file would cost some 25 bytes each.
                if a < b:
                    last[2], last[3] = (a, b) if last[2] == last[3] else (last[2], max(last[3], b))
                last[1] = e
            else:
                plan.append([s, e, a, b, 0])
        ops: list[list[int]] = []
        frames: list[bytes] = []
        for s, e, a, b, copy in plan:
            if copy:
                ops.append([a, b - a, 0, e - s])
                continue
            for ps, pe, pa, pb in _pieces(b - a, e - s):
                frame = make(before[a + pa : a + pb], after[s + ps : s + pe], level)
                ops.append([a + pa, pb - pa, len(frame), pe - ps])
                frames.append(frame)
    header = json.dumps(ops, separators=(",", ":")).encode()
    return b"".join([struct.pack(">I", len(header)), header, *frames])


def patch_layer(old: Buffer, payload: Buffer, length: int) -> Iterator[bytes]:
    """The layer a `make_layer` payload makes from `old`, in pieces; DeltaError if it is
    cut, corrupt, reads outside `old`, or makes other than `length` bytes. Memory: one
    op's old bytes and window; the mapped old pages it has read are let go as it goes."""
    with memoryview(payload) as view, memoryview(old) as before:
        try:
            (size,) = struct.unpack_from(">I", view)
            ops = [tuple(map(int, op)) for op in json.loads(bytes(view[4 : 4 + size]))]
            if any(len(op) != 4 or min(op) < 0 or op[0] + op[1] > len(before) for op in ops):
                raise ValueError("an op outside the old layer")
        except (ValueError, TypeError, struct.error) as exc:
            raise DeltaError(f"the layer delta's header is unreadable: {exc}") from None
        offset, made = 4 + size, 0
        for start, span, frame, n in ops:
            made += n
            if made > length:
                raise DeltaError(f"the delta makes more than the {length:,} bytes it names")
            if frame == 0:
                if n != span:
                    raise DeltaError("a copy of other length than its old bytes")
                for at in range(start, start + n, CHUNK):
                    yield bytes(before[at : min(at + CHUNK, start + n)])
                    _let_go(old, at, min(at + CHUNK, start + n))
            else:
                if offset + frame > len(view):
                    raise DeltaError("the delta is cut short")
                # Released here even when the patch fails: a traceback keeping a view of
                # the mapped basis alive would keep the caller from closing it.
                with before[start : start + span] as basis, view[offset : offset + frame] as data:
                    yield from patch(basis, data, n)
                offset += frame
                _let_go(old, start, start + span)
        if made != length or offset != len(view):
            raise DeltaError(f"the delta made {made:,} bytes, not {length:,}, or has bytes left")


def _joins(run: list[int], end: int, a: int, b: int) -> bool:
    """Whether a changed entry ending at `end`, patched from old bytes a..b (none: a ==
    b), goes into the changed run before it: at most PIECE new bytes, and old bytes that
    follow the run's closely enough to read as one range of at most 2 PIECEs."""
    if end - run[0] > PIECE:
        return False
    if a == b or run[2] == run[3]:
        return True
    return run[2] <= a <= run[3] + CHUNK and b - run[2] <= 2 * PIECE


def _unversioned(name: str) -> str:
    return re.sub(r"\d+", "#", name)


def _digest(data: memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _let_go(old: Buffer, start: int, end: int) -> None:
    """A mapped file's pages a process has read count in its RSS (and in the OOM killer's
    view) until it lets go of them; the page cache keeps them all the same."""
    if isinstance(old, mmap.mmap) and end > start:
        first = start - start % mmap.PAGESIZE
        old.madvise(mmap.MADV_DONTNEED, first, end - first)


def made_by(part: Part, old: Buffer, payload: Buffer) -> Generator[bytes, None, None]:
    """The bytes one part of a bundle makes (a "same" part: `old` itself)."""
    if part.kind == "same":
        with memoryview(old) as view:
            for start in range(0, len(view), CHUNK):
                yield bytes(view[start : start + CHUNK])
    elif part.kind == "layer":
        yield from patch_layer(old, payload, part.length)
    else:
        yield from patch(old, payload, part.length)


def pack(parts: list[tuple[Part, bytes]]) -> bytes:
    """A bundle: the config's part first, then one per layer of the new image."""
    header = json.dumps(
        [[p.kind, p.basis, p.size, p.length, p.digest, p.basis_length] for p, _ in parts],
        separators=(",", ":"),
    ).encode()
    return b"".join([MAGIC, struct.pack(">I", len(header)), header, *(d for _, d in parts)])


def unpack(bundle: bytes) -> list[tuple[Part, memoryview]]:
    """The parts of a bundle, each with its payload; DeltaError if it is not a whole one."""
    if not bundle.startswith(MAGIC) or len(bundle) < len(MAGIC) + 4:
        raise DeltaError("not an AGILE delta bundle")
    (size,) = struct.unpack_from(">I", bundle, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        rows = json.loads(bundle[start : start + size])
        parts = [Part(str(k), int(b), int(s), int(n), str(d), int(o)) for k, b, s, n, d, o in rows]
    except (ValueError, TypeError) as exc:
        raise DeltaError(f"the bundle's header is unreadable: {exc}") from None
    view, offset, out = memoryview(bundle), start + size, []
    for part in parts:
        if (
            part.kind not in ("same", "delta", "layer", "full")
            or min(part.size, part.length, part.basis_length) < 0
        ):
            raise DeltaError(f"the bundle names an unknown part {part}")
        out.append((part, view[offset : offset + part.size]))
        offset += part.size
    if offset != len(bundle):
        raise DeltaError(f"the bundle is {len(bundle):,} bytes, its header says {offset:,}")
    return out
