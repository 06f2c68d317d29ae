"""The base-image hierarchy on the real engine: debootstrap, import, runtime, build image."""

import pytest

from buildhost.build import bases_needed, recipe_of, recipes_dir
from buildhost.hierarchy import RECIPE_LABEL, ensure_hierarchy, hierarchy, recipe_digest
from tests.images.stack import cli

# Image builds (and the first debootstrap) take minutes, not the suite's default 120 s.
pytestmark = pytest.mark.timeout(900)


def test_the_hierarchy_is_one_chain_with_the_architecture_in_its_tags(docker_client, hierarchy):
    debian, python, build = (docker_client.images.get(tag) for tag in hierarchy)
    assert all(tag.endswith("-amd64") for tag in hierarchy)
    layers = [image.attrs["RootFS"]["Layers"] for image in (debian, python, build)]
    assert layers[1][: len(layers[0])] == layers[0]  # the runtime starts from debian's chain
    assert layers[2][: len(layers[1])] == layers[1]  # the build image from the runtime's
    assert debian.attrs["Architecture"] == "amd64"
    out = docker_client.containers.run(
        python.id,
        ["python3", "-c", "import sys; print(sys.version_info[:2])"],
        remove=True,
        network_mode="none",
    )
    assert out.strip() == b"(3, 11)"
    user = docker_client.containers.run(
        python.id, ["id", "-u", "agile"], remove=True, network_mode="none"
    )
    assert user.strip() == b"10001"


def test_a_second_run_rebuilds_nothing(docker_client, hierarchy):
    before = [docker_client.images.get(tag).id for tag in hierarchy]
    said: list[str] = []
    ensure_hierarchy(docker_client, say=said.append)
    assert [docker_client.images.get(tag).id for tag in hierarchy] == before
    assert said == [f"{tag}: up to date" for tag in hierarchy]


def test_the_command_says_what_it_did(docker_client, hierarchy):
    out = cli("images", "base")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{tag}: up to date" for tag in hierarchy]
    unknown = cli("images", "base", "--arch", "sparc")
    assert unknown.returncode == 1
    assert "no Docker platform for 'sparc'; known: amd64, arm64" in unknown.stderr


def test_each_layer_is_labelled_with_the_digest_of_its_recipe(docker_client, hierarchy):
    for layer in hierarchy_layers():
        labels = docker_client.images.get(layer.tag).labels
        assert labels[RECIPE_LABEL] == recipe_digest(layer, "amd64")
    # a changed parent recipe changes every digest above it
    assert recipe_digest(hierarchy_layers()[2], "arm64") != recipe_digest(
        hierarchy_layers()[2], "amd64"
    )


def hierarchy_layers():
    return hierarchy("amd64")


@pytest.mark.parametrize(
    ("service", "strategy", "depth"),
    [("storage", "baseline", 1), ("storage", "multistage", 3), ("bus", "multistage", 1)],
)
def test_a_build_makes_only_the_bases_its_recipe_names(service, strategy, depth):
    """A baseline image starts from Debian: building one (or timing its cold build) builds
    no Python runtime or build image."""
    assert bases_needed(recipe_of(service, strategy, recipes_dir()), "arm64") == depth
