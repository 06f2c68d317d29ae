"""Building a service image with one of the build strategies, with a streamed log.

The build context is staged under build/images/<service>-<strategy>/ (the user's cache
for an installed gateway): the strategy's Dockerfile, the service's requirements and
the wheelhouse, built on the host because pip cannot verify TLS inside builds on these
machines.
"""

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import Path

import docker

from buildhost import project
from buildhost.hierarchy import BASES, HOST_ARCH, PLATFORMS, ensure_hierarchy, hierarchy
from buildhost.worklock import one_at_a_time
from services.busconfig import container_accounts, container_users, render_config
from services.catalog import IMAGES
from services.errors import EngineError
from services.images.recipes import LABEL, SERVICES, STRATEGIES, ServiceImage
from services.paths import DOCKERFILES, ROOT, SHIPPED, WORK

log = logging.getLogger(__name__)


# Another folder of recipes laid out as dockerfiles/ (e.g. one being tried out).
RECIPES_ENV = "AGILE_DOCKERFILES"
STAGING = WORK / "images"
WHEELHOUSE = WORK / "wheelhouse"
CONTAINER_SOCKET = Path("/run/agile/bus.sock")  # in every container of the stack
ALL_EXTRAS = tuple(sorted({extra for image in IMAGES.values() for extra in image.extras}))
# pip's platform tags of binary wheels that run on Debian 12 (glibc 2.36), per architecture.
WHEEL_PLATFORMS = {
    "amd64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64"),
}


class BuildFailed(EngineError, RuntimeError):
    """The build failed; whatever ran before is untouched. The message holds the log's end."""


