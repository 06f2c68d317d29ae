"""The build host's side of signed releases (TUF; the layout in the registry is
services/images/trust.py's): the keys, the metadata they sign, and its upload.

A trust folder holds:
- root-keys/: the root keys (a threshold of them signs a new root). Keep them offline:
  they are needed only to rotate the other keys.
- release.pem: the targets key, which signs each release (`images publish`), in the
  role of its service (delegated to from the targets role, one per service image).
- online.pem: the snapshot and timestamp key; it signs fresh metadata with a short expiry
  (`trust refresh`, as often as the timestamp's expiry asks: a day by default).
- metadata/: the current metadata, the build host's own copy (what it signs next never
  rests on what the registry says).
Private keys are the build host user's alone (0600, in a 0700 folder).
"""

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.errors import AgileError

if TYPE_CHECKING:  # python-tuf is imported where it is used (a CLI start stays quick)
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, MetaFile, TargetFile

from services.images.trust import (
    METADATA,
    METADATA_CONFIG,
    TRUST_REPO,
    delta_path,
    metadata_tag,
    target_path,
)

ROLES = ("root", "targets", "snapshot", "timestamp")
EXPIRY_DAYS = {"root": 365.0, "targets": 90.0, "snapshot": 7.0, "timestamp": 1.0}
DEFAULT_FOLDER = Path.home() / ".config" / "agile-gateway" / "trust"


