"""Images for tests and benchmarks, made locally: nothing can be pulled on these machines."""

import contextlib
import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import docker

from services.paths import ROOT, SHIPPED

TINY_IMAGE = "agile-test/tiny:1"
TEST_PROJECT = "agiletest"  # the compose project label of the containers tests make


def make_tiny_image(client: Any) -> str:
    """A minimal image made by `docker import` of busybox (Debian's busybox-static)."""
    try:
        client.images.get(TINY_IMAGE)
        return TINY_IMAGE
    except Exception:
        pass
    busybox = shutil.which("busybox")
    if not busybox:
        raise RuntimeError("busybox (Debian busybox-static) is needed to make the test image")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "sleep", "echo"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    repository, tag = TINY_IMAGE.split(":")
    client.api.import_image_from_data(
        buf.getvalue(), repository=repository, tag=tag, changes=['CMD ["/bin/sleep", "3600"]']
    )
    return TINY_IMAGE


def make_random_image(client: Any, base: str, reference: str, layers: int, size: int) -> str:
    """`reference` on `base` with `layers` layers of `size` random (incompressible)
    bytes each: a download of known size, whatever the registry compresses. Its id."""
    import os
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        lines = [f"FROM {base}"]
        for n in range(layers):
            (Path(folder) / f"blob{n}").write_bytes(os.urandom(size))
            lines.append(f"COPY blob{n} /blob{n}")
        (Path(folder) / "Dockerfile").write_text("\n".join(lines) + "\n")
        image, _ = client.images.build(path=folder, tag=reference, rm=True)
    return image.id


def built(docker_client: Any, service: str, strategy: str = "multistage") -> str:
    """The service's image as the current code builds it (the engine's cache makes a
    second build of unchanged code quick); its tag."""
    from buildhost.build import build

    for _ in build(docker_client, service, strategy, say=lambda _line: None):
        pass
    return f"agile/{service}:{strategy}"


def forget_images(client: Any, references: Iterable[str]) -> None:
    """Untag the references (a benchmark's versions, once the registry has them), and
    remove each image no other tag holds: an image the build cache made the same as
    one tagged otherwise (today's code, built by the suite or the developer) stays."""
    for reference in references:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(reference)


@contextlib.contextmanager
def checkout_copy() -> Iterator[Path]:
    """A copy of what an image's build reads of the checkout: a build from it may change
    its code, and its wheel is made there (setuptools writes build/ into the tree it
    builds), while tests running beside it read this one."""
    with tempfile.TemporaryDirectory(prefix="agile-checkout-") as folder:
        code = Path(folder)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, code / name)
        for package in SHIPPED:
            shutil.copytree(ROOT / package, code / package, ignore=_BYTECODE)
        yield code


_BYTECODE = shutil.ignore_patterns("__pycache__", "build")
