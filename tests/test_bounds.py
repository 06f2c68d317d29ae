"""Bounds at the edge, on a real bus: what a client tries to store past the contract's
limits is refused with InvalidArgs naming the limit, collections filled to their limits
still answer on the bus, and what was stored before (an older version, a hand edit)
that breaks the rules is said and skipped when a service starts, never a crash."""

import json
import logging
import os

import pytest
from dbus_fast import DBusError, Variant

from services import contract as c
from services.devicemanager.replay import ReplayBuffer
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.protocolmanager.discovered import DiscoveredDevices
from services.protocolmanager.service import create as create_pm
from services.storage.service import StorageService
from tests.helpers import THERMOMETER, dm, storage

WIDE = "\U0001f600"  # 4 bytes in UTF-8
DUMMY = c.protocol_bus_name("Dummy")


@pytest.fixture
async def core(services):
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config()))
    services.dm = await services.start(create_dm(services.config()))
    return services


def overview(n: int, name: str = "") -> c.DeviceOverview:
    return c.DeviceOverview(f"E0:00:00:00:{n // 256:02X}:{n % 256:02X}", DUMMY, name)


async def refused(call, says: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DBusError) as raised:
        await call
    assert raised.value.type == c.INVALID_ARGS_ERROR, raised.value.text
    assert says in raised.value.text
    assert len(raised.value.text) < 400  # the argument is quoted cut, not whole
    return raised.value.text


async def test_a_3_mb_name_is_refused_at_register_and_update(core, client) -> None:
    huge = THERMOMETER.__class__(THERMOMETER.id, DUMMY, "x" * 3_000_000)
    await refused(dm(client, "Register", "(ssss)s", huge.to_wire(), ""), "0 to 128 printable")
    (wire,) = await dm(client, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    definition = c.DeviceDefinition.from_wire(wire)
    renamed = [*definition.to_wire()[:2], "x" * 3_000_000, *definition.to_wire()[3:]]
    await refused(dm(client, "Update", "s(ssssssa(ss))", definition.device_id, renamed), "128")
    await refused(
        dm(
            client,
            "Update",
            "s(ssssssa(ss))",
            definition.device_id,
            [*renamed[:2], "a\x07b", *renamed[3:]],
        ),
        "printable",
    )
    assert [d[2] for d in (await dm(client, "Devices"))[0]] == [THERMOMETER.name]


async def test_devices_filled_to_their_limit_answer_and_one_more_is_refused(core, client) -> None:
    for n in range(c.DEVICES_MAX):
        await dm(
            client,
            "Register",
            "(ssss)s",
            overview(n, WIDE * c.NAME_MAX).to_wire(),
            "dummy-thermometer",
        )
    await refused(
        dm(client, "Register", "(ssss)s", overview(c.DEVICES_MAX).to_wire(), "dummy-thermometer"),
        f"registered devices: the limit of {c.DEVICES_MAX:,} is reached",
    )
    (devices,) = await dm(client, "Devices")
    assert len(devices) == c.DEVICES_MAX and devices[0][2] == WIDE * c.NAME_MAX
    (found,) = await dm(client, "Find")
    assert len(json.loads(found)) == c.DEVICES_MAX
    (statuses,) = await dm(client, "DevicesStatus")
    assert len(statuses) == c.DEVICES_MAX


@pytest.mark.parametrize(
    "address, says",
    [
        ("A" * (c.ADDRESS_MAX + 1), "an address must be 1 to 64"),
        ("AA/BB", "does not make a valid device id"),
        ("AA BB", "does not make a valid device id"),
        ("", "an address must be 1 to 64"),
    ],
)
async def test_an_address_that_makes_no_device_id_is_refused(core, client, address, says) -> None:
    wire = c.DeviceOverview(address, DUMMY, "n").to_wire()
    await refused(dm(client, "Register", "(ssss)s", wire, "dummy-thermometer"), says)


async def test_bad_stored_registrations_are_said_and_skipped(services, client, caplog) -> None:
    good = c.DeviceDefinition(
        "dummyE00000000001",
        "E0:00:00:00:00:01",
        "good",
        "Dummy thermometer",
        DUMMY,
        c.device_path("dummyE00000000001"),
        (c.DeviceComponent("temperature", "°C"),),
    )
    huge = good.to_wire()
    huge[1], huge[0], huge[5] = (
        "E0:00:00:00:00:02",
        "dummyE00000000002",
        c.device_path("dummyE00000000002"),
    )
    huge[2] = "x" * 3_000_000
    rows = {
        "1": {"id": good.device_id, "definition": good.to_wire(), "type": "dummy-thermometer"},
        "2": {"id": "dummyE00000000002", "definition": huge, "type": "dummy-thermometer"},
        "3": {"id": "x", "definition": "not a struct", "type": "dummy-thermometer"},
        "4": {"id": "y"},
        "5": ["not", "a", "document"],
    }
    folder = services.state_dir / "devicemanager"
    folder.mkdir(parents=True)
    (folder / "devices.json").write_text(json.dumps({"devices": rows}))
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config()))
    with caplog.at_level(logging.ERROR):
        await services.start(create_dm(services.config()))
    (devices,) = await dm(client, "Devices")
    assert [d[0] for d in devices] == [good.device_id]
    skipped = [
        r.getMessage()
        for r in caplog.records
        if "skipped" in r.getMessage() or "not restored" in r.getMessage()
    ]
    assert len(skipped) == 4, skipped
    assert all(len(line) < 1000 for line in skipped)


