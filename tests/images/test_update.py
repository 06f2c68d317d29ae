"""Updates of the container stack from a real registry (Debian's docker-registry)."""

import contextlib
import gzip
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from buildhost.build import build
from services.images import registry as reg
from services.images.basis_cache import BasisCache
from services.images.export import save
from services.images.known_blobs import known_blobs
from services.images.layers import chain_ids, local_chains
from services.images.update import UpdateError, by_layers, plan, pull, update
from testkit.docker_images import checkout_copy
from testkit.flaky_link import FlakyLink
from tests.images.stack import cli, publish_code_change, stack_down, stack_up

# Image builds (and the first debootstrap) take minutes, not the suite's default 120 s.
pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-update"


def storage_image(docker_client, state: Path) -> str:
    [container] = docker_client.containers.list(
        filters={
            "label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=storage"]
        }
    )
    return container.image.id


def test_predicted_bytes_are_pulled_a_broken_version_rolled_back_and_a_rebuild_switched_to(
    docker_client, stack_images, registry, tmp_path
):
    address = registry.address
    trusting = registry.policy(tmp_path / "trust")
    v1 = docker_client.images.get("agile/storage:multistage").id
    state = stack_up(
        tmp_path / "state",
        PROJECT,
        "--option",
        "updater:allow-local-builds=yes",
        registry=registry,  # its registry
    )
    try:
        registry.push(docker_client, v1, "storage", "multistage")
        assert plan(docker_client, address, "storage", "multistage", trust=trusting).up_to_date
        v2 = publish_code_change(docker_client, registry)

        predicted = plan(docker_client, address, "storage", "multistage", trust=trusting)
        assert predicted.layers_missing == 1 and not predicted.up_to_date
        before = registry.downloaded()
        updated = cli(
            "images", "update", "storage", "--registry", address, "--state-dir", str(state)
        )
        assert updated.returncode == 0, updated.stdout + updated.stderr
        assert registry.downloaded() - before == predicted.download_bytes
        assert storage_image(docker_client, state) == v2
        assert docker_client.images.get("agile/storage:previous").id == v1

        # v3 crashes at start: the update is rolled back to v2 on its own.
        broken, _ = docker_client.images.build(
            fileobj=io.BytesIO(f"FROM {v2}\nENV AGILE_SERVICE=nonexistent\n".encode()), rm=True
        )
        registry.push(docker_client, broken.id, "storage", "multistage")
        rolled = cli(
            "images",
            "update",
            "storage",
            "--registry",
            address,
            "--state-dir",
            str(state),
            "--window",
            "40",
        )
        assert rolled.returncode == 3, rolled.stdout + rolled.stderr
        assert "rolled back" in rolled.stdout and "previous version runs" in rolled.stdout
        assert storage_image(docker_client, state) == v2
        status = cli("status", "--state-dir", str(state))
        assert "storage          running" in status.stdout

        # A rebuild on the gateway (agile-tui's build action) moves the tag, not what
        # runs: the plan reads the container's image, and the update switches to it.
        rebuilt = build_code_change(docker_client)
        registry.push(docker_client, rebuilt, "storage", "multistage")
        assert not plan(
            docker_client, address, "storage", "multistage", PROJECT, trust=trusting
        ).up_to_date
        planned = cli("images", "plan", "storage", "--registry", address, "--state-dir", str(state))
        assert planned.returncode == 0 and "up to date" not in planned.stdout, planned.stdout
        switched = cli(
            "images", "update", "storage", "--registry", address, "--state-dir", str(state)
        )
        assert switched.returncode == 0, switched.stdout + switched.stderr
        assert storage_image(docker_client, state) == rebuilt
        assert docker_client.images.get("agile/storage:previous").id == v2

        # Built here and not signed: installed only as the admin's audited local build
        # (this stack's trust policy allows them).
        local = build_code_change(docker_client)
        installed = cli("images", "install-local", "storage", "--state-dir", str(state))
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert "UNSIGNED, a local build" in installed.stdout
        assert storage_image(docker_client, state) == local
        audit = cli("audit", "--state-dir", str(state), "--json")
        assert audit.returncode == 0, audit.stderr
        calls = [(e[4], e[6]) for e in json.loads(audit.stdout)]  # call, outcome
        assert any(call.endswith(".InstallLocal") and outcome == "ok" for call, outcome in calls), (
            calls
        )
    finally:
        stack_down(state, PROJECT)


def build_code_change(docker_client) -> str:  # type: ignore[no-untyped-def]
    """storage after a one-line code change, built as the gateway builds (its tag moved)."""
    with checkout_copy() as code:
        (code / "services" / "_rebuild_probe.py").write_text(f"VERSION = {time.time_ns()}\n")
        for _ in build(docker_client, "storage", say=lambda _line: None, code=code):
            pass
    return str(docker_client.images.get("agile/storage:multistage").id)


