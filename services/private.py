"""The gateway's state is private: its folders admit only the gateway's user and group
(0750), its files are not readable by others (0640), and what holds a secret (the
ZigBee network key, the storage key) only by the gateway's user (0700/0600). Every
process of the gateway works under PRIVATE_UMASK, and a tree made before it (0755/0644)
is mended when the gateway starts."""

import logging
import os
import stat
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
