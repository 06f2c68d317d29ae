"""The audit log: every operator and admin call a service took (and every one it
refused), who made it, with what, and how it ended. JSON lines in the service's state
folder, the gateway's user's alone; bounded (at MAX_BYTES the file moves to NAME.1,
replacing the one before: the log keeps between one and two files' worth)."""

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from services import contract as c
from services.private import secret_folder

if TYPE_CHECKING:
    from dbus_fast.aio import MessageBus

log = logging.getLogger(__name__)

AUDIT_DIR_ENV = "AGILE_AUDIT_DIR"  # where a service whose state folder is read-only writes
MAX_BYTES = 1_000_000
ANSWER_MAX = 2000  # entries per Audit answer (the newest)
BUS_ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"  # the bus policy's refusal


def audit_folder(state_dir: Path) -> Path:
    return Path(os.environ.get(AUDIT_DIR_ENV) or state_dir / "audit")


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0  # entries that could not be written (a full disk)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            secret_folder(path.parent)
        except OSError as exc:
            log.error("audit log folder %s: %s", path.parent, exc)

    @staticmethod
    def now() -> float:
        return time.time()

    def write(
        self,
        when: float,
        who: c.CallerInfo,
        service: str,
        call: str,
        arguments: str,
        outcome: str,
    ) -> None:
        entry = c.AuditEntry(when, who.user, who.uid, service, call, arguments, outcome)
        line = json.dumps(entry.to_wire(), ensure_ascii=False) + "\n"
        try:
            if self.path.exists() and self.path.stat().st_size >= self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(line)
        except OSError as exc:
            self.dropped += 1
            log.error("audit entry not written (%d so far): %s: %s", self.dropped, exc, line)

    def entries(self, since: float = 0.0, limit: int = ANSWER_MAX) -> list[c.AuditEntry]:
        """The entries at or after `since`, oldest first; the newest `limit` of them. A
        line that is not an entry is said and skipped."""
        found: list[c.AuditEntry] = []
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except FileNotFoundError:
                continue
            for number, line in enumerate(lines, 1):
                try:
                    entry = c.AuditEntry.from_wire(json.loads(line))
                except (ValueError, TypeError) as exc:
                    log.warning("%s:%d: not an audit entry, skipped (%s)", path, number, exc)
                    continue
                if entry.when >= since:
                    found.append(entry)
        return found[-limit:]


async def gather(bus: "MessageBus", since: float = 0.0) -> tuple[list[c.AuditEntry], list[str]]:
    """Every service's audit entries since `since` (epoch s), oldest first, and what
    could not be asked (a service away, or a caller who is not an admin: said once)."""
    from dbus_fast import DBusError

    from services.bus import DBUS_NAME, DBUS_PATH, call, list_names

    owners: dict[str, str] = {}
    for name in await list_names(bus):
        if name.startswith(c.PREFIX + ".") and name != c.DEVICE_NAME:
            try:
                (owner,) = await call(
                    bus, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetNameOwner", "s", [name]
                )
            except DBusError:
                continue
            owners.setdefault(str(owner), name)
    entries: list[c.AuditEntry] = []
    problems: list[str] = []
    for owner, name in sorted(owners.items(), key=lambda o: o[1]):
        try:
            (wire,) = await call(bus, owner, c.ACCESS_PATH, c.ACCESS_IFACE, "Audit", "d", [since])
        except DBusError as exc:
            if exc.type in (BUS_ACCESS_DENIED, c.ACCESS_DENIED_ERROR):
                refused = "Access.Audit needs the admin role"
                if refused not in problems:
                    problems.append(refused)
            else:
                problems.append(f"{name}: {exc.text}")
            continue
        entries += [c.AuditEntry.from_wire(w) for w in wire]
    entries.sort(key=lambda e: e.when)
    return entries, problems


def audit_lines(entries: list[c.AuditEntry]) -> list[str]:
    """As `agile-gateway audit` prints them: one line each, oldest first."""
    return [
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(e.when))} {e.user} (uid {e.uid}) "
        f"{e.service}: {e.call}({e.arguments}) -> {e.outcome}"
        for e in entries
    ]
