"""Delta updates on the stock engine: published bundles, applied by the update path, and
a plain pull whenever a delta cannot be trusted."""

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from services.images import delta, image_delta
from services.images import registry as reg
from services.images.basis_cache import BasisCache
from services.images.delta import DeltaError
from services.images.export import ExportError, Saved, save
from services.images.image_delta import apply_bundle
from services.images.offers import index, offers
from services.images.update import Plan, UpdateError, by_delta, plan, pull, update
from testkit.local_registry import LocalRegistry
from testkit.private_engine import PrivateEngine
from tests.helpers import fill_up
from tests.images.stack import (
    cli,
    image_gone,
    publish_code_change,
    publish_signed,
    stack_down,
    stack_up,
)

pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-delta"
ONE_LINE_GOAL = 2_000  # bytes on the wire for a one-line change (the goal)


def storage_image(client: docker.DockerClient) -> str:
    [container] = client.containers.list(
        filters={
            "label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=storage"]
        }
    )
    return container.image.id


def _update(state: Path, address: str):  # type: ignore[no-untyped-def]
    return cli("images", "update", "storage", "--registry", address, "--state-dir", str(state))


def test_a_one_line_change_updates_by_a_delta_of_about_a_kilobyte(
    docker_client, stack_images, registry, tmp_path
):
    address = registry.address
    v1 = docker_client.images.get("agile/storage:multistage").id
    state = stack_up(tmp_path / "state", PROJECT, registry=registry)  # its registry
    try:
        publish_signed(registry)
        v2 = publish_code_change(docker_client, registry, deltas=True)

        predicted = plan(
            docker_client,
            address,
            "storage",
            "multistage",
            trust=registry.policy(tmp_path / "trust"),
        )
        assert predicted.method == "delta" and predicted.delta and predicted.delta.from_id == v1
        assert predicted.download_bytes <= ONE_LINE_GOAL < predicted.pull_bytes
        shown = cli("images", "plan", "storage", "--registry", address, "--state-dir", str(state))
        assert f"{predicted.download_bytes:,} bytes by delta" in shown.stdout, shown.stdout
        assert f"pull {predicted.pull_bytes:,} bytes" in shown.stdout

        before, checked = registry.fetched(outside="agile/trust"), registry.served("agile/trust")
        updated = _update(state, address)
        assert updated.returncode == 0, updated.stdout + updated.stderr
        # The bundle, exactly; and the signed metadata the update checked, as it says.
        assert registry.fetched(outside="agile/trust") - before == predicted.download_bytes
        said = re.search(r"signed by \w+, .* \(([\d,]+) bytes of it downloaded\)", updated.stdout)
        assert said, updated.stdout
        metadata = int(said[1].replace(",", ""))
        assert 0 < metadata == registry.served("agile/trust") - checked
        assert storage_image(docker_client) == v2

        # The next version's bundle is damaged in the registry: the digest check refuses
        # it, a plain pull follows, and the new version runs.
        v3 = publish_code_change(docker_client, registry, deltas=True)
        broken = plan(
            docker_client,
            address,
            "storage",
            "multistage",
            trust=registry.policy(tmp_path / "trust"),
        )
        assert broken.delta and broken.delta.from_id == v2
        blob = registry.blob_file(broken.delta.digest)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
        updated = _update(state, address)
        assert updated.returncode == 0, updated.stdout + updated.stderr
        assert "the delta did not apply" in updated.stdout and "pulling instead" in updated.stdout
        assert storage_image(docker_client) == v3
    finally:
        stack_down(state, PROJECT)


@pytest.fixture(scope="module")
def published_pair(docker_client, stack_images, registry):  # type: ignore[no-untyped-def]
    """(old image id, new image id, the bundle from old to new); new is not on the engine.
    Made once for the tests that only apply the bundle (a build and a publish each)."""
    publish_signed(registry)
    old = docker_client.images.get("agile/storage:multistage").id
    new = publish_code_change(docker_client, registry, deltas=True)
    (offer,) = [
        o for o in offers(index(registry.address, "agile/storage", new)) if o.from_id == old
    ]
    return old, new, reg.blob(registry.address, "agile/storage", offer.digest)


