"""The sections' models: what each fetches and hands its screen, without a screen —
and, with a source standing in for the gateway, without a gateway."""

import asyncio
import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agile_tui.client.errors import BusError, EngineError
from agile_tui.client.gateway import GatewayClient, UpdaterEvent
from agile_tui.client.native import NativeRuntime
from agile_tui.client.stack import StackRow
from agile_tui.models.build import BuildModel
from agile_tui.models.containers import ContainersModel
from agile_tui.models.data import DataModel, thinned
from agile_tui.models.devices import DevicesModel
from agile_tui.models.images import ImagesModel
from agile_tui.models.updates import UpdatesModel
from services import contract as c
from tests.helpers import SWITCH, THERMOMETER

NO_SERVICE = "org.freedesktop.DBus.Error.ServiceUnknown"
PLUG = c.DeviceOverview("AA:BB:CC:00:00:01", c.protocol_bus_name("BLE"), "Plug", "AVAILABLE")


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async def waiting() -> None:
        while not check():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(waiting(), timeout)


class Radios:
    """What a gateway without ZigBee or a bridge says, as its answers are set here."""

    def __init__(self) -> None:
        self.connected = True
        self.seen: list[c.DeviceOverview] = [PLUG]
        self.info: dict[str, dict[str, Any]] = {PLUG.device_id: {"RSSI": -60, "LastSeen": 1}}
        self.running = False

    async def discovered(self) -> list[c.DeviceOverview]:
        return self.seen

    async def registered(self) -> list[c.DeviceDefinition]:
        return []

    async def discovery_status(self) -> list[c.DiscoveryStatus]:
        state = c.DiscoveryState.RUNNING if self.running else c.DiscoveryState.NONE
        return [c.DiscoveryStatus("BLE", state)]

    async def devices_status(self) -> dict[str, str]:
        return {}

    async def all_devices_info(self) -> dict[str, dict[str, Any]]:
        return self.info

    async def permit_join_remaining(self) -> int:
        raise BusError("no ZigBee here", NO_SERVICE)

    async def bridge_status(self) -> dict[str, Any] | None:
        return None

    async def bridged(self) -> dict[str, bool]:
        raise AssertionError("asked without a bridge")


async def test_a_device_is_as_old_as_its_radio_last_heard_it_on_the_sessions_clock() -> None:
    radios, ticks = Radios(), itertools.count(100)
    model = DevicesModel(radios, lambda: float(next(ticks)), period_s=60)
    first = await model.fetch()
    assert first is not None and first.sightings[PLUG.device_id].heard == 100
    assert first.signal == {PLUG.device_id: "-60"} and first.join_until is None
    assert (await model.fetch()).sightings[PLUG.device_id].heard == 100  # not heard anew
    radios.info[PLUG.device_id]["LastSeen"] = 2
    assert (await model.fetch()).sightings[PLUG.device_id].heard == 102


async def test_without_a_connection_nothing_is_asked_and_a_lost_one_is_said() -> None:
    radios = Radios()
    radios.connected = False
    model = DevicesModel(radios, lambda: 0.0, period_s=60)
    assert await model.fetch() is None

    async def gone() -> int:
        raise BusError("the connection was closed")

    radios.connected = True
    radios.permit_join_remaining = gone  # type: ignore[method-assign]  # the radio lost
    failures: list[BusError] = []
    run = asyncio.create_task(model.run(lambda _view: None, failures.append))
    await until(lambda: bool(failures))
    run.cancel()
    assert failures[0].lost and model.view.sightings == {}


async def test_a_poke_fetches_at_once_and_the_model_is_idle_between_fetches() -> None:
    radios = Radios()
    model = DevicesModel(radios, lambda: 0.0, period_s=3600)  # no fetch by the period
    views: list[object] = []
    run = asyncio.create_task(model.run(views.append, lambda exc: None))
    await until(lambda: bool(views) and model.idle)
    radios.running = True
    model.poke()
    assert not model.idle
    await until(lambda: len(views) == 2 and model.idle)
    run.cancel()
    assert model.view.discovering


async def test_a_devices_fetch_costs_the_same_calls_for_any_number_of_devices(gateway) -> None:
    """Discovered, registered, discovery status, every device's status, every radio's
    info, the ZigBee join window and backups and the MQTT bridge's status and policy:
    nine calls, however many devices there are."""
    client = GatewayClient(gateway.address)
    await client.connect()
    try:
        model = DevicesModel(client, lambda: 0.0, period_s=60)

        async def one_fetch() -> int:
            before = client.calls
            await model.fetch()
            return client.calls - before

        one_device = await one_fetch()
        await client._dm("Register", "(ssss)s", SWITCH.to_wire(), "")
        await client._dm("Register", "(ssss)s", THERMOMETER.to_wire(), "")
        assert len(await client.registered()) == 2
        assert await one_fetch() == one_device == 9
    finally:
        client.close()


