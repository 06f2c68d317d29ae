"""Debian's docker-registry on a free local port, with the engine's blob downloads
counted from its log: for the update tests and `./dev bench images`."""

import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

# Blob downloads by the Docker engine (not the plan's own fetch of the image config).
_ANY_BLOB_GET = re.compile(
    r'http\.request\.method=GET .*http\.request\.uri="/v2/[^"]+/blobs/[^"]+" '
    r".*http\.response\.status=200 http\.response\.written=(\d+)"
)
_BLOB_GET = re.compile(
    r'http\.request\.method=GET .*http\.request\.uri="/v2/[^"]+/blobs/[^"]+" '
    r'http\.request\.useragent="docker/.*http\.response\.status=200 http\.response\.written=(\d+)'
)


class LocalRegistry:
    def __init__(self, folder: Path | None = None) -> None:
        folder = folder or Path(tempfile.mkdtemp(prefix="agile-registry-"))
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{s.getsockname()[1]}"
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
            f"http:\n  addr: {self.address}\n"
        )
        self.log = folder / "registry.log"
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"docker-registry did not start:\n{self.log.read_text()}"
                    ) from None
                time.sleep(0.2)

    def downloaded(self) -> int:
        """Blob bytes the engine has downloaded so far (whole-blob responses)."""
        return sum(int(m[1]) for m in _BLOB_GET.finditer(self.log.read_text()))

    def fetched(self) -> int:
        """Blob bytes fetched so far by anyone: the engine, or the update service itself
        (a delta bundle)."""
        return sum(int(m[1]) for m in _ANY_BLOB_GET.finditer(self.log.read_text()))

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob (to damage it in a test)."""
        hexa = digest.removeprefix("sha256:")
        return self.folder / "data/docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"

    def push(self, client: Any, image_id: str, service: str, tag: str) -> None:
        from buildhost.publish import push

        push(client, image_id, f"{self.address}/agile/{service}", tag)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
