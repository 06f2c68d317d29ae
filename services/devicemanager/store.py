"""Registered devices, persisted in TinyDB under the state folder."""

import logging
from dataclasses import dataclass
from pathlib import Path

from tinydb import Query, TinyDB

from services import contract as c
from services.atomicjson import AtomicJSONStorage, good_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    definition: c.DeviceDefinition
    device_type: str


class RegistrationStore:
    def __init__(self, path: Path) -> None:
        self.db = TinyDB(path, storage=AtomicJSONStorage, indent=1, ensure_ascii=False)
        self.table = self.db.table("devices")

    def all(self) -> list[Registration]:
        """Every registration that can be read; a bad row is said and skipped."""
        return good_rows(self.table.all(), self._from_doc, "registration", log)

    def put(self, reg: Registration) -> None:
        doc = {
            "id": reg.definition.device_id,
            "definition": reg.definition.to_wire(),
            "type": reg.device_type,
        }
        self.table.upsert(doc, Query().id == reg.definition.device_id)

    def delete(self, dev_id: str) -> None:
        self.table.remove(Query().id == dev_id)

    @staticmethod
    def _from_doc(doc: dict) -> Registration:
        if not isinstance(doc.get("type"), str):
            raise ValueError("no device type")
        return Registration(c.DeviceDefinition.from_wire(doc["definition"]), doc["type"])

    def close(self) -> None:
        self.db.close()