def test_an_unknown_tag_or_a_registry_that_is_down_is_said(docker_client, registry, tmp_path):
    registry.provision(tmp_path)
    (tmp_path / "stack.json").write_text('{"project": "x", "simulate": true, "strategy": "nope"}')
    out = cli(
        "images", "plan", "storage", "--registry", "127.0.0.1:9", "--state-dir", str(tmp_path)
    )
    assert out.returncode == 1 and "registry is not reachable" in out.stderr


def test_a_tag_the_registry_does_not_have_is_said(docker_client, registry, tmp_path):
    address = registry.address
    (tmp_path / "stack.json").write_text('{"project": "x", "simulate": true, "strategy": "nope"}')
    registry.provision(tmp_path)
    out = cli("images", "plan", "zigbee", "--registry", address, "--state-dir", str(tmp_path))
    assert out.returncode == 1
    assert "unsigned: no signed release of zigbee/nope in the registry" in out.stderr
    # Where unsigned images are allowed, the registry's own answer:
    settings = (
        '{"project": "x", "strategy": "nope", "options": {"updater": ["allow-unsigned=yes"]}}'
    )
    (tmp_path / "stack.json").write_text(settings)
    out = cli("images", "plan", "zigbee", "--registry", address, "--state-dir", str(tmp_path))
    assert out.returncode == 1
    assert "agile/zigbee/manifests/nope: no such image or tag in the registry" in out.stderr


def _random_layer(docker_client, base: str, size: int) -> str:
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(
            f"FROM {base}\nRUN busybox head -c {size} /dev/urandom > /r{size}\n".encode()
        ),
        rm=True,
    )
    return image.id


def _upload(docker_client, registry, image_id: str, tag: str, folder: Path) -> None:
    """Put the image in the registry by HTTP, as a registry fed from elsewhere has it:
    this engine records no blob of it (a push through it would)."""
    saved = save(docker_client, image_id, folder)
    layers = saved.layers
    blobs = [gzip.compress(layers[i].read_bytes(), 1) for i in range(len(layers))]
    manifest = {
        "schemaVersion": 2,
        "mediaType": reg.MANIFEST_V2,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(saved.config),
            "digest": reg.put_blob(registry.address, "agile/loaded", saved.config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": len(blob),
                "digest": reg.put_blob(registry.address, "agile/loaded", blob),
            }
            for blob in blobs
        ],
    }
    reg.put_manifest(registry.address, "agile/loaded", tag, manifest)


@pytest.fixture
def on_a_loaded_base(docker_client, tiny_image, registry, tmp_path) -> Iterator[list[str]]:
    """Two images in the registry (agile/loaded:new, :other), each a layer of its own on
    a base this engine has by `docker load` (as after a delta update), put there by HTTP
    (a push through this engine would record their blobs); their ids."""
    base = _random_layer(docker_client, tiny_image, 2_000_000)
    images = [_random_layer(docker_client, base, n) for n in (1_000_000, 500_000)]
    try:
        for image, tag in zip(images, ("new", "other"), strict=True):
            _upload(docker_client, registry, image, tag, tmp_path)
            registry.sign(docker_client, image, "loaded", tag)
        tarball = b"".join(docker_client.images.get(base).save())
        for image in (*images, base):
            docker_client.images.remove(image, force=True, noprune=True)
        docker_client.images.load(tarball)
        diff_ids = docker_client.images.get(base).attrs["RootFS"]["Layers"]
        assert set(chain_ids(diff_ids)) <= local_chains(docker_client)[0]  # here, loaded
        yield images
    finally:
        pulled = f"{registry.address}/agile/loaded"
        for image in (f"{pulled}:new", f"{pulled}:other", *images, base):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(image, force=True)


def test_layers_that_came_by_load_are_counted_as_the_pull_downloads_them(
    docker_client, on_a_loaded_base, registry, tmp_path
):
    """The engine has no record of the loaded layers' blobs and its pull downloads them
    again: the plan says so (the whole image, not its one layer of its own)."""
    the_plan = plan(
        docker_client,
        registry.address,
        "loaded",
        "other",
        trust=registry.policy(tmp_path / "trust"),
    )
    assert the_plan.layers_missing == the_plan.layers_total == 3
    before = registry.downloaded()
    pull(docker_client, the_plan, lambda layer, done, total: None)
    assert registry.downloaded() - before == the_plan.pull_bytes


