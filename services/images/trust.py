"""Signed releases, checked on the gateway before anything changes: The Update Framework
(TUF), with python-tuf's client, so that neither the registry nor the network between
can make a gateway run an image the build host did not sign for it.

The metadata lives in the same registry as the images (a gateway reaches no other
server), in the repository agile/trust: each file (N.root.json, timestamp.json,
N.snapshot.json, N.targets.json, N.SERVICE.json) under a tag of its own name, as an
artifact of one blob (the snapshot and timestamp name each file's blob digest, so a
gateway takes those blobs directly). The targets role delegates each service image to
a role of its own, SERVICE (terminating, the release key), so a release of one service
costs a gateway that role's file only. A release of agile/SERVICE:STRATEGY is its
target SERVICE/STRATEGY: its length and sha256 are the image manifest's, and it names
the image (config digest), its release number (the role's version: it only grows) and
version; a delta bundle that makes it is the target SERVICE/STRATEGY/delta/FROM (FROM:
the config digest it starts from, in hex).
"""

import contextlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from services.errors import AgileError

TRUST_REPO = "agile/trust"
METADATA = "application/vnd.eclipse.agail.tuf.metadata.v1+json"
METADATA_CONFIG = "application/vnd.eclipse.agail.tuf.config.v1+json"
TRUSTED_ROOT = "trusted-root.json"  # the provisioned root, in the stack's state folder
METADATA_MAX = 5_000_000  # python-tuf's own bound on targets metadata
RELEASES = "releases.json"  # image id -> the release number it was installed as
PROVISIONED = "provisioned-root.json"  # the root the cached metadata was verified from


def target_path(service: str, strategy: str) -> str:
    return f"{service}/{strategy}"


def delta_path(service: str, strategy: str, from_id: str) -> str:
    return f"{target_path(service, strategy)}/delta/{from_id.removeprefix('sha256:')}"


class Refused(AgileError, RuntimeError):
    """The release is not one this gateway may run; `short` says why in a few words."""

    def __init__(self, message: str, short: str) -> None:
        super().__init__(message)
        self.short = short


@dataclass(frozen=True)
class Policy:
    """What a gateway trusts: the root metadata it was provisioned with (none: nothing
    signed can be checked), where verified metadata is kept between updates (what makes
    an older release replayed later a replay), and whether unsigned images may run."""

    root: Path | None
    cache: Path
    allow_unsigned: bool = False
    # One refresh for every check made with this policy (`once`): a plan of the stack.
    shared: bool = False
    _refreshed: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, compare=False, repr=False
    )

    def once(self) -> "Policy":
        """This policy, refreshing the metadata once for all the checks made with it
        (each service's plan of one stack's check), not once each."""
        return replace(self, shared=True)

    @classmethod
    def of(cls, options: dict[str, Any], state_dir: Path, cache: Path) -> "Policy":
        """The policy of the update service's options (services.catalog's `updater`)."""
        root = Path(options["trust"] or state_dir / TRUSTED_ROOT)
        return cls(root, cache, bool(options["allow-unsigned"]))

    def release_of(self, image_id: str) -> int:
        """The release number `image_id` was installed as (0: not by a signed update)."""
        try:
            return int(json.loads((self.cache / RELEASES).read_text()).get(image_id, 0))
        except (OSError, ValueError, AttributeError, TypeError):
            return 0

    def installed(self, image_id: str, release: int) -> None:
        """Remember the release an image was installed as (kept for the last 20)."""
        path = self.cache / RELEASES
        try:
            known = json.loads(path.read_text())
            known = known if isinstance(known, dict) else {}
        except (OSError, ValueError):
            known = {}
        known.pop(image_id, None)
        known[image_id] = release
        self.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(list(known.items())[-20:])))
        os.replace(tmp, path)


@dataclass(frozen=True)
class Release:
    """A signed release of one service image, as the verified metadata gives it."""

    manifest_digest: str
    manifest_size: int
    image: str  # its config digest: the image id the engine must end with
    release: int
    version: str
    keys: tuple[str, ...]  # the release keys that signed it (short ids)
    expires: datetime  # the first expiry among the metadata it rests on
    deltas: dict[str, tuple[str, int]] = field(default_factory=dict)  # from -> (digest, size)
    metadata_bytes: int = 0  # what checking it downloaded

    def describe(self) -> str:
        return (
            f"release {self.release}, signed by {', '.join(self.keys)}, "
            f"metadata valid until {self.expires:%Y-%m-%d %H:%M} UTC "
            f"({self.metadata_bytes:,} bytes of it downloaded)"
        )


