"""The journal of an update in progress: what `update.recover` needs to bring a service
back to one whole version when its update was cut off (the engine restarted, the update
service killed, the power cut).

An update writes it before it changes anything and removes it when it ends; it says
which image ran before, which one comes, and whether the new one has already passed its
health gate."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from services.atomicjson import write_atomic

REPLACED = "-replaced"  # the suffix of an old container the switch set aside
FILE = "update-journal.json"  # in the state folder of the one who updates


@dataclass
class Entry:
    service: str  # the image's name (core runs two compose services)
    project: str
    strategy: str
    previous: str  # image id; "" if the service ran on none
    new: str
    committed: bool = False  # the new version passed its health gate


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, entry: Entry) -> None:
        """Atomically, and on the disk before the change it announces."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(asdict(entry)).encode())

    def read(self) -> Entry | None:
        try:
            return Entry(**json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:  # the journal's disk lied: nothing to trust
            raise ValueError(f"the update journal {self.path} is unreadable: {exc}") from None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
