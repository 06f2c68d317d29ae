"""The storage key and AES-GCM sealing of segment files."""

import base64
import binascii
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.errors import StorageError

log = logging.getLogger(__name__)

KEY_ENV = "AGILE_STORAGE_KEY"
MAGIC = b"AGSE1"  # an encrypted segment; plain segments are TinyDB JSON and start with "{"
NONCE_BYTES = 12


class StorageKeyError(StorageError, RuntimeError):
    """The key cannot be had or is unsafe; the message says why."""


class TamperedSegment(StorageError, RuntimeError):
    """A segment failed authentication (or cannot be decoded): never returned as data."""


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            key = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(key) == 32:
            return key
    raise StorageKeyError(f"{where} must hold a 256-bit key, as 64 hex digits or base64")


def load_key(path: Path) -> bytes:
    """The key from $AGILE_STORAGE_KEY, else from `path` (mode 0600, created on first use)."""
    if env := os.environ.get(KEY_ENV):
        return _decode_key(env, f"${KEY_ENV}")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        # O_EXCL: two processes creating the key at once must not end up with two keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        log.info("created the storage key %s (mode 0600); keep a copy apart from the data", path)
        return key
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StorageKeyError(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); "
            f"chmod 600 {path} before the store will use it"
        )
    return _decode_key(path.read_text(), str(path))


class Sealer:
    """Seals segment bytes with AES-GCM; the segment's own name is the associated data,
    so a segment copied over another one is detected as well as edited bytes."""

    def __init__(self, key: bytes) -> None:
        self.aead = AESGCM(key)

    def seal(self, data: bytes, name: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self.aead.encrypt(nonce, data, name.encode())

    def open(self, blob: bytes, name: str) -> bytes:
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self.aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], name.encode())
        except InvalidTag:
            raise TamperedSegment(
                f"{name}: authentication failed (tampered, or another key)"
            ) from None


def is_sealed(blob: bytes) -> bool:
    return blob.startswith(MAGIC)