def _fetcher(registry: str) -> Any:
    from tuf.api.exceptions import DownloadHTTPError
    from tuf.ngclient import FetcherInterface

    from services.images import registry as reg

    class RegistryFetcher(FetcherInterface):
        """TUF's files from the registry: NAME is the tag of an artifact in agile/trust."""

        def __init__(self) -> None:
            self.downloaded = 0
            # File name -> the blob digest the metadata fetched before names for it: taken
            # straight as a blob (python-tuf checks it against that very hash and length).
            self.named: dict[str, str] = {}

        def _fetch(self, url: str) -> Iterator[bytes]:
            name = url.rsplit("/", 1)[-1]
            if name in self.named:
                data = reg.blob(registry, TRUST_REPO, self.named[name], METADATA_MAX)
                self.downloaded += len(data)
                self._learn(data)
                yield data
                return
            try:
                raw = reg.manifest_bytes(registry, TRUST_REPO, name, reg.OCI_MANIFEST)
                self.downloaded += len(raw)
                layers = json.loads(raw).get("layers") or [{}]
                data = reg.blob(registry, TRUST_REPO, str(layers[0].get("digest")), METADATA_MAX)
            except reg.RegistryError as exc:
                if exc.status in (403, 404):  # no such file: for N+1.root.json, no newer root
                    raise DownloadHTTPError(str(exc), exc.status) from None
                raise  # said as itself: unreachable, a certificate, credentials
            except (ValueError, AttributeError) as exc:
                raise DownloadHTTPError(f"{name}: not a metadata artifact ({exc})", 500) from None
            self.downloaded += len(data)
            self._learn(data)
            yield data

        def _learn(self, data: bytes) -> None:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                for name, meta in json.loads(data)["signed"].get("meta", {}).items():
                    if "sha256" in meta.get("hashes", {}):
                        role = name.removesuffix(".json")
                        versioned = f"{meta['version']}.{role}.json"
                        self.named[versioned] = "sha256:" + meta["hashes"]["sha256"]

    return RegistryFetcher()


def _expiry(fetcher: Any, role: str) -> str:
    """When `role`'s newest metadata in the registry expired (unverified: only said)."""
    name, step = "timestamp.json", {"timestamp": "snapshot", "snapshot": "targets"}
    with contextlib.suppress(Exception):
        for at in ("timestamp", "snapshot", "targets"):
            signed = json.loads(b"".join(fetcher.fetch(name)))["signed"]
            if at == role:
                return f"{signed['expires'].replace('T', ' ').rstrip('Z')} UTC"
            name = f"{signed['meta'][step[at] + '.json']['version']}.{step[at]}.json"
    return "an earlier date"


def _refused(exc: Exception, fetcher: Any) -> Refused:
    from tuf.api import exceptions as tuf

    text = str(exc)
    if isinstance(exc, tuf.ExpiredMetadataError):
        role = next(
            (r for r in ("timestamp", "snapshot", "targets", "root") if r in text), "timestamp"
        )
        return Refused(
            f"the signed {role} metadata expired on {_expiry(fetcher, role)} (a frozen "
            "registry, or a build host that stopped signing): no release is trusted until "
            "it signs again",
            "expired",
        )
    if isinstance(exc, tuf.UnsignedMetadataError):
        return Refused(
            f"metadata not signed by the keys this gateway trusts (an unknown or revoked "
            f"key): {text}",
            "bad signature",
        )
    if isinstance(exc, tuf.BadVersionNumberError):
        return Refused(f"older metadata than this gateway has seen (a replay): {text}", "replay")
    if isinstance(exc, tuf.LengthOrHashMismatchError):
        return Refused(f"metadata other than what is signed for: {text}", "digest differs")
    if isinstance(exc, tuf.DownloadHTTPError) and exc.status_code == 404:
        return Refused(
            "unsigned: the registry holds no signed metadata (agile-gateway trust init "
            "on the build host, then publish)",
            "unsigned",
        )
    return Refused(f"the signed metadata cannot be checked: {text}", "bad metadata")


def _refresh(policy: Policy, registry: str, fetcher: Any) -> Any:
    """python-tuf's client with the metadata refreshed from the registry and verified."""
    from tuf.ngclient import Updater

    assert policy.root is not None
    policy.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    policy.cache.chmod(0o700)  # what it keeps decides what runs: the updater's alone
    given, mark = policy.root.read_bytes(), policy.cache / PROVISIONED
    if not mark.exists() or mark.read_bytes() != given:
        # Provisioned anew (another build host's root): what was verified from the old
        # one is no ground for the new one.
        for old in policy.cache.glob("*.json"):
            if old.name != RELEASES:
                old.unlink()
        shutil.rmtree(policy.cache / "root_history", ignore_errors=True)
        mark.write_bytes(given)
    bootstrap = None if (policy.cache / "root.json").exists() else given
    try:
        updater = Updater(
            str(policy.cache),
            f"oci://{registry}/{TRUST_REPO}/",
            fetcher=fetcher,
            bootstrap=bootstrap,
        )
        updater.refresh()
    except _metadata_errors() as exc:  # a registry's own error goes out as itself
        raise _reason(exc, fetcher) from None
    return updater


