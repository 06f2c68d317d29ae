"""The registry's HTTP API (Docker Registry v2 / OCI distribution), as much as updates
and publishing need: manifests and blobs, read and written; over TLS and with the
credentials the engine has (services.images.registry_access)."""

import hashlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from services import errors
from services.images import registry_access as access

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class RegistryError(errors.RegistryError, RuntimeError):
    """The registry refused or could not be reached; `short` says it in a few words."""

    def __init__(self, message: str, short: str = "error", status: int = 0) -> None:
        super().__init__(message)
        self.short = short
        self.status = status


MANIFEST_MAX = 4 << 20  # as the engine's own limit: a manifest larger is not one


def request(
    registry: str,
    path: str,
    accept: str = "",
    method: str = "GET",
    data: bytes | None = None,
    ctype: str = "",
    limit: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The response's body and headers; a body over `limit` bytes is a RegistryError (a
    registry that lies must not fill the gateway's memory)."""
    with _opened(registry, path, accept, method, data, ctype) as response:
        body = response.read() if limit is None else response.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise RegistryError(
                f"{registry}{path}: the registry's answer is over {limit:,} bytes", "too big"
            )
        return body, dict(response.headers)


def _open(
    registry: str, path: str, accept: str, method: str, data: bytes | None, ctype: str
) -> Any:
    """The open response, over HTTPS (or, for an insecure registry that does not speak
    it, HTTP), answering an authentication challenge once."""
    headers = {"Accept": accept} if accept else {}
    if ctype:
        headers["Content-Type"] = ctype
    problem: Exception | None = None
    for scheme in access.schemes(registry):
        url = f"{scheme}://{registry}{path}"
        context = access.tls_context(registry) if scheme == "https" else None
        # What the registry took last (one token for every request of an update), then
        # what its challenge asks for (another scope, or an expired token renewed).
        auth, fresh = access.remembered(registry), False
        while True:
            sent = {**headers, "Authorization": auth} if auth else headers
            req = urllib.request.Request(url, data=data, headers=sent, method=method)
            try:
                response = urllib.request.urlopen(req, timeout=15, context=context)
            except urllib.error.HTTPError as exc:
                access.answered(registry, scheme)
                challenge = exc.headers.get("WWW-Authenticate", "")
                if exc.code == 401 and challenge and not fresh:
                    if auth:
                        access.forget(registry, challenge)
                    auth, fresh = access.authorization(registry, challenge, context), True
                    if auth:
                        continue
                if exc.code == 401:
                    raise RegistryError(
                        f"{url}: the registry wants credentials this gateway has not got "
                        "(docker login as the update service's user)",
                        "unauthorized",
                        401,
                    ) from None
                if exc.code == 404:
                    raise RegistryError(
                        f"{url}: no such image or tag in the registry", "no such tag", 404
                    ) from None
                raise RegistryError(
                    f"{url}: the registry answered {exc.code} {exc.reason}", status=exc.code
                ) from None
            except (urllib.error.URLError, OSError) as exc:
                problem = exc
                break  # the next scheme, if any
            access.answered(registry, scheme, auth)
            return response
    reason = getattr(problem, "reason", problem)
    short = "certificate" if isinstance(reason, ssl.SSLCertVerificationError) else "unreachable"
    raise RegistryError(f"the registry is not reachable ({url}): {reason}", short) from None


@contextmanager
def _opened(
    registry: str,
    path: str,
    accept: str = "",
    method: str = "GET",
    data: bytes | None = None,
    ctype: str = "",
) -> Iterator[Any]:
    """The response, read inside: the registry refusing, or going away before or while
    it answers, is a RegistryError."""
    response = _open(registry, path, accept, method, data, ctype)
    try:
        with response:
            yield response
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(
            f"the registry went away while answering ({registry}{path}): {exc}", "unreachable"
        ) from None


def manifest(registry: str, repo: str, reference: str, accept: str = MANIFEST_V2) -> dict[str, Any]:
    return json.loads(manifest_bytes(registry, repo, reference, accept))


def manifest_bytes(
    registry: str, repo: str, reference: str, accept: str = MANIFEST_V2, size: int = 0
) -> bytes:
    """A manifest as the registry serves it; by digest (`reference` sha256:...) checked
    against it, and against `size` if given: a registry serving other bytes is refused."""
    raw, _ = request(registry, f"/v2/{repo}/manifests/{reference}", accept, limit=MANIFEST_MAX)
    got = "sha256:" + hashlib.sha256(raw).hexdigest()
    if reference.startswith("sha256:") and (got != reference or (size and len(raw) != size)):
        raise RegistryError(
            f"{repo}@{reference[:19]}: the registry served another manifest "
            f"({len(raw):,} bytes, {got[:19]})",
            "digest differs",
        )
    return raw


def blob(registry: str, repo: str, digest: str, limit: int | None = None) -> bytes:
    """A blob, checked against its digest (a cut or altered download is an error), of
    at most `limit` bytes if given."""
    raw, _ = request(registry, f"/v2/{repo}/blobs/{digest}", limit=limit)
    if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        raise RegistryError(f"{repo}@{digest}: the blob's bytes do not match its digest", "corrupt")
    return raw


def blob_chunks(registry: str, repo: str, digest: str, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A blob as it comes (a layer need not fit in memory), checked against its digest at
    the end: a RegistryError then, and whoever used the chunks must drop what they made."""
    got = hashlib.sha256()
    with _opened(registry, f"/v2/{repo}/blobs/{digest}") as response:
        while piece := response.read(chunk):
            got.update(piece)
            yield piece
    if "sha256:" + got.hexdigest() != digest:
        raise RegistryError(f"{repo}@{digest}: the blob's bytes do not match its digest", "corrupt")


def put_blob(registry: str, repo: str, data: bytes) -> str:
    """Upload a blob in one request (monolithic upload); its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers = request(registry, f"/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    location = urllib.parse.urlsplit(headers.get("Location") or headers.get("location") or "")
    path = location.path + (f"?{location.query}&" if location.query else "?")
    request(
        registry,
        f"{path}digest={digest}",
        method="PUT",
        data=data,
        ctype="application/octet-stream",
    )
    return digest


def put_manifest(registry: str, repo: str, tag: str, body: dict[str, Any]) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    request(
        registry,
        f"/v2/{repo}/manifests/{tag}",
        method="PUT",
        data=data,
        ctype=body["mediaType"],
    )
