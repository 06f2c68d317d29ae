"""Taking an image's exact config and layers from the engine in one pass over `docker
save`: by digest, only the wanted lengths written, stopped once all is in hand."""

import contextlib
import hashlib
import io
from collections.abc import Iterator

import docker
import pytest

from services.images.export import ExportError, save


@pytest.fixture
def three_layers(docker_client, tiny_image) -> Iterator[str]:
    """An image of tiny_image's layer and two random ones of their own sizes."""
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(
            f"FROM {tiny_image}\n"
            "RUN busybox head -c 300000 /dev/urandom > /a\n"
            "RUN busybox head -c 100000 /dev/urandom > /b\n".encode()
        ),
        rm=True,
    )
    yield image.id
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(image.id, force=True)


def test_the_whole_image_is_taken_each_layer_its_diff_id(docker_client, three_layers, tmp_path):
    saved = save(docker_client, three_layers, tmp_path)
    assert "sha256:" + hashlib.sha256(saved.config).hexdigest() == three_layers
    assert sorted(saved.layers) == list(range(len(saved.diff_ids)))
    for i, path in saved.layers.items():
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == saved.diff_ids[i]


def test_a_layer_of_known_length_is_taken_and_nothing_else_written(
    docker_client, three_layers, tmp_path
):
    (tmp_path / "whole").mkdir()
    whole = save(docker_client, three_layers, tmp_path / "whole")
    top = len(whole.diff_ids) - 1
    length = whole.layers[top].stat().st_size
    (tmp_path / "one").mkdir()
    one = save(docker_client, three_layers, tmp_path / "one", {top: length})
    assert one.config == whole.config
    assert list(one.layers) == [top]
    assert [p.name for p in (tmp_path / "one").iterdir()] == [f"{top}.tar"]
    assert one.layers[top].read_bytes() == whole.layers[top].read_bytes()


def test_a_wrong_length_or_a_foreign_index_is_refused(docker_client, three_layers, tmp_path):
    (tmp_path / "whole").mkdir()
    whole = save(docker_client, three_layers, tmp_path / "whole")
    top = len(whole.diff_ids) - 1
    with pytest.raises(ExportError, match=rf"lacks layers \[{top}\]"):
        save(docker_client, three_layers, tmp_path, {top: whole.layers[top].stat().st_size + 1})
    with pytest.raises(ExportError, match="has not got the layers"):
        save(docker_client, three_layers, tmp_path, {top + 1: None})
    assert not list(tmp_path.glob("*.tar"))


def test_an_image_gone_is_said(docker_client, tmp_path):
    with pytest.raises(ExportError, match="not on this engine"):
        save(docker_client, "sha256:" + "0" * 64, tmp_path)
