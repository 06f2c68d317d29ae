"""Registered devices, persisted in TinyDB under the state folder."""

from dataclasses import dataclass
from pathlib import Path

from tinydb import Query, TinyDB

from services import contract as c
from services.atomicjson import AtomicJSONStorage


@dataclass(frozen=True)
class Registration:
    definition: c.DeviceDefinition
    device_type: str


class RegistrationStore:
    def __init__(self, path: Path) -> None:
        self.db = TinyDB(path, storage=AtomicJSONStorage, indent=1, ensure_ascii=False)
        self.table = self.db.table("devices")

    def all(self) -> list[Registration]:
        return [self._from_doc(doc) for doc in self.table.all()]

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
        return Registration(c.DeviceDefinition.from_wire(doc["definition"]), doc["type"])

    def close(self) -> None:
        self.db.close()
