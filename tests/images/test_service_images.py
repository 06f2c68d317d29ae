"""Service images built with the multi-stage strategy on the real engine, run as containers."""

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from buildhost.build import LABEL, RECIPES_ENV, STRATEGIES, BuildFailed, build, version_reference
from services import contract as c
from services.bus import call, connect
from services.catalog import CATALOG
from services.paths import DOCKERFILES, ROOT
from testkit.docker_images import built, checkout_copy
from tests.helpers import eventually

# Image builds (and the first debootstrap) take minutes, not the suite's default 120 s.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def images(docker_client, hierarchy) -> dict[str, str]:
    return {service: built(docker_client, service) for service in ("bus", "storage")}


@pytest.fixture(scope="module")
def storage_images(docker_client, images) -> dict[str, str]:
    """The storage service in every strategy."""
    return {s: built(docker_client, "storage", s) for s in STRATEGIES}


def layers(docker_client, tag: str) -> list[str]:
    return docker_client.images.get(tag).attrs["RootFS"]["Layers"]


def test_a_service_image_runs_as_its_user_with_a_health_check_and_labels(docker_client, images):
    image = docker_client.images.get(images["storage"])
    config = image.attrs["Config"]
    assert config["User"] == "agile"
    assert "services.runtime.health" in " ".join(config["Healthcheck"]["Test"])
    assert image.labels[f"{LABEL}.service"] == "storage"
    assert image.labels[f"{LABEL}.strategy"] == "multistage"
    version = image.labels[f"{LABEL}.version"]
    assert f"agile/storage:{version}-multistage" in image.tags
    runtime = layers(docker_client, "agile/python:3.11-bookworm-amd64")
    assert layers(docker_client, images["storage"])[: len(runtime)] == runtime  # the shared chain


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_storage_container_answers_on_the_bus_container(
    docker_client, images, storage_images, strategy: str
):
    volume = docker_client.volumes.create(f"agiletest-run-{os.getpid()}")
    started = []
    try:
        common = {"network_mode": "none", "read_only": True, "cap_drop": ["ALL"], "detach": True}
        mounts = {volume.name: {"bind": "/run/agile", "mode": "rw"}}
        started.append(docker_client.containers.run(images["bus"], volumes=mounts, **common))
        uid = CATALOG["storage"].uid  # as compose runs it: the bus lets only it own Storage
        started.append(
            docker_client.containers.run(
                storage_images[strategy],
                user=f"{uid}:10001",
                volumes=mounts,
                tmpfs={"/var/lib/agile": f"uid={uid}"},
                **common,
            )
        )
        socket = Path(volume.attrs["Mountpoint"]) / "bus.sock"

        async def healthy() -> bool:
            states = [docker_client.containers.get(x.id).attrs["State"] for x in started]
            return all(s.get("Health", {}).get("Status") == "healthy" for s in states)

        # Health checks run every few s; a loaded CI is slow.
        await eventually(healthy, timeout=180, interval=0.5)
        bus = await connect(f"unix:path={socket}")
        try:
            (stats,) = await call(bus, c.STORAGE_NAME, c.STORAGE_PATH, c.STORAGE_IFACE, "Stats")
        finally:
            bus.disconnect()
        assert stats["error"].value == "" and stats["streams"].value == 0
    finally:
        for container in started:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        volume.remove(force=True)


def test_a_code_change_touches_only_the_top_layer(docker_client, images):
    """Built beside today's version (`retag` off): the stack's tag stays where it was."""
    running = docker_client.images.get(images["storage"]).id
    before = layers(docker_client, images["storage"])
    with checkout_copy() as code:
        (code / "services" / "_build_probe.py").write_text('"""A code change."""\n')
        for _ in build(docker_client, "storage", say=lambda _line: None, code=code, retag=False):
            pass
        changed = version_reference("storage", "multistage", code=code)
    try:
        after = layers(docker_client, changed)
        assert docker_client.images.get(images["storage"]).id == running
    finally:
        docker_client.images.remove(changed)
    assert after[:-1] == before[:-1] and after[-1] != before[-1]


def test_squashing_keeps_the_shared_base_or_makes_one_layer(docker_client, storage_images):
    runtime = layers(docker_client, "agile/python:3.11-bookworm-amd64")
    squashed = layers(docker_client, storage_images["squashed"])
    assert squashed[: len(runtime)] == runtime and len(squashed) == len(runtime) + 1
    assert len(layers(docker_client, storage_images["squashed-all"])) == 1
    baseline = layers(docker_client, storage_images["baseline"])
    assert baseline[1] not in runtime  # its own toolchain layer, shared with nothing
    sizes = {s: docker_client.images.get(t).attrs["Size"] for s, t in storage_images.items()}
    assert sizes["multistage"] < sizes["baseline"]


def test_a_failing_dockerfile_is_said_and_the_running_container_keeps_its_image(
    docker_client, images, tmp_path, monkeypatch
):
    recipes = tmp_path / "dockerfiles"
    shutil.copytree(DOCKERFILES, recipes)
    recipe = recipes / "python-service.multistage.Dockerfile"
    recipe.write_text(
        recipe.read_text().replace(
            "USER agile\n", "USER agile\nRUN python3 -c 'import nonexistent'\n"
        )
    )
    monkeypatch.setenv(RECIPES_ENV, str(recipes))
    before = docker_client.images.get(images["storage"]).id
    running = docker_client.containers.run(
        images["storage"], ["sleep", "300"], detach=True, network_mode="none"
    )
    try:
        probe = ROOT / "services" / "_build_probe.py"
        probe.write_text('"""A code change, for this test only."""\n')
        try:
            with pytest.raises(BuildFailed) as failed:
                built(docker_client, "storage")
        finally:
            probe.unlink()
        assert "storage (multistage): The command" in str(failed.value)
        assert "No module named 'nonexistent'" in str(failed.value)  # the log's end
        assert docker_client.images.get(images["storage"]).id == before
        running.reload()
        assert running.status == "running" and running.image.id == before
    finally:
        running.remove(force=True)


def test_an_unknown_service_or_strategy_is_refused(docker_client):
    with pytest.raises(BuildFailed, match="no service image 'nope'"):
        next(build(docker_client, "nope"))
    with pytest.raises(BuildFailed, match="no build strategy 'fast'"):
        next(build(docker_client, "storage", "fast"))


def test_the_report_counts_shared_layers_once(docker_client, images):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", "images", "report"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    ).stdout
    assert "agile/storage:" in out and "agile/bus:" in out
    row = next(line for line in out.splitlines() if line.startswith("multistage "))
    total, on_disk = (float(x) for x in row.split()[1::2][:2])
    assert on_disk < total  # bus and storage share the hierarchy's Debian layer
