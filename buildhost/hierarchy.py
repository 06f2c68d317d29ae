"""The base-image hierarchy: a lean Debian for a CPU architecture (debootstrap minbase,
imported), the Python runtime on it, and a build image beside the runtime.

Every service image starts from exactly this chain, so the base layers download and
sit on disk once. Each image carries the digest of its recipe; a rebuild happens only
when the recipe (or the architecture) changed.
"""

import hashlib
import logging
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import BuildError, ImageNotFound

from buildhost.worklock import one_at_a_time
from services.errors import EngineError
from services.paths import DOCKERFILES

log = logging.getLogger(__name__)

RECIPES = DOCKERFILES / "base"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
RECIPE_LABEL = "org.agile-gateway.recipe"
# The hierarchy's namespace; another (the build-time benchmark's) leaves this one's tags.
BASES = "agile"
# What debootstrap leaves that no image needs: downloaded packages, indexes, docs.
PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man")
# As Debian's own container images do: apt keeps no binary caches (75 MB a layer) and
# no downloaded packages in any layer built on this base.
APT_CLEAN = """APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""

Log = Callable[[str], None]
# Debian architecture -> Docker platform. A foreign one builds under qemu-user-static
# (its binfmt handlers registered with the F flag, so that they work inside builds).
PLATFORMS = {
    "amd64": "linux/amd64",
    "arm64": "linux/arm64",
    "armhf": "linux/arm/v7",
    "i386": "linux/386",
}
_MACHINES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386"}
HOST_ARCH = _MACHINES.get(platform.machine(), platform.machine())


class HierarchyError(EngineError, RuntimeError):
    """A layer of the hierarchy could not be built; the message says which and why."""


@dataclass(frozen=True)
class Layer:
    tag: str
    recipe: str  # file under dockerfiles/base/, or "debootstrap"
    parent: "Layer | None"

    @property
    def name(self) -> str:
        return self.tag.split(":")[0]


def hierarchy(arch: str = "amd64", bases: str = BASES) -> tuple[Layer, Layer, Layer]:
    """(debian, python runtime, build image) for an architecture, tagged in `bases`."""
    debian = Layer(f"{bases}/debian:{SUITE}-{arch}", "debootstrap", None)
    python = Layer(f"{bases}/python:3.11-{SUITE}-{arch}", "python.Dockerfile", debian)
    build = Layer(f"{bases}/python-build:3.11-{SUITE}-{arch}", "build.Dockerfile", python)
    return debian, python, build


def recipe_digest(layer: Layer, arch: str, recipes: Path = RECIPES) -> str:
    """What a layer is made from: its recipe, its parent's recipe, the architecture."""
    h = hashlib.sha256(f"{SUITE} {arch} minbase {' '.join(PRUNE)} {APT_CLEAN}".encode())
    if layer.recipe != "debootstrap":
        h.update((recipes / layer.recipe).read_bytes())
    if layer.parent is not None:
        h.update(recipe_digest(layer.parent, arch, recipes).encode())
    return h.hexdigest()[:32]


def _current(client: docker.DockerClient, layer: Layer, digest: str) -> bool:
    try:
        image = client.images.get(layer.tag)
    except ImageNotFound:
        return False
    return (image.labels or {}).get(RECIPE_LABEL) == digest


def ensure_hierarchy(
    client: docker.DockerClient,
    arch: str = "amd64",
    say: Log = log.info,
    force: bool = False,
    recipes: Path = RECIPES,
    depth: int = 3,
    bases: str = BASES,
) -> list[str]:
    """Build what is missing or out of date (made from other `recipes` than the ones
    built) of the hierarchy's `depth` layers from the bottom; their tags."""
    if arch not in PLATFORMS:
        raise HierarchyError(f"no Docker platform for {arch!r}; known: {', '.join(PLATFORMS)}")
    built = []
    with one_at_a_time(f"hierarchy-{arch}"):
        for layer in hierarchy(arch, bases)[:depth]:
            digest = recipe_digest(layer, arch, recipes)
            if not force and _current(client, layer, digest):
                say(f"{layer.tag}: up to date")
            elif layer.parent is None:
                _debootstrap(client, layer, arch, digest, say)
            else:
                _build(client, layer, arch, digest, say, recipes)
            built.append(layer.tag)
    return built


def _debootstrap(
    client: docker.DockerClient, layer: Layer, arch: str, digest: str, say: Log
) -> None:
    if shutil.which("debootstrap") is None:
        raise HierarchyError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="agile-debootstrap-") as tmp:
        root = Path(tmp) / "root"
        say(f"{layer.tag}: debootstrap --variant=minbase --arch={arch} {SUITE}")
        cmd = ["debootstrap", "--variant=minbase", f"--arch={arch}", SUITE, str(root), MIRROR]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise HierarchyError(f"debootstrap for {arch} failed:\n{tail}")
        for part in PRUNE:
            shutil.rmtree(root / part, ignore_errors=True)
        (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        for cache in (root / "var/cache/apt").glob("*.bin"):
            cache.unlink()
        (root / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
        context = Path(tmp) / "context"
        context.mkdir()
        # Numeric owners and a fixed order: the same tree gives the same layer.
        subprocess.run(
            [
                "tar",
                "-C",
                str(root),
                "--numeric-owner",
                "--sort=name",
                "-cf",
                str(context / "root.tar"),
                ".",
            ],
            check=True,
        )
        # FROM scratch + ADD rather than `docker import`: a build takes the platform, so
        # a foreign architecture's image says what it is.
        (context / "Dockerfile").write_text('FROM scratch\nADD root.tar /\nCMD ["/bin/bash"]\n')
        say(f"{layer.tag}: adding {(context / 'root.tar').stat().st_size / 1e6:.0f} MB")
        _build_context(client, layer.tag, context, "Dockerfile", arch, digest, {})


def _build(
    client: docker.DockerClient, layer: Layer, arch: str, digest: str, say: Log, recipes: Path
) -> None:
    assert layer.parent is not None
    say(f"{layer.tag}: building {layer.recipe} on {layer.parent.tag}")
    _build_context(
        client, layer.tag, recipes, layer.recipe, arch, digest, {"BASE": layer.parent.tag}
    )


def _build_context(
    client: docker.DockerClient,
    tag: str,
    context: Path,
    dockerfile: str,
    arch: str,
    digest: str,
    buildargs: dict[str, str],
) -> None:
    try:
        _, output = client.images.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=buildargs,
            labels={RECIPE_LABEL: digest},
            platform=PLATFORMS[arch],
            rm=True,
            forcerm=True,
        )
    except BuildError as exc:
        tail = "".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)
        raise HierarchyError(
            f"{tag}: {exc.msg}\n" + "\n".join(tail.strip().splitlines()[-8:])
        ) from None
    for chunk in output:
        if line := str(chunk.get("stream", "")).strip():
            log.debug("%s: %s", tag, line)