@pytest.mark.parametrize("damage", ["cut halfway", "a byte flipped in a layer's delta"])
def test_a_damaged_bundle_is_refused_and_nothing_is_loaded(
    docker_client, published_pair, registry, damage
):
    old, new, bundle = published_pair
    if damage == "cut halfway":
        bundle = bundle[: len(bundle) // 2]
    else:
        flipped = bytearray(bundle)
        flipped[-10] ^= 0x55  # inside the last layer's delta
        bundle = bytes(flipped)
    # A later publish into the session's registry makes its bundles from every version
    # published before, `new` among them, pulling it onto the engine: not this test's.
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(new, force=True)
    with pytest.raises(DeltaError):
        apply_bundle(docker_client, bundle, old, new, f"{registry.address}/agile/storage:x")
    assert image_gone(docker_client, new)


def kept_as_a_delta_would(cache: BasisCache, saved: Saved) -> None:
    """`saved` in the cache as if a delta had made all of it."""
    keeping = cache.keeping()
    for i, path in saved.layers.items():
        for _ in keeping.tee([path.read_bytes()]):
            pass
        keeping.made_layer(saved.diff_ids[i])
    keeping.done(saved.id, saved.config)


@pytest.mark.parametrize("kept", ["as made", "a kept layer damaged"])
def test_a_delta_takes_its_basis_from_what_the_last_one_made_not_the_engine(
    docker_client, published_pair, registry, tmp_path, monkeypatch, kept
):
    """Docker 20.10 writes a whole image out before `docker save` streams a byte: the
    layers the last delta made are kept to be the next one's basis, and a damaged one is
    taken from the engine again."""
    old, new, bundle = published_pair
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(new, force=True)
    cache = BasisCache(tmp_path / "basis")
    patched = {p.basis: p.basis_length for p, _ in delta.unpack(bundle) if p.kind == "layer"}
    kept_as_a_delta_would(cache, save(docker_client, old, tmp_path, patched))
    saves = []
    if kept == "as made":
        monkeypatch.setattr(image_delta, "save", lambda *a: saves.append(a))
    else:
        for layer in (tmp_path / "basis").glob("*.tar"):
            layer.write_bytes(layer.read_bytes()[:-1] + b"!")
        monkeypatch.setattr(image_delta, "save", lambda *a: saves.append(a) or save(*a))
    tag = f"{registry.address}/agile/storage:x"
    assert apply_bundle(docker_client, bundle, old, new, tag, cache=cache) == new
    assert len(saves) == (kept != "as made") and cache.served == (kept == "as made")
    # Now the cache holds what this delta made, for the next: the new image's.
    assert cache.config(new) and not cache.config(old)
    made_layers = list((tmp_path / "basis").glob("*.tar"))
    assert made_layers and all(cache.layer("sha256:" + p.stem) for p in made_layers)


def test_a_basis_image_removed_before_the_apply_is_refused(published_pair, registry, tmp_path):
    """The bundle is applied on a gateway engine that no longer has the image it was made
    from (removed after the plan): refused, and nothing loaded. (A gateway engine of its
    own: the suite's engine keeps its images, which later builds descend from.)"""
    old, new, bundle = published_pair
    engine = PrivateEngine(tmp_path)
    try:
        gateway = engine.client()
        with pytest.raises(ExportError, match="not on this engine"):
            apply_bundle(gateway, bundle, old, new, f"{registry.address}/agile/storage:x")
        assert image_gone(gateway, new)
    finally:
        engine.stop()


def test_a_registry_down_mid_update_leaves_the_running_version(
    docker_client, stack_images, own_registry, tmp_path
):
    """The registry goes away once the update has planned a delta: neither the bundle
    nor the pull it falls back to arrives, the update says so, and what ran still runs."""
    own = own_registry
    running = docker_client.images.get("agile/storage:multistage").id
    publish_signed(own)
    publish_code_change(docker_client, own, deltas=True)
    assert (
        plan(
            docker_client,
            own.address,
            "storage",
            "multistage",
            trust=own.policy(tmp_path / "trust"),
        ).method
        == "delta"
    )
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text('{"project": "agiletest-none", "strategy": "multistage"}')
    said: list[str] = []
    with pytest.raises(UpdateError, match=r"pull of .* failed"):
        update(
            docker_client,
            state,
            own.address,
            "storage",
            say=said.append,
            check=own.stop,
            trust=own.policy(tmp_path / "trust"),
        )
    assert any("the delta did not apply" in line for line in said), said
    assert docker_client.images.get("agile/storage:multistage").id == running


@dataclass
class DeltaGateway:
    engine: PrivateEngine
    registry: LocalRegistry
    old: str  # the storage image it runs
    new: str  # the one a published delta makes from it
    plan: Plan


@contextlib.contextmanager
def delta_gateway(docker_client, tmp_path: Path, data_root: Path | None = None):  # type: ignore[no-untyped-def]
    """A gateway engine of its own running storage, and a registry of its own whose
    published one-line change it would take by delta."""
    (tmp_path / "registry").mkdir()
    (tmp_path / "engine").mkdir()
    own = LocalRegistry(tmp_path / "registry")
    engine = PrivateEngine(tmp_path / "engine", data_root)
    old = docker_client.images.get("agile/storage:multistage")
    try:
        gateway = engine.client()
        gateway.images.load(old.save())
        gateway.images.get(old.id).tag("agile/storage", "multistage")
        publish_signed(own)
        new = publish_code_change(docker_client, own, deltas=True)
        the_plan = plan(
            gateway, own.address, "storage", "multistage", trust=own.policy(tmp_path / "trust")
        )
        assert the_plan.method == "delta"
        yield DeltaGateway(engine, own, old.id, new, the_plan)
    finally:
        engine.stop()
        own.stop()


def _runs(gateway: docker.DockerClient, image_id: str) -> bool:
    out = gateway.containers.run(
        image_id, ["python3", "-c", "import services.storage"], network_mode="none", remove=True
    )
    return out == b""


def test_an_engine_crash_mid_apply_loads_nothing_and_the_next_try_succeeds(
    docker_client, stack_images, tmp_path
):
    """A gateway engine of its own, killed (SIGKILL) once the basis layers were taken
    out and before the new image was loaded: after its restart it has the old image
    whole and runnable and no trace of the new one, and the same delta then applies."""
    with delta_gateway(docker_client, tmp_path) as gw:
        engine, gateway, address = gw.engine, gw.engine.client(), gw.registry.address
        said: list[str] = []
        crashed: list[bool] = []

        def crash_once(layer: str, done: int, total: int) -> None:
            if done == total and not crashed:  # the bundle is here: the apply begins
                crashed.append(True)
                engine.crash()

        assert by_delta(gateway, address, gw.plan, said.append, crash_once) == ""
        assert crashed and "the delta did not apply" in said[-1], said
        engine.start()
        gateway = engine.client()
        assert image_gone(gateway, gw.new)
        assert gateway.images.get("agile/storage:multistage").id == gw.old
        assert _runs(gateway, gw.old)
        made = by_delta(gateway, address, gw.plan, said.append, lambda *_: None)
        assert made == gw.new, said


def test_an_update_on_a_full_disk_tags_nothing_and_the_old_image_runs(
    docker_client, stack_images, tmp_path, tmpfs
):
    """A gateway engine whose disk (a 400 MB tmpfs) is full: neither the delta nor the
    pull makes the new version, nothing is tagged, and the old image runs; once space
    returns the same update goes through."""
    disk = tmpfs("400m")
    with delta_gateway(docker_client, tmp_path, disk / "docker") as gw:
        gateway, address = gw.engine.client(), gw.registry.address
        ballast = fill_up(disk)
        said: list[str] = []
        assert by_delta(gateway, address, gw.plan, said.append, lambda *_: None) == ""
        assert "the delta did not apply" in said[-1], said
        with pytest.raises(UpdateError, match="no space left on device"):
            pull(gateway, gw.plan, lambda *_: None)
        assert gateway.images.get("agile/storage:multistage").id == gw.old
        assert image_gone(gateway, gw.new)
        ballast.unlink()
        assert _runs(gateway, gw.old)
        assert by_delta(gateway, address, gw.plan, said.append, lambda *_: None) == gw.new
