"""How a registry is reached, as the Docker engine reaches it: HTTPS with its certificate
checked (the system's CAs and the engine's own per-registry ones in
/etc/docker/certs.d/HOST:PORT/*.crt), except for registries listed as insecure (the
loopback ones by default, as for dockerd: HTTPS tried first, then plain HTTP); and the
credentials the engine's user has for it (the docker config's `auths`, or its credential
helper), by basic authentication or the bearer token the registry's realm hands out.
"""

import base64
import functools
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

INSECURE_ENV = "AGILE_INSECURE_REGISTRIES"  # host:port,...; "loopback" (the default) names those
CERTS_ENV = "AGILE_REGISTRY_CERTS"  # the engine's certs.d (tests point it elsewhere)
LOOPBACK = "loopback"

_lock = threading.Lock()
_schemes: dict[str, str] = {}  # registry -> the scheme that answered
_tokens: dict[tuple[str, str], str] = {}  # (registry, scope) -> a bearer token
_auth: dict[str, str] = {}  # registry -> the Authorization it last took (sent first)


def insecure(registry: str) -> bool:
    listed = {r.strip() for r in os.environ.get(INSECURE_ENV, LOOPBACK).split(",") if r.strip()}
    if registry in listed:
        return True
    if LOOPBACK not in listed:
        return False
    host = registry.rsplit(":", 1)[0].strip("[]") if ":" in registry else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(registry: str) -> ssl.SSLContext:
    """The system's CAs, and those the engine has for this registry."""
    folder = Path(os.environ.get(CERTS_ENV) or "/etc/docker/certs.d") / registry
    changed = folder.stat().st_mtime_ns if folder.is_dir() else 0  # a CA added: anew
    return _context(folder, changed)


@functools.lru_cache(maxsize=32)
def _context(folder: Path, changed: int) -> ssl.SSLContext:
    # Made once per registry (and its CAs): loading the system's CAs takes milliseconds,
    # and an update makes a request per layer and per metadata file.
    context = ssl.create_default_context()
    for ca in sorted(folder.glob("*.crt")) if folder.is_dir() else ():
        context.load_verify_locations(cafile=str(ca))
    return context


def schemes(registry: str) -> list[str]:
    """The schemes to try, the one that answered before first."""
    allowed = ["https", "http"] if insecure(registry) else ["https"]
    with _lock:
        known = _schemes.get(registry)
    return sorted(allowed, key=lambda scheme: scheme != known)


def answered(registry: str, scheme: str, auth: str = "") -> None:
    with _lock:
        _schemes[registry] = scheme
        if auth:
            _auth[registry] = auth


def remembered(registry: str) -> str:
    with _lock:
        return _auth.get(registry, "")


def credentials(registry: str) -> tuple[str, str] | None:
    """(user, secret) for the registry from the docker config of this process's user
    (DOCKER_CONFIG, else ~/.docker): a credential helper's, else `auths`."""
    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    helper = (config.get("credHelpers") or {}).get(registry) or config.get("credsStore")
    if helper and (program := shutil.which(f"docker-credential-{helper}")):
        got = subprocess.run(
            [program, "get"], input=registry, capture_output=True, text=True, timeout=30
        )
        if got.returncode == 0:
            try:
                found = json.loads(got.stdout)
                return str(found["Username"]), str(found["Secret"])
            except (ValueError, KeyError):
                pass
    auths = config.get("auths") or {}
    entry = next(
        (auths[k] for k in (registry, f"https://{registry}", f"http://{registry}") if k in auths),
        None,
    )
    if not entry or not entry.get("auth"):
        return None
    try:
        user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, secret


def _basic(registry: str) -> str:
    found = credentials(registry)
    if not found:
        return ""
    return "Basic " + base64.b64encode(f"{found[0]}:{found[1]}".encode()).decode()


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {realm, service, ...})."""
    kind, _, rest = header.strip().partition(" ")
    params = {}
    for part in urllib.request.parse_http_list(rest):
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return kind.lower(), params


def authorization(registry: str, challenge: str, context: ssl.SSLContext | None) -> str:
    """The Authorization header that answers the registry's 401 challenge ("" if none:
    no credentials, or the realm gave no token)."""
    kind, params = _challenge(challenge)
    if kind == "basic":
        return _basic(registry)
    if kind != "bearer" or "realm" not in params:
        return ""
    scope = params.get("scope", "")
    with _lock:
        if (registry, scope) in _tokens:
            return "Bearer " + _tokens[registry, scope]
    query = {k: v for k, v in (("service", params.get("service")), ("scope", scope)) if v}
    url = params["realm"] + ("?" + urllib.parse.urlencode(query) if query else "")
    headers = {"Authorization": basic} if (basic := _basic(registry)) else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=15, context=context
        ) as response:
            answer = json.loads(response.read(1 << 20))
    except (urllib.error.URLError, OSError, ValueError):
        return ""
    token = answer.get("token") or answer.get("access_token") or ""
    with _lock:
        _tokens[registry, scope] = token
    return "Bearer " + token if token else ""


def forget(registry: str, challenge: str) -> None:
    """Credentials the registry no longer takes (a token expired): asked again next time."""
    _, params = _challenge(challenge)
    with _lock:
        _tokens.pop((registry, params.get("scope", "")), None)
        _auth.pop(registry, None)
