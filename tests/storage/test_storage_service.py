"""org.eclipse.agail.Storage on a real bus, recording the Dummy protocol's devices."""

import os
import stat
from itertools import pairwise

import pytest
from dbus_fast import DBusError, Variant

from services import contract as c
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.protocolmanager.service import create as create_pm
from services.storage.service import StorageService
from tests.helpers import THERMOMETER, dm, eventually, storage

THERMO = "dummyD00000000001"
FAST = {"flush-interval": "0.1", "resubscribe-interval": "0.2"}


@pytest.fixture
async def gateway(services):
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config(**{"record-interval": "0.05"})))
    services.dm = await services.start(create_dm(services.config()))
    return services


async def start_storage(services, clock_ms=None, **options: str) -> StorageService:
    config = services.config(**{**FAST, **options})
    service = StorageService(config) if clock_ms is None else StorageService(config, clock_ms)
    return await services.start(service)


async def register_thermometer(bus) -> None:
    await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")


async def stored(bus, component: str = "temperature", max_points: int = 0) -> list[c.RecordObject]:
    (wire,) = await storage(bus, "Query", "ssxxu", THERMO, component, 0, 2**62, max_points)
    return [c.RecordObject.from_wire(r) for r in wire]


async def at_least(bus, n: int, component: str = "temperature") -> list[c.RecordObject]:
    async def enough():
        records = await stored(bus, component)
        return records if len(records) >= n else None

    return await eventually(enough)


async def test_a_policy_records_the_stream_and_query_returns_it(gateway, client) -> None:
    await register_thermometer(client)
    await start_storage(gateway)
    (policy,) = await storage(
        client, "SetPolicy", "ssa{sv}", THERMO, "temperature", {"retention_ms": Variant("s", "1d")}
    )
    assert {k: v.value for k, v in policy.items()} == {
        "record": True,
        "interval_ms": 0,
        "retention_ms": 86_400_000,
        "encrypt": False,
    }
    records = await at_least(client, 10)
    assert all(r.device_id == THERMO and r.unit == "°C" for r in records)
    assert all(18.0 <= float(r.value) <= 25.0 for r in records)
    times = [r.last_update for r in records]
    assert times == sorted(times)
    (latest,) = await storage(client, "Latest", "ss", THERMO, "temperature")
    assert c.RecordObject.from_wire(latest).last_update >= times[-1]
    assert await stored(client, "humidity") == []  # only what the policy names
    ((dev, comp, info),) = (await storage(client, "Streams"))[0]
    assert (dev, comp) == (THERMO, "temperature") and info["count"].value >= 10
    (stats,) = await storage(client, "Stats")
    assert stats["subscribed"].value == 1 and stats["error"].value == ""


async def test_the_interval_keeps_at_most_one_value_per_interval(gateway, client) -> None:
    await register_thermometer(client)
    await start_storage(gateway)
    await storage(
        client, "SetPolicy", "ssa{sv}", THERMO, "temperature", {"interval_ms": Variant("x", 300)}
    )
    records = await at_least(client, 5)
    gaps = [b.last_update - a.last_update for a, b in pairwise(records)]
    assert min(gaps) >= 300
    (stats,) = await storage(client, "Stats")
    assert stats["records_skipped_interval"].value > 0


async def test_a_policy_set_before_the_device_exists_starts_recording_when_it_does(
    gateway, client
) -> None:
    await start_storage(gateway)
    await storage(client, "SetPolicy", "ssa{sv}", THERMO, "temperature", {})
    (stats,) = await storage(client, "Stats")
    assert stats["subscribed"].value == 0
    await register_thermometer(client)
    await at_least(client, 3)


async def test_recording_resumes_after_storage_and_device_manager_restart(gateway, client) -> None:
    await register_thermometer(client)
    service = await start_storage(gateway)
    await storage(client, "SetPolicy", "ssa{sv}", THERMO, "humidity", {})
    await at_least(client, 3, "humidity")
    await gateway.stop(service)
    await start_storage(gateway)
    before = len(await stored(client, "humidity"))
    assert before >= 3  # persisted, and the policy too:
    ((dev, comp, _),) = (await storage(client, "Policies"))[0]
    assert (dev, comp) == (THERMO, "humidity")
    await at_least(client, before + 3, "humidity")

    await gateway.stop(gateway.dm)
    gateway.dm = await gateway.start(create_dm(gateway.config()))
    now = len(await stored(client, "humidity"))
    await at_least(client, now + 3, "humidity")


