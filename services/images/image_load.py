"""An image loaded into the engine from its config and only the layers it lacks.

`docker load` skips a layer whose chain the engine has without reading it, so the
tarball names every layer but holds only the missing ones. Layers are written as they
come (a patch being applied, a blob being unpacked): their size is known only at the
end, so each member's header is written after its bytes, over a placeholder.
"""

import hashlib
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import docker

from services.errors import EngineError

BLOCK = tarfile.BLOCKSIZE


class LoadError(EngineError, RuntimeError):
    """The engine did not load the image."""


class LoadTar:
    """The tarball `docker load` takes, written to `path`: the config, a manifest naming
    `layers` layers, and those of them added."""

    def __init__(self, path: Path, config: bytes, repo_tag: str, layers: int) -> None:
        self.path = path
        self.names = [f"{i}/layer.tar" for i in range(layers)]
        manifest = [{"Config": "config.json", "RepoTags": [repo_tag], "Layers": self.names}]
        self._out: BinaryIO = path.open("wb")
        self._member("manifest.json", [json.dumps(manifest).encode()])
        self._member("config.json", [config])

    def add(self, index: int, chunks: Iterable[bytes]) -> str:
        """Layer `index`, from its bytes as they come; their sha256 digest (its diff id)."""
        return self._member(self.names[index], chunks)

    def _member(self, name: str, chunks: Iterable[bytes]) -> str:
        out = self._out
        header = out.tell()
        out.write(bytes(BLOCK))
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.write(bytes(-size % BLOCK))
        end = out.tell()
        info = tarfile.TarInfo(name)
        info.size = size
        block = info.tobuf(tarfile.GNU_FORMAT)  # GNU: any size in one block (PAX adds some)
        assert len(block) == BLOCK, name
        out.seek(header)
        out.write(block)
        out.seek(end)
        return "sha256:" + digest.hexdigest()

    def load(self, client: docker.DockerClient) -> None:
        self._out.write(bytes(2 * BLOCK))  # the end of the archive
        self._out.close()
        with self.path.open("rb") as tarball:
            try:
                client.images.load(tarball)
            except docker.errors.APIError as exc:
                raise LoadError(f"the engine did not load the image: {exc.explanation}") from None

    def __enter__(self) -> "LoadTar":
        return self

    def __exit__(self, *_: object) -> None:
        self._out.close()
