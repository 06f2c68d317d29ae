"""The gateway's state is private: its folders admit only the gateway's user and group
(0750), its files are not readable by others (0640), and what holds a secret (the
ZigBee network key, the storage key) only by the gateway's user (0700/0600). Every
process of the gateway works under PRIVATE_UMASK, and a tree made before it (0755/0644)
is mended when the gateway starts."""

import logging
import os
import stat
import struct
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o027  # new folders 0750, new files 0640
SECRET_UMASK = 0o077  # 0700, 0600


def private_umask() -> None:
    os.umask(PRIVATE_UMASK)


def make_private(folder: Path, strip: int = PRIVATE_UMASK) -> int:
    """`folder` made if needed, and everything below it stripped of the `strip` bits
    (links are not followed); how many modes were mended."""
    folder.mkdir(parents=True, exist_ok=True)
    mended = 0
    for path in (folder, *folder.rglob("*")):
        try:
            st = path.lstat()
        except FileNotFoundError:  # gone meanwhile (a temporary file)
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        mode = stat.S_IMODE(st.st_mode)
        if mode & strip:
            os.chmod(path, mode & ~strip)
            mended += 1
    if mended:
        log.warning("%s: %d modes made private (others had access)", folder, mended)
    return mended


def secret_folder(folder: Path) -> Path:
    """A folder whose files are secrets, the gateway's user's alone: the folder itself
    (0700) keeps out everyone else, whatever mode a library gives the files it makes in
    it later (zigpy's database and its journal)."""
    make_private(folder, SECRET_UMASK)
    return folder


# POSIX ACL entries as the kernel reads them from system.posix_acl_access (acl_ea.h).
_ACL_VERSION = 2
_USER_OBJ, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def admit_groups(folder: Path, gids: Iterable[int]) -> bool:
    """Let members of `gids` pass through `folder` (search only: they reach the bus
    socket in it by name, and list and read nothing), as `setfacl -m g:GID:x` would;
    nobody else gets anything more. False where the file system has no ACLs (the role
    groups then cannot reach the bus; its user and group still can)."""
    mode = stat.S_IMODE(folder.stat().st_mode)
    entries = [(_USER_OBJ, (mode >> 6) & 7, _NO_ID), (_GROUP_OBJ, (mode >> 3) & 7, _NO_ID)]
    entries += [(_GROUP, 1, gid) for gid in sorted(set(gids))]
    entries += [(_MASK, ((mode >> 3) & 7) | 1, _NO_ID), (_OTHER, 0, _NO_ID)]
    data = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(folder, "system.posix_acl_access", data)
    except OSError as exc:
        log.warning("%s: the role groups cannot be let through (%s)", folder, exc.strerror)
        return False
    return True
