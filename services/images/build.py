"""Building a service image with one of the build strategies, with a streamed log.

The build context is staged under build/images/<service>-<strategy>/: the strategy's
Dockerfile, the service's requirements (from pyproject.toml) and the wheelhouse,
built on the host because pip cannot verify TLS inside builds on these machines.
"""

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import docker

from services.busconfig import render_config
from services.images.hierarchy import ROOT, ensure_hierarchy, hierarchy
from services.images.recipes import LABEL, SERVICES, STRATEGIES, ServiceImage

log = logging.getLogger(__name__)

DOCKERFILES = ROOT / "dockerfiles"
# Another folder of recipes laid out as dockerfiles/ (e.g. one being tried out).
RECIPES_ENV = "AGILE_DOCKERFILES"
STAGING = ROOT / "build" / "images"
WHEELHOUSE = ROOT / "build" / "wheelhouse"
CONTAINER_SOCKET = Path("/run/agile/bus.sock")  # in every container of the stack


class BuildFailed(RuntimeError):
    """The build failed; whatever ran before is untouched. The message holds the log's end."""


def requirements(image: ServiceImage) -> list[str]:
    """The service's dependencies from pyproject.toml, without the project itself."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in image.extras:
        reqs += [
            r for r in project["optional-dependencies"][extra] if not r.startswith(project["name"])
        ]
    return reqs


def code_version() -> str:
    """The project's version and a digest of its code: what a code change changes."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    h = hashlib.sha256()
    for path in sorted((ROOT / "services").rglob("*.py")):
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return f"{project['version']}-{h.hexdigest()[:10]}"


def build_wheelhouse(say: Callable[[str], None]) -> Path:
    """Wheels of the project and every dependency, for the host's Python (3.11, as the
    images' Debian has)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for old in WHEELHOUSE.glob("agile_gateway-*.whl"):
        old.unlink()  # always the current code
    say("wheelhouse: pip wheel .[ble,zigbee]")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--wheel-dir",
            str(WHEELHOUSE),
            ".[ble,zigbee]",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BuildFailed(f"pip wheel failed:\n{proc.stderr.strip()[-2000:]}")
    return WHEELHOUSE


def recipes_dir() -> Path:
    return Path(os.environ.get(RECIPES_ENV) or DOCKERFILES)


def stage(image: ServiceImage, strategy: str) -> Path:
    dockerfiles = recipes_dir()
    folder = STAGING / f"{image.name}-{strategy}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recipe = "multistage" if strategy.startswith("squashed") else strategy
    if image.name == "bus":
        shutil.copy(dockerfiles / "bus" / f"{recipe}.Dockerfile", folder / "Dockerfile")
        (folder / "bus.conf").write_text(render_config(CONTAINER_SOCKET))
        # The same image serves the simulated stack's second bus, for the virtual BlueZ.
        system = CONTAINER_SOCKET.parent / "system" / "bus.sock"
        (folder / "system-bus.conf").write_text(render_config(system, names=["org.bluez"]))
        return folder
    shutil.copy(dockerfiles / f"python-service.{recipe}.Dockerfile", folder / "Dockerfile")
    (folder / "requirements.txt").write_text("\n".join(requirements(image)) + "\n")
    # The project's wheel apart from the dependencies': a code change must not touch the
    # dependency stage, or its layer (and the build cache) would change with every edit.
    ours = sorted(WHEELHOUSE.glob("agile_gateway-*.whl"))
    shutil.copytree(
        WHEELHOUSE, folder / "wheelhouse", ignore=shutil.ignore_patterns("agile_gateway-*")
    )
    (folder / "project").mkdir()
    for wheel in ours:
        shutil.copy2(wheel, folder / "project" / wheel.name)
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
) -> Iterator[str]:
    """Build agile/<service>:<strategy> (and :<version>-<strategy>), yielding its log.

    Stop iterating to cancel. A failure raises BuildFailed and tags nothing, so the
    image a running container uses is never replaced by a broken one.
    """
    if service not in SERVICES:
        raise BuildFailed(f"no service image {service!r}; known: {', '.join(SERVICES)}")
    if strategy not in STRATEGIES:
        raise BuildFailed(f"no build strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    image = SERVICES[service]
    ensure_hierarchy(client, arch, say=say)
    if service != "bus":
        build_wheelhouse(say)
    context = stage(image, strategy)
    version = code_version()
    tail: list[str] = []
    stream = client.api.build(
        path=str(context),
        buildargs={
            "ARCH": arch,
            "SERVICE": image.service,
            "BUS_NAMES": " ".join(image.bus_names),
        },
        labels={
            f"{LABEL}.service": service,
            f"{LABEL}.strategy": strategy,
            f"{LABEL}.version": version,
        },
        rm=True,
        forcerm=True,
        decode=True,
        # Baseline images are each built alone, as by different people on different
        # machines: their toolchain layers must not come out of one shared build cache.
        nocache=strategy == "baseline",
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
        base = hierarchy(arch)[0 if service == "bus" else 1].tag
        image_id = squash(client, image_id, None if strategy == "squashed-all" else base, say)
    built = client.images.get(image_id)
    built.tag(f"agile/{service}", strategy)
    built.tag(f"agile/{service}", f"{version}-{strategy}")
    say(f"agile/{service}:{strategy} = agile/{service}:{version}-{strategy} ({built.short_id})")