class Storage:
    """What a gateway with one thermometer says, and whose bus comes back service by
    service after a restart (`away`: subscriptions answered not-there that many times)."""

    def __init__(self) -> None:
        self.connected = True
        self.subscriptions: list[tuple[str, str]] = []
        self.away = 0
        self.records = [
            c.RecordObject(THERMOMETER.device_id, "temperature", v, "°C", "float", t)
            for v, t in (("21.5", 1_000), ("on", 2_000), ("22.0", 3_000))
        ]

    async def registered(self) -> list[c.DeviceDefinition]:
        stream = c.DeviceComponent("temperature", "°C")
        return [c.DeviceDefinition(THERMOMETER.device_id, "", "Thermo", "", "", "", (stream,))]

    async def policies(self) -> dict[tuple[str, str], dict[str, Any]]:
        raise BusError("no Storage here", NO_SERVICE)

    async def subscribe(self, dev_id: str, component: str) -> None:
        if self.away:
            self.away -= 1
            raise BusError("not back yet", NO_SERVICE)
        self.subscriptions.append((dev_id, component))

    async def unsubscribe(self, dev_id: str, component: str) -> None:
        self.subscriptions.remove((dev_id, component))

    async def history(self, *_query: object) -> list[c.RecordObject]:
        return self.records

    async def storage_stats(self) -> dict[str, Any] | None:
        return None

    async def set_policy(self, *_change: object) -> dict[str, Any]:
        raise AssertionError("not asked here")


async def test_charted_streams_gain_live_points_and_history_keeps_numbers_only() -> None:
    storage = Storage()
    model = DataModel(storage, lambda: 10.0)
    streams = await model.load_streams()
    assert streams is not None and [s.recorded for s in streams] == [False]  # no Storage
    key = streams[0].key
    model.record(storage.records[0])
    assert model.point_count() == 0  # not charted
    await model.chart(key, True)
    for record in storage.records:
        model.record(record)
    assert model.shown() == {key: deque([(1.0, 21.5), (3.0, 22.0)])}  # "on" is no number
    model.next_window()
    await model.load_history()
    assert model.shown() == {key: [(1.0, 21.5), (3.0, 22.0)]}
    await model.chart(key, False)
    assert storage.subscriptions == [] and model.subscribed == set()


async def test_a_restarted_bus_gets_the_charted_streams_again_once_they_are_back() -> None:
    storage = Storage()
    model = DataModel(storage, lambda: 0.0)
    key = (THERMOMETER.device_id, "temperature")
    await model.chart(key, True)
    storage.subscriptions.clear()  # a new connection holds none
    storage.away = 2
    await model.resubscribe(lambda key, exc: pytest.fail(f"{key}: {exc}"))
    assert storage.subscriptions == [key] and model.subscribed == {key}


def container(cid: str, state: str = "running", project: str = "stack") -> StackRow:
    return StackRow(cid, f"{project}_{cid}", project, state, "", None, None, None)


class Engine:
    """An engine whose containers, samples and events are set here."""

    def __init__(self) -> None:
        self.listed = [container("b"), container("a"), container("z", "exited", "other")]
        self.events_seen: list[tuple[str, str]] = []

    def containers(self) -> list[StackRow]:
        return self.listed

    def stats(self, rows: list[StackRow]) -> Iterator[StackRow]:
        for row in rows:
            if row.state == "running":
                yield dataclasses.replace(row, cpu_pct=1.5, mem_bytes=1024)

    def container_events(self, stop: threading.Event) -> Iterator[tuple[str, str]]:
        yield from self.events_seen

    def container(self, cid: str, with_stats: bool = True) -> StackRow:
        return container(cid, "exited")


def test_containers_come_native_first_then_by_project_and_keep_what_events_said(
    tmp_path,
) -> None:
    from tests.tui.states import frozen_runtime_dir

    engine = Engine()
    native = NativeRuntime(frozen_runtime_dir(tmp_path))
    model = ContainersModel(lambda: native, lambda: engine)  # type: ignore[arg-type,return-value]  # stand-ins
    rows = model.fetch()
    model.fetched(rows)
    assert list(model.rows) == [
        "native:devicemanager", "native:dummy", "native:protocolmanager", "z", "a", "b"
    ]  # fmt: skip
    engine.events_seen = [("die", "a"), ("destroy", "z")]
    batches = model.stats(rows)  # the samples were asked before the events came
    for cid, row in model.events(threading.Event()):
        model.changed(cid, row)
    for batch in batches:
        model.sampled(batch)
    assert "z" not in model.rows
    assert model.rows["a"].state == "exited" and model.rows["a"].cpu_pct == 1.5
    assert model.rows["b"].mem_bytes == 1024


