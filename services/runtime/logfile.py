"""A service's log, size-bounded: when the file would pass its size it becomes NAME.log.1
(the older ones move up, the oldest is dropped), so logs never fill an SD card. A log
that cannot be written (a full disk) drops lines and counts them, and says so once in
the first line it can write again: the service it logs for is never held up by it."""

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class RotatingLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.size = path.stat().st_size if path.exists() else 0
        self.dropped = 0  # lines not written since the log last could be
        self.failing = ""  # why ("" while writes succeed)

    def write(self, data: bytes) -> None:
        if self.dropped:
            data = f"[{self.dropped} log lines dropped: {self.failing}]\n".encode() + data
        try:
            if self.size and self.size + len(data) > self.max_bytes:
                self.rotate()
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
        except OSError as exc:
            if not self.failing:
                log.error(
                    "%s cannot be written (%s): its lines are dropped and counted", self.path, exc
                )
            self.failing = exc.strerror or str(exc)
            self.dropped += 1
            self.size = self.path.stat().st_size if self.path.exists() else 0
            return
        if self.failing:
            log.info("%s is written again; %d lines were dropped", self.path, self.dropped)
        self.size += len(data)
        self.dropped, self.failing = 0, ""

    def rotate(self) -> None:
        names = [self.path] + [
            self.path.with_name(f"{self.path.name}.{i}") for i in range(1, self.backups + 1)
        ]
        names[-1].unlink(missing_ok=True)  # the oldest goes (the log itself without backups)
        for newer, older in zip(reversed(names[:-1]), reversed(names[1:]), strict=True):
            if newer.exists():
                newer.rename(older)
        self.size = 0