class TrustError(AgileError, RuntimeError):
    """The trust folder cannot do what was asked; the message says what to do."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _new_key(path: Path) -> "CryptoSigner":
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner.generate_ed25519()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(signer.private_bytes)
    return signer


def _load_key(path: Path) -> "CryptoSigner":
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        key = load_pem_private_key(path.read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 key")
        return CryptoSigner(key)
    except (OSError, ValueError) as exc:
        raise TrustError(f"{path}: not a key this can sign with ({exc})") from None


@dataclass
class TrustFolder:
    folder: Path

    @property
    def metadata(self) -> Path:
        return self.folder / "metadata"

    @property
    def root_keys(self) -> Path:
        return self.folder / "root-keys"

    def load(self, role: str) -> "Metadata[Any]":
        from tuf.api.metadata import Metadata

        try:
            return Metadata.from_file(str(self.metadata / f"{role}.json"))
        except OSError:
            raise TrustError(
                f"no trust folder at {self.folder}: make one with agile-gateway trust init"
            ) from None

    def key(self, name: str) -> "CryptoSigner":
        return _load_key(self.folder / name)

    def root_signers(self) -> list["CryptoSigner"]:
        return [_load_key(p) for p in sorted(self.root_keys.glob("*.pem"))]

    def _write(self, role: str, md: "Metadata[Any]", versioned: bool = False) -> None:
        from tuf.api.serialization.json import JSONSerializer

        data = md.to_bytes(JSONSerializer(compact=True))  # bytes a gateway's uplink carries
        names = [f"{role}.json"] + ([f"{md.signed.version}.{role}.json"] if versioned else [])
        for name in names:
            tmp = self.metadata / (name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.metadata / name)

    def _sign(
        self,
        role: str,
        md: "Metadata[Any]",
        signers: Iterable["CryptoSigner"],
        days: float | None = None,
    ) -> None:
        default = EXPIRY_DAYS.get(role, EXPIRY_DAYS["targets"])  # a service's role: as targets
        md.signed.expires = _now() + timedelta(days=default if days is None else days)
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        self._write(role, md, versioned=role != "timestamp")

    # -- making and changing --

    def init(self, root_keys: int = 1, threshold: int = 1) -> Path:
        """New keys and first metadata (no release yet); the root file to provision
        gateways with."""
        from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

        if not 1 <= threshold <= root_keys:
            raise TrustError(f"a threshold of {threshold} of {root_keys} root keys")
        if (self.metadata / "root.json").exists():
            raise TrustError(f"{self.folder} already holds a trust root")
        for folder in (self.folder, self.root_keys, self.metadata):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
        roots = [_new_key(self.root_keys / f"root-{i + 1}.pem") for i in range(root_keys)]
        release = _new_key(self.folder / "release.pem")
        online = _new_key(self.folder / "online.pem")
        root = Root(consistent_snapshot=True)
        for signer in roots:
            root.add_key(signer.public_key, "root")
        root.roles["root"].threshold = threshold
        root.add_key(release.public_key, "targets")
        for role in ("snapshot", "timestamp"):
            root.add_key(online.public_key, role)
        self._sign("root", Metadata(root), roots)
        self._sign("targets", Metadata(Targets()), [release])
        self._sign("snapshot", Metadata(Snapshot()), [online])
        self._sign("timestamp", Metadata(Timestamp()), [online])
        return self.metadata / "1.root.json"

    def roles(self) -> list[str]:
        """The delegated roles: one per service image, each signing that image's releases."""
        delegations = self.load("targets").signed.delegations
        return sorted(delegations.roles or {}) if delegations else []

    def sign_role(
        self,
        role: str,
        changes: dict[str, "TargetFile | None"],
        drop_prefix: str = "",
        days: dict[str, float] | None = None,
    ) -> int:
        """A new version of a service's role (delegated to, with the release key, on its
        first release) with these targets (None: removed) and every target under
        `drop_prefix` not among them removed; then a snapshot and a timestamp. A gateway
        downloads the roles that changed only: a release of one service costs it that
        service's targets, not the stack's. The new version, the release's number."""
        from tuf.api.metadata import Metadata, Targets

        if role in ROLES:
            raise TrustError(f"{role!r} is one of TUF's own roles: not a service's name")
        days = days or {}
        release = self.key("release.pem")
        if role not in self.roles():
            self._delegate(role, release)
        exists = (self.metadata / f"{role}.json").exists()
        md = self.load(role) if exists else Metadata(Targets())
        if exists:
            md.signed.version += 1
        if drop_prefix:
            for path in [p for p in md.signed.targets if p.startswith(drop_prefix)]:
                del md.signed.targets[path]
        for path, target in changes.items():
            if target is None:
                md.signed.targets.pop(path, None)
            else:
                md.signed.targets[path] = target
        self._sign(role, md, [release], days.get("targets"))
        self.snapshot(days)
        return int(md.signed.version)

    def next_release(self, role: str) -> int:
        exists = (self.metadata / f"{role}.json").exists()
        return int(self.load(role).signed.version) + 1 if exists else 1

    def _delegate(self, role: str, release: "CryptoSigner") -> None:
        from tuf.api.metadata import DelegatedRole, Delegations

        targets = self.load("targets")
        delegations = targets.signed.delegations or Delegations(keys={}, roles={})
        key = release.public_key
        delegations.keys[key.keyid] = key
        assert delegations.roles is not None
        # Terminating: no other role may sign this service's images.
        delegations.roles[role] = DelegatedRole(
            role, [key.keyid], 1, True, [f"{role}/*", f"{role}/*/delta/*"]
        )
        targets.signed.delegations = delegations
        targets.signed.version += 1
        self._sign("targets", targets, [release])

    def snapshot(self, days: dict[str, float] | None = None) -> None:
        """A new snapshot (of the current targets) and timestamp, freshly expiring."""
        days = days or {}
        online = self.key("online.pem")
        snapshot = self.load("snapshot")
        snapshot.signed.version += 1
        # Length and hash of each file named: a gateway fetches it as a blob by that
        # digest (no manifest request first), and checks it against them.
        for role in ("targets", *self.roles()):
            snapshot.signed.meta[f"{role}.json"] = self._meta_file(role)
        self._sign("snapshot", snapshot, [online], days.get("snapshot"))
        timestamp = self.load("timestamp")
        timestamp.signed.version += 1
        timestamp.signed.snapshot_meta = self._meta_file("snapshot")
        self._sign("timestamp", timestamp, [online], days.get("timestamp"))

    def _meta_file(self, role: str) -> "MetaFile":
        from tuf.api.metadata import MetaFile

        data = (self.metadata / f"{role}.json").read_bytes()
        version = self.load(role).signed.version
        return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})

    def rotate_release(self) -> str:
        """A new release key: root signed anew (by the threshold of root keys) with it in
        place of the old one, which is revoked; the targets and every service's role
        signed again with the new key. The new key's id."""
        root = self.load("root")
        old = list(root.signed.roles["targets"].keyids)
        os.replace(self.folder / "release.pem", self.folder / "release.pem.revoked")
        new = _new_key(self.folder / "release.pem")
        for keyid in old:
            root.signed.revoke_key(keyid, "targets")
        root.signed.add_key(new.public_key, "targets")
        root.signed.version += 1
        self._sign("root", root, self.root_signers())
        targets = self.load("targets")
        delegations = targets.signed.delegations
        if delegations is not None and delegations.roles:
            delegations.keys = {new.public_key.keyid: new.public_key}
            for delegated in delegations.roles.values():
                delegated.keyids = [new.public_key.keyid]
        targets.signed.version += 1
        self._sign("targets", targets, [new])
        for role in self.roles():
            md = self.load(role)
            md.signed.version += 1
            self._sign(role, md, [new])
        self.snapshot()
        return str(new.public_key.keyid)

    # -- the registry --

    def upload(self, registry: str) -> int:
        """Every metadata file into the registry (agile/trust:NAME); bytes uploaded."""
        from services.images import registry as reg

        empty = b"{}"
        config = {
            "mediaType": METADATA_CONFIG,
            "digest": reg.put_blob(registry, TRUST_REPO, empty),
            "size": len(empty),
        }
        sent = 0
        for path in sorted(self.metadata.glob("*.json")):
            if path.name != "timestamp.json" and not path.name[0].isdigit():
                continue  # gateways ask for the others by version (consistent snapshots)
            data = path.read_bytes()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            with_tag = metadata_tag(path.name)
            try:
                reg.manifest_bytes(registry, TRUST_REPO, with_tag, reg.OCI_MANIFEST)
                if path.name != "timestamp.json":
                    continue  # versioned files never change: already there
            except reg.RegistryError as exc:
                if exc.status != 404:
                    raise
            reg.put_blob(registry, TRUST_REPO, data)
            reg.put_manifest(
                registry,
                TRUST_REPO,
                with_tag,
                {
                    "schemaVersion": 2,
                    "mediaType": reg.OCI_MANIFEST,
                    "config": config,
                    "layers": [{"mediaType": METADATA, "digest": digest, "size": len(data)}],
                    "annotations": {"org.eclipse.agail.tuf.role": path.name},
                },
            )
            sent += len(data)
        return sent


