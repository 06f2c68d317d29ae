"""Recording policies: durations, validation of what the bus sends, persistence."""

from pathlib import Path

import pytest
from dbus_fast import Variant

from services import contract as c
from services.storage.policy import Policy, PolicyStore, format_duration_ms, parse_duration_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("500ms", 500),
        ("10", 10_000),
        ("10s", 10_000),
        ("5m", 300_000),
        ("7d", 604_800_000),
        ("2w", 1_209_600_000),
    ],
)
def test_durations_parse_and_print_back(text: str, ms: int):
    assert parse_duration_ms(text) == ms
    assert parse_duration_ms(format_duration_ms(ms)) == ms


def test_a_policy_takes_fields_by_name_and_rejects_the_rest():
    policy = Policy("dev1", "temperature").updated(
        {"interval_ms": Variant("x", 1000), "retention_ms": Variant("s", "30d")}
    )
    assert (policy.interval_ms, policy.retention_ms, policy.record) == (1000, 30 * 86_400_000, True)
    for bad in ({"retention_ms": Variant("x", 0)}, {"encrypt": Variant("i", 1)}, {"x": 1}):
        with pytest.raises(c.InvalidArgs):
            policy.updated(bad)


def test_policies_persist(tmp_path: Path):
    store = PolicyStore(tmp_path / "p.json")
    store.put(Policy("dev1", "temperature", encrypt=True))
    store.put(Policy("dev1", "temperature", encrypt=False, interval_ms=5))
    store.put(Policy("dev1", "humidity"))
    store.delete("dev1", "humidity")
    assert PolicyStore(tmp_path / "p.json").all() == [
        Policy("dev1", "temperature", encrypt=False, interval_ms=5)
    ]