def code_version(root: Path = ROOT) -> str:
    """The project's version and a digest of its code: what a code change changes."""
    h = hashlib.sha256()
    for path in sorted(p for top in SHIPPED for p in (root / top).rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return f"{project.version()}-{h.hexdigest()[:10]}"


def build_wheelhouse(arch: str, say: Callable[[str], None], code: Path = ROOT) -> Path:
    """Wheels of the project and every dependency for Python 3.11 (as the images' Debian
    has) on `arch`: built here for the host's architecture, downloaded as binary wheels
    for a foreign one (nothing is compiled under emulation)."""
    folder = WHEELHOUSE / arch
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("agile_gateway-*.whl"):
        old.unlink()  # always the current code
    pip = [sys.executable, "-m", "pip"]
    needed = project.requirements(ALL_EXTRAS, code)
    if arch == HOST_ARCH:
        steps = [[*pip, "wheel", "-q", "--wheel-dir", str(folder), *needed]]
    elif arch in WHEEL_PLATFORMS:
        platforms = [f"--platform={tag}" for tag in WHEEL_PLATFORMS[arch]]
        steps = [
            [
                *pip,
                "download",
                "-q",
                "--only-binary=:all:",
                "--python-version=3.11",
                "--implementation=cp",
                *platforms,
                "--dest",
                str(folder),
                *needed,
            ],
        ]
    else:
        raise BuildFailed(f"no wheels for {arch} (known: {', '.join(WHEEL_PLATFORMS)})")
    for step in steps:
        say(f"wheelhouse ({arch}): pip {step[3]}")
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildFailed(f"pip {step[3]} failed:\n{proc.stderr.strip()[-2000:]}")
    say(f"wheelhouse ({arch}): the gateway's own wheel")  # pure Python: any architecture
    try:
        project.build_wheel(folder, code)
    except RuntimeError as exc:
        raise BuildFailed(str(exc)) from None
    return folder


def recipes_dir() -> Path:
    return Path(os.environ.get(RECIPES_ENV) or DOCKERFILES)


def recipe_of(service: str, strategy: str, dockerfiles: Path) -> Path:
    recipe = "multistage" if strategy.startswith("squashed") else strategy
    if service == "bus":
        return dockerfiles / "bus" / f"{recipe}.Dockerfile"
    return dockerfiles / f"python-service.{recipe}.Dockerfile"


def bases_needed(recipe: Path, arch: str, bases: str = BASES) -> int:
    """How many layers of the hierarchy, from the bottom, a recipe builds on (a baseline
    recipe only on Debian: building it builds no Python runtime or build image)."""
    text = recipe.read_text().replace("${ARCH}", arch).replace("${BASES}", bases)
    tags = [layer.tag for layer in hierarchy(arch, bases)]
    return max((i + 1 for i, tag in enumerate(tags) if tag in text), default=len(tags))


def stage(
    image: ServiceImage, strategy: str, arch: str, dockerfiles: Path, code: Path = ROOT
) -> Path:
    folder = STAGING / f"{image.name}-{strategy}-{arch}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if image.name == "bus":
        shutil.copy(recipe_of(image.name, strategy, dockerfiles), folder / "Dockerfile")
        (folder / "bus.conf").write_text(render_config(CONTAINER_SOCKET, container_users()))
        (folder / "accounts").write_text(container_accounts())
        # The same image serves the simulated stack's second bus, for the virtual BlueZ.
        system = CONTAINER_SOCKET.parent / "system" / "bus.sock"
        (folder / "system-bus.conf").write_text(render_config(system, names=["org.bluez"]))
        return _public(folder)
    shutil.copy(recipe_of(image.name, strategy, dockerfiles), folder / "Dockerfile")
    (folder / "requirements.txt").write_text(
        "\n".join(project.requirements(image.extras, code)) + "\n"
    )
    # The project's wheel apart from the dependencies': a code change must not touch the
    # dependency stage, or its layer (and the build cache) would change with every edit.
    wheels = WHEELHOUSE / arch
    ours = sorted(wheels.glob("agile_gateway-*.whl"))
    shutil.copytree(wheels, folder / "wheelhouse", ignore=shutil.ignore_patterns("agile_gateway-*"))
    (folder / "project").mkdir()
    for wheel in ours:
        shutil.copy2(wheel, folder / "project" / wheel.name)
    return _public(folder)


def _public(folder: Path) -> Path:
    """A build context's modes as the image needs them, whatever the umask of the
    process that staged it (the update service works under the gateway's private one):
    its users read what is copied in, and the layers are the same bytes wherever built."""
    for path in (folder, *folder.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def squash(
    client: docker.DockerClient, image_id: str, above: str | None, say: Callable[[str], None]
) -> str:
    """docker-squash: every layer above `above` (an image the result keeps as its base,
    so its layers stay shared), or all of them; the squashed image's id."""
    from docker_squash.errors import Error as SquashError
    from docker_squash.squash import Squash

    say(f"squashing {image_id[7:19]} " + (f"above {above}" if above else "into one layer"))
    from_layer = client.images.get(above).id if above else None
    chatty = logging.getLogger(f"{__name__}.squash")  # docker-squash tells every step
    chatty.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
    try:
        squashed = Squash(
            log=chatty, image=image_id, docker=client.api, from_layer=from_layer
        ).run()
    except SquashError as exc:
        raise BuildFailed(f"squashing failed: {exc}") from None
    client.images.remove(image_id, noprune=False)  # the unsquashed build, never tagged
    return str(squashed)


def build(
    client: docker.DockerClient,
    service: str,
    strategy: str = "multistage",
    arch: str = "amd64",
    say: Callable[[str], None] = print,
    code: Path = ROOT,
    recipes: Path | None = None,
    retag: bool = True,
    bases: str = BASES,
) -> Generator[str, None, None]:
    """Build agile/<service>:<strategy> (and :<version>-<strategy>), yielding its log.
    `code`: the checkout whose gateway code and dependencies go in; `recipes`: a folder
    laid out as dockerfiles/ (its base/ for the hierarchy). Other versions' for the
    paper benchmark, which builds them with `retag` off: only the version's own tag
    (version_reference), so that agile/<service>:<strategy>, what the stack runs, stays.
    `bases`: the namespace of the base images built on (ensured there).

    Stop iterating to cancel. A failure raises BuildFailed and tags nothing, so the
    image a running container uses is never replaced by a broken one.
    """
    if service not in SERVICES:
        raise BuildFailed(f"no service image {service!r}; known: {', '.join(SERVICES)}")
    if strategy not in STRATEGIES:
        raise BuildFailed(f"no build strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    dockerfiles = recipes or recipes_dir()
    depth = bases_needed(recipe_of(service, strategy, dockerfiles), arch, bases)
    ensure_hierarchy(client, arch, say, recipes=dockerfiles / "base", depth=depth, bases=bases)
    with one_at_a_time(f"build-{arch}"):
        yield from _build(client, service, strategy, arch, say, code, dockerfiles, retag, bases)


def _tag(strategy: str, arch: str) -> str:
    # A build for another architecture (for gateways of that kind) never takes the tag
    # of what this machine runs.
    return strategy if arch == HOST_ARCH else f"{strategy}-{arch}"


def version_reference(service: str, strategy: str, arch: str = HOST_ARCH, code: Path = ROOT) -> str:
    """The tag a build of `code` gives its image whatever `retag` says."""
    return f"agile/{service}:{code_version(code)}-{_tag(strategy, arch)}"


def _build(
    client: docker.DockerClient,
    service: str,
    strategy: str,
    arch: str,
    say: Callable[[str], None],
    code: Path,
    dockerfiles: Path,
    retag: bool,
    bases: str,
) -> Generator[str, None, None]:
    image = SERVICES[service]
    if service != "bus":
        build_wheelhouse(arch, say, code)
    context = stage(image, strategy, arch, dockerfiles, code)
    version = code_version(code)
    tail: list[str] = []
    stream = client.api.build(
        path=str(context),
        buildargs={
            "ARCH": arch,
            "BASES": bases,
            "SERVICE": image.service,
            "BUS_NAMES": " ".join(image.bus_names),
        },
        labels={
            f"{LABEL}.service": service,
            f"{LABEL}.strategy": strategy,
            f"{LABEL}.version": version,
        },
        platform=PLATFORMS[arch],
        rm=True,
        forcerm=True,
        decode=True,
    )
    image_id = None
    for chunk in stream:
        if "error" in chunk:
            raise BuildFailed(
                f"{service} ({strategy}): {chunk['error'].strip()}\n" + "".join(tail[-10:])
            )
        line = str(chunk.get("stream", ""))
        if aux := chunk.get("aux"):
            image_id = aux.get("ID")
        if not line.strip():
            continue
        tail.append(line)
        yield line.rstrip()
    if image_id is None:
        raise BuildFailed(
            f"{service} ({strategy}): the engine gave no image\n" + "".join(tail[-10:])
        )
    if strategy.startswith("squashed"):
        base = hierarchy(arch, bases)[0 if service == "bus" else 1].tag
        image_id = squash(client, image_id, None if strategy == "squashed-all" else base, say)
    built = client.images.get(image_id)
    tag = _tag(strategy, arch)
    built.tag(f"agile/{service}", f"{version}-{tag}")
    if retag:
        built.tag(f"agile/{service}", tag)
        say(f"agile/{service}:{tag} = agile/{service}:{version}-{tag} ({built.short_id})")
    else:
        say(f"agile/{service}:{version}-{tag} ({built.short_id})")