def image_target(registry: str, repo: str, tag: str, image_id: str, version: str) -> "TargetFile":
    """The target of an image pushed as REPO:TAG: its manifest as the registry serves it
    (length and sha256), naming its config digest and version. Its release number is set
    when signed (release_targets)."""
    from tuf.api.metadata import TargetFile

    from services.images import registry as reg

    raw = reg.manifest_bytes(registry, repo, tag)
    if json.loads(raw)["config"]["digest"] != image_id:
        raise TrustError(f"{registry}/{repo}:{tag} is not {image_id[:19]} (pushed over meanwhile)")
    return TargetFile(
        len(raw),
        {"sha256": hashlib.sha256(raw).hexdigest()},
        "",
        {"custom": {"image": image_id, "version": version}},
    )


def sign_release(
    trust: TrustFolder,
    registry: str,
    service: str,
    strategy: str,
    image_id: str,
    version: str,
    bundles: Iterable[tuple[str, str, int]] = (),
    days: dict[str, float] | None = None,
) -> int:
    """Sign agile/SERVICE:STRATEGY (pushed) and its delta bundles (from, digest, size) as
    the next release, and upload the metadata; the release number."""
    from tuf.api.metadata import TargetFile

    image = image_target(registry, f"agile/{service}", strategy, image_id, version)
    release = trust.next_release(service)
    image.unrecognized_fields["custom"]["release"] = release
    image.path = target_path(service, strategy)
    changes: dict[str, TargetFile | None] = {image.path: image}
    for from_id, digest, size in bundles:
        path = delta_path(service, strategy, from_id)
        # What it makes needs no naming: the path says whose, and the image a bundle
        # makes is checked against the release's own (every target is bytes on the uplink).
        changes[path] = TargetFile(size, {"sha256": digest.removeprefix("sha256:")}, path)
    signed = trust.sign_role(service, changes, drop_prefix=image.path + "/delta/", days=days)
    assert signed == release
    trust.upload(registry)
    return release
