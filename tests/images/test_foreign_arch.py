"""A gateway of another architecture (a Raspberry Pi's arm64) built on this machine:
the hierarchy and a service image for arm64, run under qemu-user-static."""

from pathlib import Path

import pytest

from buildhost.build import build
from buildhost.hierarchy import HOST_ARCH
from buildhost.hierarchy import hierarchy as layers_of
from testkit.docker_images import checkout_copy

# debootstrap's second stage and apt run emulated: several minutes, on a worker of its
# own beside the engine's other tests (its tags, bases and build folders are arm64's).
pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("arm64")]

ARM64_HANDLER = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


@pytest.mark.skipif(
    HOST_ARCH == "arm64" or not ARM64_HANDLER.exists(),
    reason="no qemu-aarch64 binfmt handler here (./dev test registers one where it may)",
)
def test_an_arm64_service_image_builds_and_runs_under_emulation(docker_client):
    with checkout_copy() as code:
        lines = list(build(docker_client, "storage", "multistage", "arm64", say=print, code=code))
    assert any(line.startswith("Step 1/") for line in lines)
    for layer in layers_of("arm64"):
        assert docker_client.images.get(layer.tag).attrs["Architecture"] == "arm64"
    image = docker_client.images.get("agile/storage:multistage-arm64")
    assert image.attrs["Architecture"] == "arm64"
    out = docker_client.containers.run(
        image.id,
        [
            "python3",
            "-c",
            "import platform, dbus_fast, services.storage.service; print(platform.machine())",
        ],
        remove=True,
        network_mode="none",
        platform="linux/arm64",
    )
    assert out.strip() == b"aarch64"  # native extensions (dbus-fast) from arm64 wheels
    # The host's tags are not arm64's: a tag names an arm64 image only if it says so
    # (an engine kept from an earlier run may hold arm64 images of older versions).
    for tagged in docker_client.images.list(name="agile/storage"):
        for tag in tagged.tags:
            says_arm64 = tag.endswith("-arm64")
            assert (tagged.attrs["Architecture"] == "arm64") == says_arm64, tag
