"""Layer deltas (zstd patch-from) and their bundle: exact or refused, never half right."""

import hashlib
import random

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
        (delta.Part("full", -1, 2, 7), b"xy"),
    ]
    bundle = delta.pack(parts)
    assert [(p, bytes(d)) for p, d in delta.unpack(bundle)] == parts
    with pytest.raises(delta.DeltaError, match="header says"):
        delta.unpack(bundle[:-1])
    with pytest.raises(delta.DeltaError, match="not an AGILE delta"):
        delta.unpack(b"PK\x03\x04" + bundle)
    with pytest.raises(delta.DeltaError, match="unreadable"):
        delta.unpack(delta.MAGIC + b"\x00\x00\x00\x02[{")


def test_a_segmented_delta_makes_the_same_bytes_in_bounded_pieces() -> None:
    old, new = _layers()
    segment = 256 * 1024
    made = delta.make_segmented(old, new, segment)
    assert len(made) < 4_000  # still the change, plus a frame per segment
    assert b"".join(delta.patch_segmented(old, made, len(new), segment)) == new
    part = delta.Part("delta", 0, len(made), len(new), segment)
    assert b"".join(delta.made_by(part, old, made)) == new
    with pytest.raises(delta.DeltaError):
        b"".join(delta.patch_segmented(old, made[:-3], len(new), segment))
    with pytest.raises(delta.DeltaError, match="past its end"):
        b"".join(delta.patch_segmented(old, made + made[:20], len(new), segment))
