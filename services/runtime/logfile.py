"""A service's log, size-bounded: when the file would pass its size it becomes NAME.log.1
(the older ones move up, the oldest is dropped), so logs never fill an SD card."""

from pathlib import Path


class RotatingLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.size = path.stat().st_size if path.exists() else 0

    def write(self, data: bytes) -> None:
        if self.size and self.size + len(data) > self.max_bytes:
            self.rotate()
        with open(self.path, "ab") as f:
            f.write(data)
        self.size += len(data)

    def rotate(self) -> None:
        names = [self.path] + [
            self.path.with_name(f"{self.path.name}.{i}") for i in range(1, self.backups + 1)
        ]
        names[-1].unlink(missing_ok=True)  # the oldest goes (the log itself without backups)
        for newer, older in zip(reversed(names[:-1]), reversed(names[1:]), strict=True):
            if newer.exists():
                newer.rename(older)
        self.size = 0
