"""The basis a delta leaves for the next: only what was made and fit, only the newest
image's, nothing handed out that is not what its name says."""

import hashlib
from pathlib import Path

import pytest

from services.images.basis_cache import BasisCache


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def keep(cache: BasisCache, config: bytes, layers: list[bytes]) -> None:
    keeping = cache.keeping()
    for layer in layers:
        chunks = [layer[i : i + 3] for i in range(0, len(layer), 3)]
        assert b"".join(keeping.tee(chunks)) == layer  # passes everything on, kept or not
        keeping.made_layer(digest(layer))
    keeping.done(digest(config), config)


def test_the_newest_images_config_and_made_layers_are_kept_and_nothing_older(
    tmp_path: Path,
) -> None:
    cache = BasisCache(tmp_path / "basis")
    keep(cache, b'{"v": 1}', [b"code one"])
    keep(cache, b'{"v": 2}', [b"code two", b"more"])
    assert cache.config(digest(b'{"v": 2}')) == b'{"v": 2}'
    assert cache.layer(digest(b"code two")) == tmp_path / "basis" / f"{digest(b'code two')[7:]}.tar"
    assert cache.layer(digest(b"more")) is not None
    assert cache.config(digest(b'{"v": 1}')) is None and cache.layer(digest(b"code one")) is None
    assert len(list((tmp_path / "basis").iterdir())) == 3


def test_each_layer_that_fits_in_the_room_left_is_kept(tmp_path: Path) -> None:
    cache = BasisCache(tmp_path / "basis", limit=10)
    keep(cache, b"{}", [b"small", b"a larger one", b"tiny", b"two"])
    assert cache.layer(digest(b"small")) and cache.layer(digest(b"tiny"))
    assert cache.layer(digest(b"a larger one")) is None  # written no further than the room
    assert cache.layer(digest(b"two")) is None  # 5 + 4 bytes kept: no room for 3
    assert sorted(p.suffix for p in (tmp_path / "basis").iterdir()) == [".json", ".tar", ".tar"]


def test_a_layer_said_to_be_larger_than_the_room_is_not_written(tmp_path: Path) -> None:
    keeping = BasisCache(tmp_path / "basis", limit=10).keeping()
    written = []
    for chunk in keeping.tee([b"abc"], at_least=11):
        written.append((tmp_path / "basis" / "part.tar").stat().st_size)
        assert chunk == b"abc"
    assert written == [0]


def test_a_kept_file_that_changed_is_not_handed_out(tmp_path: Path) -> None:
    cache, config = BasisCache(tmp_path / "basis"), b'{"v": 1}'
    keep(cache, config, [b"code"])
    (tmp_path / "basis" / f"{digest(b'code')[7:]}.tar").write_bytes(b"c0de")
    (tmp_path / "basis" / f"{digest(config)[7:]}.json").write_bytes(b"{}")
    assert cache.layer(digest(b"code")) is None
    assert cache.config(digest(config)) is None


def test_an_empty_cache_has_nothing(tmp_path: Path) -> None:
    cache = BasisCache(tmp_path / "never made")
    assert cache.config(digest(b"{}")) is None and cache.layer(digest(b"x")) is None


@pytest.mark.parametrize(
    "name", ["sha256:../../etc/passwd", "md5:" + "0" * 64, "sha256:" + "G" * 64]
)
def test_only_a_sha256_digest_names_a_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a sha256 digest"):
        BasisCache(tmp_path).layer(name)
