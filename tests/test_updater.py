"""The update service on a real bus: its operations run in the service, one at a time,
watched through signals, cancelled until they change what runs; bad calls get D-Bus
errors and the service keeps serving."""

import asyncio
import socket
import threading

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.updater.client import UpdaterClient, follow
from services.updater.operations import Busy, Operations, Running
from services.updater.service import create
from tests.helpers import eventually


@pytest.fixture
async def updater(services, client):  # type: ignore[no-untyped-def]
    service = await services.start(create(services.config()))
    return service, UpdaterClient(client)


async def test_bad_calls_are_refused_and_the_service_keeps_serving(updater) -> None:
    _, calls = updater
    for call, text in (
        (calls.update(["nope"]), "no service image nope; known: bus, core"),
        (calls.update([]), "no service image (none given)"),
        (calls.update(["updater"]), "does not replace itself"),
        (calls.rollback("nope"), "no service image 'nope'"),
        (calls.build("storage", "fastest"), "strategies baseline, multistage"),
    ):
        with pytest.raises(DBusError) as err:
            await call
        assert err.value.type == c.INVALID_ARGS_ERROR and text in err.value.text
    with pytest.raises(DBusError) as err:  # a wrong signature, sent by hand
        await calls._call("Update", "s", "storage")
    assert err.value.type == c.INVALID_ARGS_ERROR and "(assd)" in err.value.text
    assert await calls.current() == c.Operation()  # none yet, and still answering


async def test_a_plan_without_a_stack_says_what_is_missing(updater) -> None:
    service, calls = updater
    with pytest.raises(DBusError) as err:
        await calls.plan("")
    assert err.value.type == c.UPDATER_FAILED_ERROR
    assert f"no container stack in {service.state_dir}" in err.value.text


async def test_a_registry_the_admin_did_not_allow_is_refused_before_any_request(
    services, client
) -> None:
    """A caller must not make the updater reach an address of its choosing."""
    await services.start(create(services.config(registries="allowed.lan:5000")))
    calls = UpdaterClient(client)
    with socket.socket() as lying:
        lying.bind(("127.0.0.1", 0))
        lying.listen()
        lying.setblocking(False)
        elsewhere = f"127.0.0.1:{lying.getsockname()[1]}"
        for asking in (calls.plan(elsewhere), calls.update(["storage"], elsewhere)):
            with pytest.raises(DBusError) as err:
                await asking
            assert err.value.type == c.ACCESS_DENIED_ERROR
            assert "allowed.lan:5000" in err.value.text and "updater:registries" in err.value.text
        with pytest.raises(BlockingIOError):
            lying.accept()  # nobody came
    assert await calls.current() == c.Operation()  # nothing was started


async def test_an_image_built_here_is_installed_only_where_the_trust_policy_allows(
    updater,
) -> None:
    """Local builds are signed by no release key: refused unless the admin allowed them."""
    _, calls = updater
    with pytest.raises(DBusError) as err:
        await calls.install_local("storage")
    assert err.value.type == c.ACCESS_DENIED_ERROR
    assert "signed releases only" in err.value.text
    assert "updater:allow-local-builds" in err.value.text
    assert await calls.current() == c.Operation()  # nothing was started


async def test_an_operation_is_followed_to_its_end_and_kept_for_the_next_client(
    updater, client
) -> None:
    service, calls = updater
    release = threading.Event()

    def work(op: Running) -> tuple[c.OperationState, str]:
        op.say("first line")
        op.progress("layer1", 50, 100)
        release.wait(60)
        op.say("second line")
        return c.OperationState.SUCCEEDED, "done"

    heard: list[tuple[str, list]] = []
    await calls.watch(lambda member, body: heard.append((member, body)))

    async def start(_: UpdaterClient) -> str:  # as a call would, without an engine
        return service.operations.start("update", "storage", work).id

    said: list[str] = []
    task = asyncio.ensure_future(follow(client, start, said.append))

    async def running() -> bool:
        op = await calls.current()
        return op.running and op.lines == ("first line",)

    await eventually(running)
    with pytest.raises(DBusError) as err:  # one operation at a time
        await calls.prune()
    assert err.value.type == c.UPDATER_BUSY_ERROR and "update of storage runs" in err.value.text
    release.set()
    ended = await asyncio.wait_for(task, 60)
    assert ended.state == c.OperationState.SUCCEEDED and ended.message == "done"
    assert said == ["first line", "second line", "done"]
    assert ("Progress", [ended.id, "layer1", 50, 100]) in heard
    # A client that comes later finds how it ended, with what it said.
    later = await calls.current()
    assert later.lines == ("first line", "second line", "done") and not later.running


def test_a_cancel_stops_an_operation_that_has_changed_nothing() -> None:
    events: list[tuple] = []
    ended = threading.Event()
    started = threading.Event()

    def heard(op: Running, event: tuple) -> None:
        events.append(event)
        if event[0] == "ended":
            ended.set()

    def work(op: Running) -> tuple[c.OperationState, str]:
        started.set()
        while True:  # a pull: checks between chunks
            op.check()
            op.cancel_requested.wait(0.05)

    operations = Operations(heard)
    op = operations.start("update", "storage", work)
    assert started.wait(30)
    with pytest.raises(Busy):
        operations.start("prune", "images", lambda op: (c.OperationState.SUCCEEDED, ""))
    assert operations.cancel()
    assert ended.wait(30)
    assert op.state == c.OperationState.CANCELLED
    assert events[-1] == ("ended", "cancelled", "cancelled before anything changed")
    assert not operations.cancel()  # nothing runs any more


def test_past_the_switch_a_cancel_is_refused_and_the_operation_finishes() -> None:
    release = threading.Event()
    ended = threading.Event()
    operations = Operations(lambda op, event: event[0] == "ended" and ended.set())

    def work(op: Running) -> tuple[c.OperationState, str]:
        op.past_return()  # containers are being replaced from here on
        release.wait(60)
        op.check()  # a cancel asked for now must not stop it halfway
        return c.OperationState.SUCCEEDED, "switched"

    op = operations.start("update", "storage", work)
    assert not operations.cancel()
    release.set()
    assert ended.wait(30)
    assert op.state == c.OperationState.SUCCEEDED


def test_a_failing_operation_says_why_and_the_next_one_can_start() -> None:
    ended = threading.Event()
    operations = Operations(lambda op, event: event[0] == "ended" and ended.set())

    def work(op: Running) -> tuple[c.OperationState, str]:
        raise RuntimeError("the registry is not reachable")

    op = operations.start("update", "storage", work)
    assert ended.wait(30)
    assert op.state == c.OperationState.FAILED
    assert op.snapshot().lines == ("the registry is not reachable",)
    ended.clear()
    operations.start("prune", "images", lambda op: (c.OperationState.SUCCEEDED, ""))
    assert ended.wait(30)