def test_an_update_fetches_only_the_layers_not_here(
    docker_client, on_a_loaded_base, registry, tmp_path
):
    new, _ = on_a_loaded_base
    the_plan = plan(
        docker_client, registry.address, "loaded", "new", trust=registry.policy(tmp_path / "trust")
    )
    assert the_plan.method == "layers" and the_plan.download_bytes < the_plan.pull_bytes / 2
    before, said, basis = registry.fetched(), [], BasisCache(tmp_path / "basis")
    assert by_layers(docker_client, registry.address, the_plan, said.append, _quiet, basis) == new
    assert registry.fetched() - before == the_plan.download_bytes, said
    assert docker_client.images.get(the_plan.reference).id == new
    # What it unpacked is the next delta's basis: the image's one layer of its own.
    own = docker_client.images.get(new).attrs["RootFS"]["Layers"][-1]
    assert basis.config(new) and basis.layer(own)
    assert len(list(basis.folder.glob("*.tar"))) == 1


def test_a_layer_blob_that_is_not_its_digest_loads_nothing(
    docker_client, on_a_loaded_base, registry, tmp_path
):
    new, _ = on_a_loaded_base
    the_plan = plan(
        docker_client, registry.address, "loaded", "new", trust=registry.policy(tmp_path / "trust")
    )
    own_layer = reg.manifest(registry.address, "agile/loaded", "new")["layers"][-1]["digest"]
    blob = registry.blob_file(own_layer)
    kept = blob.read_bytes()
    try:
        blob.write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))
        said: list[str] = []
        assert by_layers(docker_client, registry.address, the_plan, said.append, _quiet) == ""
        assert "fetching the missing layers failed" in said[0], said
        assert "pulling instead" in said[0]
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(new)
    finally:
        blob.write_bytes(kept)


def _quiet(layer: str, done: int, total: int) -> None:
    pass


def test_an_engine_whose_records_are_not_here_is_taken_at_its_layers(docker_client):
    """An image this data root has not got: the engine is another host's (a tunnel), so
    its records cannot be read here and a plan goes by the layers present alone."""
    ids = [image.id for image in docker_client.images.list()]
    assert known_blobs(docker_client, ids) is not None
    assert known_blobs(docker_client, [*ids, "sha256:" + "0" * 64]) is None


LAYER_BYTES = 24_000_000


@pytest.fixture(scope="module")
def big_image(docker_client, tiny_image, registry) -> str:
    """agile/flaky:big in the registry and not on the engine: the tiny image and 24 MB of
    random bytes (they do not compress, so the pull is long enough to cut)."""
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(
            f"FROM {tiny_image}\nRUN busybox head -c {LAYER_BYTES} /dev/urandom > /blob\n".encode()
        ),
        rm=True,
    )
    registry.push(docker_client, image.id, "flaky", "big")
    docker_client.images.remove(image.id, force=True)
    return image.id


def test_a_pull_cut_halfway_resumes_from_where_it_was_cut(
    docker_client, big_image, registry, tmp_path
):
    link = FlakyLink(registry.address)
    try:
        the_plan = plan(
            docker_client, link.address, "flaky", "big", trust=registry.policy(tmp_path / "trust")
        )
        assert the_plan.layers_missing == 1
        link.cut_after(the_plan.download_bytes // 2)
        pull(docker_client, the_plan, lambda layer, done, total: None)
        assert link.cuts == 1
        assert " 206 " in registry.log.read_text()  # a Range request for the rest
        # Resumed, not restarted: about the layer's bytes crossed the link, not 1.5 times.
        assert the_plan.download_bytes <= link.passed < the_plan.download_bytes * 1.05
    finally:
        link.close()
        docker_client.images.remove(f"{link.address}/agile/flaky:big", force=True)


def test_a_registry_down_mid_pull_is_said_and_the_next_try_pulls(
    docker_client, big_image, tiny_image, registry, tmp_path
):
    link = FlakyLink(registry.address)
    (tmp_path / "stack.json").write_text(
        '{"project": "agiletest-flaky", "simulate": true, "strategy": "big"}'
    )
    running = docker_client.images.get(tiny_image).id
    docker_client.images.get(running).tag("agile/flaky", "big")
    try:
        the_plan = plan(
            docker_client, link.address, "flaky", "big", trust=registry.policy(tmp_path / "trust")
        )
        link.down_after(the_plan.download_bytes // 2)
        with pytest.raises(
            UpdateError, match=f"pull of {link.address}/agile/flaky@sha256:[0-9a-f]+ failed"
        ):
            update(
                docker_client,
                tmp_path,
                link.address,
                "flaky",
                say=lambda _line: None,
                trust=registry.policy(tmp_path / "trust"),
            )
        assert link.down
        assert docker_client.images.get("agile/flaky:big").id == running
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get("agile/flaky:previous")

        link.up()
        new = pull(docker_client, the_plan, lambda layer, done, total: None)
        assert new == docker_client.images.get(f"{link.address}/agile/flaky:big").id
    finally:
        link.close()
        docker_client.images.remove("agile/flaky:big")
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(f"{link.address}/agile/flaky:big", force=True)