async def test_a_file_that_is_not_json_is_moved_aside_and_the_service_starts(
    services, client
) -> None:
    folder = services.state_dir / "devicemanager"
    folder.mkdir(parents=True)
    (folder / "devices.json").write_text("{ not json")
    await services.start(create_pm(services.config()))
    await services.start(create_dm(services.config()))
    assert await dm(client, "Devices") == [[]]
    assert (folder / "devices.json.unreadable").read_text() == "{ not json"


# -- Storage --


def policy_rows(n: int) -> dict[str, dict[str, object]]:
    return {
        str(i): {
            "device_id": "d" * c.DEVICE_ID_MAX,
            "component_id": f"{i:05d}" + "c" * (c.COMPONENT_ID_MAX - 5),
            "record": False,
            "interval_ms": 0,
            "retention_ms": c.DURATION_MAX_MS,
            "encrypt": False,
        }
        for i in range(n)
    }


async def test_policies_filled_to_their_limit_answer_and_bad_rows_are_skipped(
    services, client
) -> None:
    rows = policy_rows(c.POLICIES_MAX)
    bad = {
        "retention": {**rows["0"], "component_id": "a", "retention_ms": 10**20},
        "type": {**rows["0"], "component_id": "b", "record": "yes"},
        "wildcard": {**rows["0"], "component_id": "#"},
        "missing": {"device_id": "x"},
    }
    folder = services.state_dir / "storage"
    folder.mkdir(parents=True)
    (folder / "policies.json").write_text(json.dumps({"policies": rows | bad}))
    await services.start(StorageService(services.config()))
    (policies,) = await storage(client, "Policies")
    assert len(policies) == c.POLICIES_MAX
    await refused(
        storage(client, "SetPolicy", "ssa{sv}", "dev", "new", {}),
        f"recording policies: the limit of {c.POLICIES_MAX:,} is reached",
    )
    first = rows["0"]
    await refused(
        storage(
            client,
            "SetPolicy",
            "ssa{sv}",
            first["device_id"],
            first["component_id"],
            {"retention_ms": Variant("s", "99999999999999999999d")},
        ),
        "retention_ms takes milliseconds from 0 to",
    )
    await refused(storage(client, "SetPolicy", "ssa{sv}", "dev", "a/#", {}), "not a component id")
    (policy,) = await storage(client, "Policy", "ss", first["device_id"], first["component_id"])
    assert policy["retention_ms"].value == c.DURATION_MAX_MS


async def test_a_key_file_others_can_read_refuses_only_the_encrypted_streams(
    services, client
) -> None:
    folder = services.state_dir / "storage"
    folder.mkdir(parents=True)
    key = folder / "key"
    key.write_text(os.urandom(32).hex() + "\n")
    key.chmod(0o644)
    rows = {"1": {"device_id": "dev", "component_id": "secret", "encrypt": True}}
    (folder / "policies.json").write_text(json.dumps({"policies": rows}))
    service = await services.start(StorageService(services.config()))
    (stats,) = await storage(client, "Stats")
    assert "readable by others (mode 0644)" in stats["key_error"].value
    with pytest.raises(DBusError) as raised:
        await storage(
            client, "SetPolicy", "ssa{sv}", "dev", "other", {"encrypt": Variant("b", True)}
        )
    assert raised.value.type == c.STORAGE_ERROR and "chmod 600" in raised.value.text
    await storage(client, "SetPolicy", "ssa{sv}", "dev", "plain", {})
    (policies,) = await storage(client, "Policies")
    assert sorted(p[1] for p in policies) == ["plain", "secret"]
    assert ("dev", "secret") not in service.subscribed  # refused, not retried in a loop
    key.chmod(0o600)
    await storage(client, "SetPolicy", "ssa{sv}", "dev", "other", {"encrypt": Variant("b", True)})
    (stats,) = await storage(client, "Stats")
    assert stats["key_error"].value == ""


# -- the replay buffer and the discovered list: what they keep is bounded too --


async def test_a_bad_stored_replay_record_is_skipped(tmp_path) -> None:
    buffer = ReplayBuffer(tmp_path / "replay.db", 100, 3_600_000, lambda: 1000)
    key = ("dev", "temperature")
    for n, value in enumerate(["1.0", "x" * (c.RECORD_VALUE_MAX + 1), "3.0"], start=1):
        buffer.db.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*key, n, value, "°C", "float", 1000),
        )
    buffer.db.execute(
        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*key, 4, "4.0", "°C", "float", "not a time"),
    )
    assert [(r.value, n) for r, n in buffer.after(key, 0, 10)] == [("1.0", 1), ("3.0", 3)]
    buffer.close()


def test_the_discovered_list_is_bounded_and_cuts_what_a_radio_says() -> None:
    clock = iter(range(10**6))
    found = DiscoveredDevices(ttl_s=10**9, clock=lambda: next(clock))
    for n in range(c.DISCOVERED_MAX + 5):
        found.seen(overview(n, "n" * 3_000_000 if n == 7 else "ok\x00"))
    assert not found.seen(c.DeviceOverview("A" * 1000, DUMMY, "long address"))
    devices = found.devices()
    assert len(devices) == c.DISCOVERED_MAX
    assert overview(0).id not in {d.id for d in devices}  # the oldest seen went
    assert {len(d.name) for d in devices} <= {2, c.NAME_MAX}