def test_without_an_engine_the_native_processes_alone_are_listed(tmp_path) -> None:
    from tests.tui.states import frozen_runtime_dir

    native = NativeRuntime(frozen_runtime_dir(tmp_path))
    model = ContainersModel(lambda: native, lambda: None)
    assert [r.kind for r in model.fetch()] == ["process"] * 3
    assert list(model.stats(model.fetch())) == []


def test_images_wait_for_an_engine_and_pruning_without_one_is_refused() -> None:
    model = ImagesModel(lambda: None)
    assert model.fetch() is None and model.untagged() == []
    with pytest.raises(EngineError, match="no Docker engine"):
        model.prune()


class Updater:
    """An update service whose operation and answers are set here; it says Started for
    an update before its call answers, as the service may."""

    def __init__(self) -> None:
        self.current_op = c.Operation()
        self.said: list[UpdaterEvent] = []

    async def current(self) -> c.Operation:
        return self.current_op

    async def plan(self, registry: str) -> tuple[str, str, list[c.ServicePlan]]:
        if registry == "down:5000":
            raise BusError("the registry down:5000 did not answer", "org.eclipse.agail.Error")
        return registry, "multistage", [c.ServicePlan("storage", "v1", download_bytes=9)]

    async def update(self, services: list[str], registry: str) -> str:
        return "op7"

    async def build(self, service: str, strategy: str) -> str:
        return "op8"

    async def cancel(self) -> bool:
        return True


def signal(member: str, *body: object) -> UpdaterEvent:
    return UpdaterEvent(member, list(body))


async def test_an_update_is_followed_from_its_started_signal_to_its_end() -> None:
    updater = Updater()
    model = UpdatesModel(lambda: updater, "r:5000")  # type: ignore[arg-type,return-value]  # stand-ins
    await model.check()
    assert model.result is not None and model.result.pending == ["storage"]
    model.begin("updating")
    mine = lambda _kind: True  # noqa: E731
    assert model.heard(signal("Started", "op7", "update", "storage"), mine) == "started"
    await model.start(["storage"])
    assert model.operation.id == "op7"
    assert model.heard(signal("Log", "op6", "another's"), mine) == ""
    assert model.heard(signal("Log", "op7", "storage: pulling"), mine) == "log"
    assert model.heard(signal("Progress", "op7", "9c1e", 5, 10), mine) == "progress"
    assert model.heard(signal("Ended", "op7", "succeeded", ""), mine) == "ended"
    model.ended("succeeded")
    assert model.operation.said == ["storage: pulling"]
    assert (
        model.operation.pulls == {"9c1e": (5, 10)} and model.operation.title == "ended: succeeded"
    )
    model.registry = "down:5000"
    await model.check()
    assert model.result is None and "did not answer" in model.problem


async def test_an_operation_running_when_the_screen_opens_is_followed_again() -> None:
    updater = Updater()
    model = UpdatesModel(lambda: updater, "")  # type: ignore[arg-type,return-value]  # stand-ins
    updater.current_op = c.Operation("op3", "update", "ble", "running", "", 0, 0, ["a", "b"])
    assert (await model.attach())[0] == "running"
    assert model.busy == "updating" and model.operation.said == ["a", "b"]
    updater.current_op = c.Operation("op3", "update", "ble", "succeeded", "done", 0, 0, [])
    assert (await model.attach())[0] == "ended"  # it ended while the bus was away


async def test_a_build_reads_its_steps_and_ends_cancelled_once_cancelled() -> None:
    updater = Updater()
    model = BuildModel(lambda: updater, "storage", "multistage")  # type: ignore[arg-type,return-value]  # stand-ins
    await model.start()
    assert model.heard_build(signal("Log", "op8", "Step 2/7 : COPY . /src")) == "log"
    assert model.step == (2, 7)
    model.cancelling()
    assert await model.cancel()
    assert model.heard_build(signal("Ended", "op8", "cancelled", "")) == "ended"
    assert model.outcome == "cancelled"
    assert model.heard_build(signal("Log", "op8", "late")) == ""  # it has ended


def test_a_long_series_is_drawn_from_each_columns_extremes_and_a_short_one_whole() -> None:
    key = ("dev", "temperature")
    points = [(1000.0 + i, float((i * 37) % 101)) for i in range(600)]
    drawn = thinned({key: points}, 70)[key]
    assert len(drawn) <= 2 * 70
    assert drawn == sorted(drawn)  # time order kept
    assert min(v for _, v in drawn) == 0.0 and max(v for _, v in drawn) == 100.0
    for column in range(70):  # each column keeps its own lowest and highest value
        bucket = [p for p in points if min(int((p[0] - 1000.0) / 599 * 70), 69) == column]
        kept = [p for p in drawn if p in bucket]
        assert {min(v for _, v in bucket), max(v for _, v in bucket)} == {v for _, v in kept}
    short = points[:140]
    assert thinned({key: short}, 70)[key] is short
