"""The ZigBee network's backups, as files in the open coordinator backup format that ZHA,
Zigbee2MQTT and zigpy read (zigpy.backups): PAN id, extended PAN id, network key and its
frame counter, the device table. Kept in a folder of the gateway's user alone (they hold
the network key), the newest `keep` of them."""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zigpy.backups

from services import contract as c
from services.atomicjson import write_atomic

log = logging.getLogger(__name__)

PREFIX = "zigbee-backup-"
MAX_BACKUP_BYTES = 1 << 20  # a network of 200 devices is some 40 KB
# A backup zigpy makes again with nothing changed but its time and frame counter (each
# start, every day) is written only if the last file is older than this.
SAME_BACKUP_EVERY_S = 3600.0


def parse(text: str | bytes) -> zigpy.backups.NetworkBackup:
    """A backup from its JSON (the open coordinator format, or zigpy's own); InvalidArgs
    for anything that is not a complete one."""
    if len(text) > MAX_BACKUP_BYTES:
        raise c.InvalidArgs(f"a ZigBee backup is at most {MAX_BACKUP_BYTES} bytes")
    try:
        backup = zigpy.backups.NetworkBackup.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise c.InvalidArgs(f"not a ZigBee network backup: {exc}") from None
    if not backup.is_complete():
        raise c.InvalidArgs("this ZigBee backup lacks the network key, PAN id or channel")
    return backup


def _table(backup: zigpy.backups.NetworkBackup) -> dict[str, Any]:
    """What a backup says of the network, without its time and counters."""
    document = backup.as_open_coordinator_json()
    return {
        "network": {k: document[k] for k in ("pan_id", "extended_pan_id", "channel")},
        "key": document["network_key"]["key"],
        "devices": document["devices"],
    }


class BackupFolder:
    def __init__(self, folder: Path, keep: int) -> None:
        self.folder = folder
        self.keep = keep
        # Each file as last read, by name: (mtime ns, size, what it says; None: unreadable).
        # Clients list the backups at every refresh; a file is parsed again only when it
        # changed (and a broken one said once, not at every listing).
        self._read: dict[str, tuple[int, int, c.ZigBeeBackup | None]] = {}

    def files(self) -> list[c.ZigBeeBackup]:
        """The backups kept, oldest first; a file that cannot be read is said and skipped."""
        if not self.folder.is_dir():
            return []
        out, seen = [], {}
        for path in sorted(self.folder.glob(f"{PREFIX}*.json")):
            try:
                st = path.stat()
            except OSError:
                continue  # pruned meanwhile
            known = self._read.get(path.name)
            if known is not None and known[:2] == (st.st_mtime_ns, st.st_size):
                backup = known[2]
            else:
                backup = self._parse_file(path)
            seen[path.name] = (st.st_mtime_ns, st.st_size, backup)
            if backup is not None:
                out.append(backup)
        self._read = seen
        return out

    @staticmethod
    def _parse_file(path: Path) -> c.ZigBeeBackup | None:
        try:
            document = json.loads(path.read_bytes())
            created = document["metadata"]["internal"]["creation_time"]
            time_ms = int(datetime.fromisoformat(created).timestamp() * 1000)
            return c.ZigBeeBackup(time_ms, path.name, len(document["devices"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("%s: not a readable ZigBee backup, skipped: %s", path, exc)
            return None

    def read(self, name: str) -> str:
        if name not in {f.name for f in self.files()}:
            raise c.InvalidArgs(f"no ZigBee backup {name!r}")
        return (self.folder / name).read_text()

    def write(
        self, backup: zigpy.backups.NetworkBackup, force: bool = False
    ) -> c.ZigBeeBackup | None:
        """Keep `backup` as a file (None: the newest one says the same and is recent)."""
        kept = self.files()
        if kept and not force:
            newest = parse((self.folder / kept[-1].name).read_bytes())
            age_s = (backup.backup_time.timestamp() * 1000 - kept[-1].time_ms) / 1000
            if _table(newest) == _table(backup) and age_s < SAME_BACKUP_EVERY_S:
                return None
        when = backup.backup_time.astimezone(UTC)
        name = f"{PREFIX}{when:%Y%m%dT%H%M%S}{when.microsecond // 1000:03d}Z.json"
        document = backup.as_open_coordinator_json()
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.folder / name, json.dumps(document, indent=1).encode(), mode=0o600)
        for old in self.files()[: -self.keep]:
            (self.folder / old.name).unlink(missing_ok=True)
        return c.ZigBeeBackup(int(when.timestamp() * 1000), name, len(document["devices"]))
