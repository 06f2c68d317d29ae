"""Recording policies: what to record of a (device, component) stream, how often, how long."""

import logging
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dbus_fast import Variant
from tinydb import Query, TinyDB

from services import contract as c
from services.atomicjson import AtomicJSONStorage, good_rows

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
_DURATION_RE = re.compile(r"^\s*(\d{1,20})\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration_ms(text: str) -> int:
    """`"7d"` -> 604800000; a bare number is seconds."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (say e.g. 500ms, 10s, 5m, 1h, 7d, 2w)")
    return int(match[1]) * _UNITS_MS[match[2] or "s"]


def format_duration_ms(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class Policy:
    device_id: str
    component_id: str
    record: bool = True
    interval_ms: int = 0  # keep at most one value per interval; 0 keeps every value
    retention_ms: int = 7 * DAY_MS
    encrypt: bool = False

    WIRE_TYPES = {"record": "b", "interval_ms": "x", "retention_ms": "x", "encrypt": "b"}

    @property
    def key(self) -> tuple[str, str]:
        return (self.device_id, self.component_id)

    def to_wire(self) -> dict[str, Variant]:
        return {k: Variant(sig, getattr(self, k)) for k, sig in self.WIRE_TYPES.items()}

    def updated(self, changes: dict[str, Any]) -> "Policy":
        """This policy with the fields of an a{sv} from the bus; wrong keys or types raise
        InvalidArgs naming them."""
        values: dict[str, Any] = {}
        for key, variant in changes.items():
            value = variant.value if isinstance(variant, Variant) else variant
            sig = self.WIRE_TYPES.get(key)
            if sig is None:
                raise c.InvalidArgs(
                    f"unknown policy field {key!r}; known: {', '.join(self.WIRE_TYPES)}"
                )
            if sig == "b" and not isinstance(value, bool):
                raise c.InvalidArgs(f"policy field {key} takes a boolean, not {value!r}")
            if sig == "x":
                if isinstance(value, str):
                    try:
                        value = parse_duration_ms(value)
                    except ValueError as exc:
                        raise c.InvalidArgs(f"policy field {key}: {exc}") from None
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not 0 <= value <= c.DURATION_MAX_MS
                ):
                    raise c.InvalidArgs(
                        f"policy field {key} takes milliseconds from 0 to {c.DURATION_MAX_MS} "
                        f"({c.DURATION_MAX_MS // DAY_MS:,} days) or a duration like '7d', "
                        f"not {c.cut(repr(value))}"
                    )
            values[key] = value
        policy = replace(self, **values)
        if policy.retention_ms == 0:
            raise c.InvalidArgs("retention_ms must be > 0: data would be removed as it arrives")
        return policy

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Policy":
        """A stored policy, held to the same rules as one set over the bus."""
        c.check_device_id(doc["device_id"])
        c.check_component_id(doc["component_id"])
        fields = {k: doc[k] for k in cls.WIRE_TYPES if k in doc}
        return cls(doc["device_id"], doc["component_id"]).updated(fields)


class PolicyStore:
    """Policies persisted in TinyDB under the state folder (atomic writes)."""

    def __init__(self, path: Path) -> None:
        self.db = TinyDB(path, storage=AtomicJSONStorage, indent=1, ensure_ascii=False)
        self.table = self.db.table("policies")

    def all(self) -> list[Policy]:
        """Every stored policy that is valid; a bad row is said and skipped."""
        return good_rows(self.table.all(), Policy.from_doc, "policy", log)

    def put(self, policy: Policy) -> None:
        q = Query()
        where = (q.device_id == policy.device_id) & (q.component_id == policy.component_id)
        self.table.upsert(asdict(policy), where)

    def delete(self, device_id: str, component_id: str) -> None:
        q = Query()
        self.table.remove((q.device_id == device_id) & (q.component_id == component_id))

    def close(self) -> None:
        self.db.close()