async def test_retention_removes_expired_records(gateway, client) -> None:
    await register_thermometer(client)
    clock = {"now": 0}
    service = await start_storage(gateway, clock_ms=lambda: clock["now"])
    one_minute = {"retention_ms": Variant("x", 60_000)}
    await storage(client, "SetPolicy", "ssa{sv}", THERMO, "temperature", one_minute)
    await at_least(client, 20)
    stop = {"record": Variant("b", False)}  # keep the policy, stop recording
    await storage(client, "SetPolicy", "ssa{sv}", THERMO, "temperature", stop)
    await eventually(lambda: _unsubscribed(client))
    kept = await stored(client)
    middle = kept[len(kept) // 2].last_update
    clock["now"] = middle + 60_000
    assert service.expire() == len([r for r in kept if r.last_update < middle])
    assert [r.last_update for r in await stored(client)] == [
        r.last_update for r in kept if r.last_update >= middle
    ]


async def _unsubscribed(client) -> bool:
    (stats,) = await storage(client, "Stats")
    return stats["subscribed"].value == 0 and stats["records_unflushed"].value == 0


async def test_bad_arguments_get_errors_and_the_service_keeps_running(gateway, client) -> None:
    await start_storage(gateway)
    cases = [
        ("SetPolicy", "ssa{sv}", [THERMO, "temperature", {"colour": Variant("s", "red")}]),
        ("SetPolicy", "ssa{sv}", [THERMO, "temperature", {"record": Variant("s", "yes")}]),
        ("SetPolicy", "ssa{sv}", [THERMO, "temperature", {"retention_ms": Variant("s", "soon")}]),
        ("SetPolicy", "ssa{sv}", [THERMO, "temperature", {"retention_ms": Variant("x", -5)}]),
        ("SetPolicy", "ssa{sv}", ["../../etc", "temperature", {}]),
        ("Query", "ss", [THERMO, "temperature"]),
        ("Latest", "ss", [THERMO, "temperature"]),
        ("DeletePolicy", "ss", [THERMO, "nothing"]),
    ]
    for member, signature, body in cases:
        with pytest.raises(DBusError) as err:
            await storage(client, member, signature, *body)
        assert err.value.type in (c.INVALID_ARGS_ERROR, c.NO_RESULT_ERROR), (member, body)
        assert err.value.text
    assert (await storage(client, "Policies")) == [[]]


async def test_an_encrypting_policy_creates_a_private_key(gateway, client) -> None:
    service = await start_storage(gateway)
    await storage(
        client, "SetPolicy", "ssa{sv}", THERMO, "temperature", {"encrypt": Variant("b", True)}
    )
    assert stat.S_IMODE(service.key_file.stat().st_mode) == 0o600
    (stats,) = await storage(client, "Stats")
    assert stats["encryption_key"].value is True


async def test_a_key_file_others_can_read_is_refused(gateway, client) -> None:
    service = await start_storage(gateway)
    service.key_file.parent.mkdir(parents=True, exist_ok=True)
    service.key_file.write_text(os.urandom(32).hex())
    service.key_file.chmod(0o644)
    with pytest.raises(DBusError, match="chmod 600") as err:
        await storage(
            client, "SetPolicy", "ssa{sv}", THERMO, "temperature", {"encrypt": Variant("b", True)}
        )
    assert err.value.type == c.STORAGE_ERROR


async def test_a_tampered_segment_is_a_dbus_error(gateway, client) -> None:
    await register_thermometer(client)
    service = await start_storage(gateway)
    await storage(
        client, "SetPolicy", "ssa{sv}", THERMO, "temperature", {"encrypt": Variant("b", True)}
    )
    await at_least(client, 5)
    await gateway.stop(service)
    (segment,) = list(service.folder.glob("streams/*/*/*.seg"))
    blob = bytearray(segment.read_bytes())
    blob[-1] ^= 0xFF
    segment.write_bytes(bytes(blob))
    service = await start_storage(gateway)
    (streams,) = await storage(client, "Streams")  # refused, and said
    assert streams[0][2]["refused"].value == 1 and streams[0][2]["encrypted"].value
    await gateway.stop(service)
    index = segment.parent / "index.json"
    index.write_bytes(index.read_bytes()[:-1])  # the stream's authenticated index
    await start_storage(gateway)
    with pytest.raises(DBusError, match="authentication failed") as err:
        await stored(client)
    assert err.value.type == c.STORAGE_INTEGRITY_ERROR
