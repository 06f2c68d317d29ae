"""The images tests' helpers: the container stack up and down, a code change published."""

import time
from pathlib import Path

import docker

from buildhost.build import build
from testkit.docker_images import checkout_copy
from testkit.local_registry import LocalRegistry
from tests.helpers import agile_gateway
from tests.tui import states

cli = agile_gateway


def forget_volumes(project: str) -> None:
    """The project's named volumes (devices paired, records stored) go with its test:
    `down` keeps them, as a gateway must, and the next run would find them."""
    client = docker.from_env()
    for volume in client.volumes.list(filters={"label": f"com.docker.compose.project={project}"}):
        volume.remove(force=True)


def stack_up(state: Path, project: str, *more: str, registry: LocalRegistry | None = None) -> Path:
    """The simulated container stack in `state` (made here), as compose project
    `project`, with no volumes left from before; `more`: further arguments of
    `up --containers`; `registry`: where its updates come from, its releases trusted
    (the root provisioned). `state`."""
    forget_volumes(project)
    state.mkdir()
    state.chmod(0o755)
    if registry is not None:
        registry.provision(state)
        more = ("--registry", registry.address, *more)
    up = cli(
        "up", "--containers", "--simulate", "--project", project, "--state-dir", str(state), *more
    )
    if up.returncode != 0:
        stack_down(state, project)  # what came up of it goes, or later tests meet it
    assert up.returncode == 0, up.stderr
    return state


def stack_down(state: Path, project: str) -> None:
    down = cli(
        "down", "--containers", "--simulate", "--project", project, "--state-dir", str(state)
    )
    assert down.returncode == 0, down.stderr
    forget_volumes(project)


def publish_signed(registry: LocalRegistry, service: str = "storage") -> None:
    """`images publish` of the engine's agile/SERVICE:multistage, signed with the
    registry's trust folder."""
    published = cli(
        "images",
        "publish",
        service,
        "--registry",
        registry.address,
        "--trust",
        str(registry.trust.folder),
    )
    assert published.returncode == 0, published.stdout + published.stderr


def image_gone(client: docker.DockerClient, image_id: str) -> bool:
    try:
        client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return True
    return False


def publish_code_change(
    docker_client, registry: LocalRegistry, service: str = "storage", deltas: bool = False
) -> str:
    """Build the service's multi-stage image after a one-line code change and push it
    (`deltas`: with `images publish`, bundles included); the gateway keeps the image it
    had (the new one is removed from the engine). The new image's id."""
    before = docker_client.images.get(f"agile/{service}:multistage").id
    with checkout_copy() as code:  # tests running beside this one read the tree
        # A new version every time:
        (code / "services" / "_update_probe.py").write_text(f"VERSION = {time.time_ns()}\n")
        for _ in build(docker_client, service, say=lambda _line: None, code=code):
            pass
    new = docker_client.images.get(f"agile/{service}:multistage").id
    if deltas:
        publish_signed(registry, service)
    else:
        registry.push(docker_client, new, service, "multistage")
    docker_client.images.get(before).tag(f"agile/{service}", "multistage")
    docker_client.images.remove(new, force=True)
    return new


def stack_app(state_dir):  # type: ignore[no-untyped-def]
    """On the container stack's bus, as an operator on that gateway (its update service
    runs the updates)."""
    return states.make_app(stack_bus(state_dir), state_dir, mode="images", docker_url="")


def stack_bus(state_dir) -> str:  # type: ignore[no-untyped-def]
    return (state_dir / "bus.address").read_text().strip()