def _metadata_errors() -> tuple[type[Exception], ...]:
    """What python-tuf raises for metadata it will not trust, or cannot read."""
    from securesystemslib.exceptions import Error as SignatureError
    from tuf.api import exceptions as tuf

    return tuf.RepositoryError, tuf.DownloadError, SignatureError, ValueError, KeyError, TypeError


def _reason(exc: Exception, fetcher: Any) -> Refused:
    """What python-tuf raised, as this gateway says it."""
    from tuf.api import exceptions as tuf

    if isinstance(exc, (tuf.RepositoryError, tuf.DownloadError)):
        return _refused(exc, fetcher)
    return Refused(f"the signed metadata cannot be read: {exc}", "bad metadata")


def verify(policy: Policy, registry: str, service: str, strategy: str) -> Release | None:
    """The signed release of agile/SERVICE:STRATEGY after refreshing the metadata from
    the registry and checking it against the trusted root; None where nothing is signed
    and the policy allows unsigned images. Refused with the reason otherwise; a registry
    that does not answer is a RegistryError."""
    if policy.root is None or not policy.root.is_file():
        if policy.allow_unsigned:
            return None
        raise Refused(
            "unsigned: this gateway has no trusted root to check releases with "
            "(provision one: agile-gateway trust provision ROOT.json)",
            "unsigned",
        )
    from tuf.api.metadata import Metadata, Targets

    path = target_path(service, strategy)
    with policy._lock:
        refreshed = policy._refreshed.get(registry)
        if isinstance(refreshed, Refused):
            raise refreshed
        if refreshed is None:
            fetcher = _fetcher(registry)
            try:
                updater = _refresh(policy, registry, fetcher)
            except Refused as exc:
                if policy.shared:
                    policy._refreshed[registry] = exc
                raise
            if policy.shared:
                policy._refreshed[registry] = (updater, fetcher)
        else:
            updater, fetcher = refreshed
        before = 0 if refreshed is None else fetcher.downloaded
        try:
            # Through the service's own role (a delegation): verified, kept in the cache.
            target = updater.get_targetinfo(path)
        except _metadata_errors() as exc:
            raise _reason(exc, fetcher) from None
    if target is None:
        if policy.allow_unsigned:
            return None
        raise Refused(f"unsigned: no signed release of {path} in the registry", "unsigned")
    files = {
        role: Metadata.from_file(str(policy.cache / f"{role}.json"))
        for role in ("root", "timestamp", "snapshot", "targets", service)
    }
    role, top = files[service].signed, files["targets"].signed
    assert isinstance(role, Targets) and isinstance(top, Targets) and top.delegations
    signers = (top.delegations.roles or {})[service].keyids
    keys = tuple(k[:12] for k in files[service].signatures if k in signers)
    custom = target.unrecognized_fields.get("custom") or {}
    try:
        deltas = {
            "sha256:" + p.rsplit("/", 1)[1]: ("sha256:" + t.hashes["sha256"], t.length)
            for p, t in role.targets.items()
            if p.startswith(path + "/delta/")
        }
        return Release(
            "sha256:" + target.hashes["sha256"],
            target.length,
            str(custom["image"]),
            int(custom["release"]),
            str(custom.get("version", "")),
            keys,
            min(md.signed.expires for md in files.values()),
            deltas,
            fetcher.downloaded - before,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Refused(
            f"{path}: a signed target this gateway cannot read ({exc})", "bad metadata"
        ) from None


def check_root(data: bytes) -> str:
    """What a root metadata file holds, once checked to be one its own keys signed;
    Refused if not."""
    from tuf.api.metadata import Metadata, Root

    try:
        md = Metadata[Root].from_bytes(data)
        if not isinstance(md.signed, Root):
            raise ValueError(f"a {md.signed.type} file, not a root")
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    except _metadata_errors() as exc:
        raise Refused(f"not a root metadata file its own keys signed: {exc}", "bad root") from None
    roles = md.signed.roles
    return (
        f"root version {md.signed.version}, expires {md.signed.expires:%Y-%m-%d}; release "
        f"keys {', '.join(k[:12] for k in roles['targets'].keyids)}; root keys "
        f"{roles['root'].threshold} of {len(roles['root'].keyids)}"
    )


_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def metadata_tag(name: str) -> str:
    """The tag a metadata file is kept under (its own name: a valid tag)."""
    if not _TAG.match(name):
        raise ValueError(f"{name!r} cannot be a tag")
    return name
