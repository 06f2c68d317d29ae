"""The Docker engine: the one place a client for it is made, and where what the Docker SDK
and its HTTP stack raise becomes an EngineError saying what failed. The SDK is
imported when a client is first made: most of the gateway's processes never need it."""

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from services.errors import EngineError, EngineUnreachable


def connect(url: str | None = None, timeout: float = 60, ping: bool = True) -> Any:
    """A docker.DockerClient (untyped) for the engine at `url` (DOCKER_HOST or the local
    socket when None), checked to answer unless `ping` is False."""
    import docker

    try:
        client = (
            docker.DockerClient(base_url=url, timeout=timeout)
            if url
            else docker.from_env(timeout=timeout)
        )
        if ping:
            client.ping()
    except docker.errors.DockerException as exc:
        raise unreachable(exc, url) from None
    return client


def unreachable(exc: Exception, url: str | None = None) -> EngineUnreachable:
    """What the SDK raised when the engine did not answer, said for the operator."""
    where = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    text = str(exc)
    if "FileNotFoundError" in text:
        reason = "no engine socket there"
    elif "refused" in text.lower():
        reason = "connection refused"
    elif "PermissionError" in text:
        reason = "permission denied (is this user in the docker group?)"
    else:
        reason = text[:160]
    return EngineUnreachable(where, reason)


@contextlib.contextmanager
def said(doing: str) -> Iterator[None]:
    """What the SDK and its HTTP stack raise (an API error, a refused or dropped
    connection, a timeout) as an EngineError saying what failed."""
    from docker.errors import APIError, DockerException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except APIError as exc:
        raise EngineError(f"{doing} failed: {exc.explanation or exc}") from None
    except (DockerException, OSError, HTTPError) as exc:  # requests' errors are OSErrors
        raise EngineError(f"{doing} failed: {exc}") from None
