"""Sequence numbers and the replay buffer: a consumer that was away gets what it missed,
and what was never kept is a visible gap, never a number that means two records."""

from pathlib import Path

import pytest
from dbus_fast import DBusError, Message

from services import contract as c
from services.bus import connect, listen, request_names
from services.devicemanager.replay import RESERVE, ReplayBuffer, ReplayUnavailable
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.protocolmanager.service import create as create_pm
from tests.helpers import THERMOMETER, device, dm, eventually, fill_up


async def until(check) -> None:  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        return bool(check())

    await eventually(probe)


THERMO = THERMOMETER.device_id
STREAM = (THERMO, "temperature")
CONSUMER = c.STORAGE_NAME  # a name the bus lets a consumer own


def record(ts: int, value: str = "21.5") -> c.RecordObject:
    return c.RecordObject(THERMO, "temperature", value, "°C", "float", ts)


async def test_numbers_go_on_after_a_kill_and_the_lost_ones_are_a_gap(tmp_path: Path) -> None:
    buffer = ReplayBuffer(tmp_path / "replay.db", 100, 3_600_000, lambda: 10_000)
    assert [buffer.number(record(t)) for t in range(1, 6)] == [1, 2, 3, 4, 5]
    buffer.flush()
    buffer.number(record(6))  # numbered and sent, never committed: the process is killed
    again = ReplayBuffer(tmp_path / "replay.db", 100, 3_600_000, lambda: 10_000)
    assert again.number(record(7)) == RESERVE + 1  # 6 is never given to another record
    assert [seq for _, seq in again.after(STREAM, 3, 10)] == [4, 5, RESERVE + 1]
    assert again.bounds(STREAM) == (1, RESERVE + 1)


async def test_a_full_disk_keeps_numbered_records_in_memory_until_space_returns(tmpfs) -> None:
    disk = tmpfs("1m")
    buffer = ReplayBuffer(disk / "replay.db", 5_000, 3_600_000, lambda: 10_000)
    buffer.number(record(0))  # the stream's reservation, committed while there is room
    buffer.flush()
    ballast = fill_up(disk)
    numbered = [buffer.number(record(t, "x" * 200)) for t in range(1, RESERVE)]
    buffer.flush()
    assert "full" in buffer.failing  # "database or disk is full"
    assert [seq for _, seq in buffer.after(STREAM, 0, 5_000)] == [1, *numbered]
    assert buffer.bounds(STREAM) == (1, RESERVE)
    with pytest.raises(ReplayUnavailable):  # the next reservation: nothing numbered
        buffer.number(record(RESERVE + 1))
    ballast.unlink()
    await until(lambda: not buffer.failing)  # the retry commits them
    buffer.close()
    again = ReplayBuffer(disk / "replay.db", 5_000, 3_600_000, lambda: 10_000)
    assert [seq for _, seq in again.after(STREAM, 0, 5_000)] == [1, *numbered]
    assert again.dropped == 0


async def test_the_buffer_keeps_the_newest_records_not_older_than_its_age(tmp_path: Path) -> None:
    now = [0]
    buffer = ReplayBuffer(tmp_path / "replay.db", 10, 1_000, lambda: now[0])
    for t in range(25):
        buffer.number(record(t * 100, str(t)))
    now[0] = 2_400
    buffer.flush()
    kept = buffer.after(STREAM, 0, 100)
    assert [seq for _, seq in kept] == list(range(16, 26))  # the newest ten
    assert min(r.last_update for r, _ in kept) >= 1_400  # none older than 1 s
    assert kept[-1][0].value == "24"
    now[0] = 3_000
    buffer.number(record(2_900))
    buffer.flush()
    assert buffer.after(STREAM, 0, 100)[0][1] == 21  # from 2,000 ms on
    assert len(buffer.after(STREAM, 20, 2)) == 2  # an answer is bounded
    assert buffer.after(STREAM, 2**64 - 1, 10) == []  # the largest t: nothing after it


@pytest.fixture
async def core(services):
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config(**{"record-interval": "0.02"})))
    services.dm = await services.start(create_dm(services.config()))
    return services


class Consumer:
    """A service that follows a stream under its bus name: the numbered records it got."""

    def __init__(self) -> None:
        self.got: list[tuple[c.RecordObject, int]] = []

    async def join(self, address: str):  # type: ignore[no-untyped-def]
        bus = await connect(address)
        await request_names(bus, [CONSUMER])
        await listen(bus, c.SEQUENCED_VALUE_SIGNAL, self._got, c.DEVICE_NAME)
        return bus

    def _got(self, msg: Message) -> None:
        wire, seq = msg.body[0]
        self.got.append((c.RecordObject.from_wire(wire), seq))

    def last(self) -> int:
        return self.got[-1][1] if self.got else 0


async def _replay(bus, after: int) -> list[int]:  # type: ignore[no-untyped-def]
    (rows,) = await device(bus, THERMO, "Replay", "st", "temperature", after)
    return [seq for _, seq in rows]


async def test_a_consumer_away_gets_every_record_it_missed(core, client, bus_address) -> None:
    await dm(client, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    consumer = Consumer()
    bus = await consumer.join(bus_address)
    await device(bus, THERMO, "Follow", "ss", "temperature", CONSUMER)
    await until(lambda: len(consumer.got) >= 5)
    assert [seq for _, seq in consumer.got] == list(range(1, len(consumer.got) + 1))
    bus.disconnect()  # as if killed: its connection goes, its durable subscription stays
    last = consumer.last()

    async def produced_meanwhile() -> bool:
        (bounds,) = await device(client, THERMO, "Sequence", "s", "temperature")
        return bounds[1] >= last + 10

    await eventually(produced_meanwhile)
    bus = await consumer.join(bus_address)
    try:
        missed = await _replay(bus, last)
        assert missed[:10] == list(range(last + 1, last + 11))  # none lost, in order
    finally:
        bus.disconnect()


async def test_a_device_manager_restarted_goes_on_numbering_and_following(
    core, client, bus_address
) -> None:
    await dm(client, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    consumer = Consumer()
    bus = await consumer.join(bus_address)
    try:
        await device(bus, THERMO, "Follow", "ss", "temperature", CONSUMER)
        await until(lambda: len(consumer.got) >= 3)
        await core.stop(core.dm)
        before = consumer.last()
        core.dm = await core.start(create_dm(core.config()))
        await until(lambda: consumer.last() > before)  # followed again, nobody asked
        seqs = [seq for _, seq in consumer.got]
        assert seqs == list(range(1, len(seqs) + 1))  # no number twice, none skipped
        assert (await _replay(bus, 0))[: len(seqs)] == seqs
    finally:
        bus.disconnect()


async def test_nobody_follows_under_a_name_it_does_not_own(core, client) -> None:
    await dm(client, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    for name in (CONSUMER, ":1.1", ""):
        with pytest.raises(DBusError) as refused:
            await device(client, THERMO, "Follow", "ss", "temperature", name)
        assert refused.value.type == c.INVALID_ARGS_ERROR
    with pytest.raises(DBusError):
        await device(client, THERMO, "Replay", "st", "no-such-component", 0)
