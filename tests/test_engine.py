"""The TUI's engine layer against the real Docker engine."""

import threading

import docker
import pytest

from agile_tui.client.engine import Engine
from agile_tui.client.errors import EngineError, EngineUnreachable
from services.images.layers import chain_ids, share
from testkit.docker_images import TEST_PROJECT
from tests.helpers import eventually


def test_unreachable_engine_is_a_clear_error() -> None:
    with pytest.raises(EngineUnreachable, match="no engine socket"):
        Engine.connect("unix:///nonexistent/docker.sock")


def test_containers_are_listed_first_and_their_stats_follow(container_factory) -> None:
    container = container_factory("stats")
    engine = Engine.connect()
    rows = {r.key: r for r in engine.containers()}
    row = rows[container.id]
    assert (row.group, row.state, row.name) == (TEST_PROJECT, "running", container.name)
    assert row.started_at is not None and row.cpu_pct is None  # the list comes first
    [sampled] = [r for r in engine.stats(list(rows.values())) if r.key == container.id]
    assert sampled.name == container.name
    assert sampled.mem_bytes is None or sampled.mem_bytes > 0
    again = engine.container(container.id)
    assert again is not None and again.cpu_pct is not None  # the second sample gives a rate


def test_stop_start_restart_remove(container_factory) -> None:
    container = container_factory("actions")
    engine = Engine.connect()
    engine.stop(container.id, timeout=1)
    assert engine.container(container.id).state == "exited"
    engine.start(container.id)
    assert engine.container(container.id).state == "running"
    engine.restart(container.id, timeout=1)
    assert engine.container(container.id).state == "running"
    engine.remove(container.id)
    assert engine.container(container.id) is None
    with pytest.raises(EngineError, match="no longer exists"):
        engine.start(container.id)


async def test_events_report_a_stop(container_factory) -> None:
    container = container_factory("events")
    engine = Engine.connect()
    stop = threading.Event()
    seen: list[tuple[str, str]] = []

    def follow() -> None:
        for event in engine.container_events(stop):
            seen.append(event)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        container.stop(timeout=1)
        await eventually(lambda: _has(seen, ("die", container.id)), timeout=60)
    finally:
        stop.set()
        thread.join(5)


async def _has(seen: list, item) -> bool:
    return item in seen


def test_logs_stream_lines(container_factory) -> None:
    container = container_factory("logs", ["/bin/sh", "-c", "echo hello; echo world; sleep 60"])
    engine = Engine.connect()
    stream = engine.logs(container.id, follow=True)
    lines = []
    for line in stream:
        lines.append(line)
        if len(lines) == 2:
            break
    stream.close()
    assert lines == ["hello", "world"]


def test_image_layers_and_sharing(docker_client, tiny_image, tmp_path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {tiny_image}\nRUN echo one > /one\n")
    docker_client.images.build(path=str(tmp_path), tag="agile-test/child:1", rm=True)
    try:
        images = {i.name: i for i in Engine.connect().images()}
        tiny, child = images[tiny_image], images["agile-test/child:1"]
        assert len(tiny.layers) == 1 and len(child.layers) == 2
        assert child.layers[0].chain_id == tiny.layers[0].chain_id
        assert tiny.layers[0].size > 1_000_000  # busybox
        assert child.shared_bytes == tiny.layers[0].size
        assert child.unique_bytes == child.layers[1].size
    finally:
        docker_client.images.remove("agile-test/child:1", force=True)


PRUNE_LABEL = "org.agile-gateway.test-prune"


def test_pruning_removes_the_replaced_version_and_keeps_tagged_images(
    docker_client, tiny_image, tmp_path
) -> None:
    versions = []
    for n in (1, 2):  # version 2 takes the tag: version 1 is left untagged
        (tmp_path / "Dockerfile").write_text(f"FROM {tiny_image}\nRUN echo {n} > /version\n")
        image, _ = docker_client.images.build(
            path=str(tmp_path), tag="agile-test/app:1", rm=True, labels={PRUNE_LABEL: "1"}
        )
        versions.append(image.id)
    engine = Engine.connect()
    listed = engine.images()
    assert listed.index(next(i for i in listed if i.id == versions[0])) > listed.index(
        next(i for i in listed if i.name == tiny_image)
    )  # untagged images come after tagged ones
    try:
        # Only this test's images: the engine's other untagged images (other builds'
        # stages) are not the test's to remove.
        count, freed = engine.prune_untagged(PRUNE_LABEL)
        assert count >= 1  # the version and its build steps' images
        old = next(i for i in listed if i.id == versions[0])
        assert freed == old.unique_bytes  # the bytes it alone held
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(versions[0])
        assert docker_client.images.get("agile-test/app:1").id == versions[1]
        docker_client.images.get(tiny_image)
    finally:
        docker_client.images.remove("agile-test/app:1", force=True)


def test_chain_ids_follow_the_oci_rule() -> None:
    import hashlib

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]
    # the same content on a different parent is a different layer
    assert chain_ids([b, b])[1] != chain_ids([a, b])[1]


def test_share_counts_a_common_base_once() -> None:
    from services.images.layers import ImageLayers, Layer

    base = Layer("sha256:base", "sha256:base", 100, "")
    one = ImageLayers("1", ["one"], 110, [base, Layer("sha256:x", "sha256:x", 10, "")])
    two = ImageLayers("2", ["two"], 120, [base, Layer("sha256:y", "sha256:y", 20, "")])
    assert share([one, two]) == 130
    assert (one.shared_bytes, one.unique_bytes, two.unique_bytes) == (100, 10, 20)
