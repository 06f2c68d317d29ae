"""Layer deltas (zstd patch-from) and their bundle: exact or refused, never half right."""

import hashlib
import io
import json
import mmap
import random
import struct
import tarfile
from pathlib import Path

import pytest

from services.images import delta


def _layers() -> tuple[bytes, bytes]:
    rng = random.Random(7)
    words = [rng.randbytes(rng.randint(3, 12)) for _ in range(4000)]
    old = b"".join(rng.choice(words) for _ in range(400_000))  # ~3 MB, compressible
    new = bytearray(old)
    new[1_000_000:1_000_020] = b"a one-line change...."  # one byte longer: shifts the rest
    return old, bytes(new)


def test_a_small_change_makes_a_small_delta_that_makes_the_new_bytes_exactly() -> None:
    old, new = _layers()
    made = delta.make(old, new)
    assert len(made) < 1_000  # the change and a few bytes per 128 KB block, not the layer
    assert b"".join(delta.patch(old, made, len(new))) == new


def test_without_a_basis_it_is_plain_compression() -> None:
    _, new = _layers()
    made = delta.make(b"", new)
    assert b"".join(delta.patch(b"", made, len(new))) == new


def test_a_cut_delta_is_refused() -> None:
    old, new = _layers()
    made = delta.make(old, new)
    with pytest.raises(delta.DeltaError):
        b"".join(delta.patch(old, made[: len(made) // 2], len(new)))


def test_flipped_bytes_are_refused_or_caught_by_the_length_or_digest() -> None:
    old, new = _layers()
    made = bytearray(delta.make(old, new))
    made[len(made) // 2] ^= 0xFF
    try:
        out = b"".join(delta.patch(old, bytes(made), len(new)))
    except delta.DeltaError:
        return  # zstd's own checksum or structure caught it
    assert hashlib.sha256(out).digest() != hashlib.sha256(new).digest()


def test_the_wrong_basis_does_not_make_the_new_bytes() -> None:
    old, new = _layers()
    made = delta.make(old, new)
    other = bytes(reversed(old))
    try:
        out = b"".join(delta.patch(other, made, len(new)))
    except delta.DeltaError:
        return
    assert out != new


def test_a_delta_that_makes_more_than_it_names_is_refused() -> None:
    old, new = _layers()
    with pytest.raises(delta.DeltaError, match="more than"):
        b"".join(delta.patch(old, delta.make(old, new), len(new) - 1))


def test_a_bundle_round_trips_and_a_cut_or_foreign_one_is_refused() -> None:
    parts = [
        (delta.Part("delta", 0, 3, 10), b"abc"),
        (delta.Part("same", 2, 0, 99), b""),
        (delta.Part("full", -1, 2, 7, "sha256:f"), b"xy"),
    ]
    bundle = delta.pack(parts)
    assert [(p, bytes(d)) for p, d in delta.unpack(bundle)] == parts
    with pytest.raises(delta.DeltaError, match="header says"):
        delta.unpack(bundle[:-1])
    with pytest.raises(delta.DeltaError, match="not an AGILE delta"):
        delta.unpack(b"PK\x03\x04" + bundle)
    with pytest.raises(delta.DeltaError, match="unreadable"):
        delta.unpack(delta.MAGIC + b"\x00\x00\x00\x02[{")


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _file_trees() -> tuple[dict[str, bytes], dict[str, bytes]]:
    rng = random.Random(11)
    old = {f"opt/app/m{i:04}.py": rng.randbytes(rng.randint(2000, 10000)) for i in range(2000)}
    new = dict(old)
    new["opt/app/m0100.py"] = old["opt/app/m0100.py"].replace(old["opt/app/m0100.py"][50:60], b"x")
    new = {**dict(list(new.items())[:5]), "opt/app/added.py": b"print('new')\n", **new}
    return old, new


def test_a_layer_delta_copies_unchanged_entries_and_patches_the_changed_one() -> None:
    before, after = _file_trees()
    old, new = _tar(before), _tar(after)  # an insertion near the start shifts every entry
    made = delta.make_layer(old, new)
    assert len(made) < 800  # a few ops and two small frames
    assert len(made) < len(delta.make(old, new)) / 3  # not some 25 bytes per 128 KB of tar
    assert b"".join(delta.patch_layer(old, made, len(new))) == new
    part = delta.Part("layer", 0, len(made), len(new), "sha256:new", len(old))
    assert b"".join(delta.made_by(part, old, made)) == new


def test_a_file_renamed_with_its_version_is_patched_from_its_old_self() -> None:
    rng = random.Random(3)
    record = rng.randbytes(30_000)
    old = _tar({"lib/tinydb-4.8.0.dist-info/RECORD": record})
    new = _tar({"lib/tinydb-4.8.2.dist-info/RECORD": record[:100] + b"4.8.2" + record[105:]})
    made = delta.make_layer(old, new)
    assert len(made) < 300  # not the 30 KB of the file compressed alone
    assert b"".join(delta.patch_layer(old, made, len(new))) == new


def test_a_big_changed_file_is_patched_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta, "PIECE", 64 * 1024)
    old_bytes, new_bytes = _layers()
    old, new = _tar({"big.bin": old_bytes}), _tar({"big.bin": new_bytes})
    made = delta.make_layer(old, new)
    header = json.loads(made[4 : 4 + struct.unpack(">I", made[:4])[0]])
    assert len(header) > len(new_bytes) // (64 * 1024)
    assert max(op[1] for op in header) <= 3 * 64 * 1024  # the old bytes one piece reads
    assert b"".join(delta.patch_layer(old, made, len(new))) == new


def test_bytes_that_are_no_tar_still_round_trip() -> None:
    old, new = _layers()
    made = delta.make_layer(old, new)
    assert b"".join(delta.patch_layer(old, made, len(new))) == new


def test_a_cut_or_lying_layer_delta_is_refused() -> None:
    before, after = _file_trees()
    old, new = _tar(before), _tar(after)
    made = delta.make_layer(old, new)
    with pytest.raises(delta.DeltaError):
        b"".join(delta.patch_layer(old, made[:-5], len(new)))
    with pytest.raises(delta.DeltaError):
        b"".join(delta.patch_layer(old, made + b"?", len(new)))
    with pytest.raises(delta.DeltaError, match="unreadable"):
        b"".join(delta.patch_layer(old, made[:10], len(new)))
    with pytest.raises(delta.DeltaError, match="more than"):
        b"".join(delta.patch_layer(old, made, len(new) - 1))
    outside = json.dumps([[len(old) - 10, 20, 0, 20]]).encode()
    with pytest.raises(delta.DeltaError, match="outside the old layer"):
        b"".join(delta.patch_layer(old, struct.pack(">I", len(outside)) + outside, 20))
    with pytest.raises(delta.DeltaError):  # a smaller basis than the one it was made from
        b"".join(delta.patch_layer(old[: len(old) // 2], made, len(new)))


def test_a_failed_layer_delta_lets_go_of_a_mapped_basis(tmp_path: Path) -> None:
    before, after = _file_trees()
    old, new = _tar(before), _tar(after)
    made = bytearray(delta.make_layer(old, new))
    first_frame = 4 + struct.unpack(">I", made[:4])[0]
    made[first_frame : first_frame + 4] = bytes(4)  # no zstd frame: zstd fails mid-patch
    (tmp_path / "old.tar").write_bytes(old)
    # The map is closed while the error is on its way out: BufferError if a view of it
    # were still held.
    with (
        (tmp_path / "old.tar").open("rb") as f,
        pytest.raises(delta.DeltaError),
        mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mapped,
    ):
        b"".join(delta.patch_layer(mapped, bytes(made), len(new)))
