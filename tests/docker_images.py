"""Images for tests and benchmarks, made locally: nothing can be pulled on these machines."""

import io
import shutil
import tarfile
from typing import Any

TINY_IMAGE = "agile-test/tiny:1"


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
