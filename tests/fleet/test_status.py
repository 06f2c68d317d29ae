"""The fleet's status: each gateway asked on its own, with a deadline, so that a dead or
silent one is said and never holds up the others."""

import asyncio
import re
import socket
import time

from fleet.status import Fleet, GatewayStatus
from testkit.operator import free_port
from tests.helpers import agile_gateway


async def until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never came true"
        await asyncio.sleep(0.05)


def test_each_gateway_is_said_with_its_services_and_devices(gateway_factory, reach, tmp_path):
    one = gateway_factory(state_dir=tmp_path / "one")
    # No engine there (a native gateway): its services come from its runtime, on the bus.
    entry = reach("one", one.state_dir, engine="unix:///nonexistent/engine.sock")
    nothing = reach("two", tmp_path / "not-a-gateway")

    async def poll() -> list[GatewayStatus]:
        fleet = Fleet([entry, nothing])
        try:
            return await fleet.poll_all()
        finally:
            await fleet.stop()

    first, second = asyncio.run(poll())
    assert first.reachable and first.problem == "" and first.last_seen > 0, first
    assert first.services_total >= 4 and first.services_up == first.services_total, first
    assert first.devices == 0
    assert not second.reachable and "no gateway bus there" in second.problem


def test_a_silent_or_dead_gateway_never_holds_up_the_others(gateway_factory, reach, tmp_path):
    one = gateway_factory(state_dir=tmp_path / "one")
    two = gateway_factory(state_dir=tmp_path / "two")
    silent = socket.socket()  # takes the connection, never says a word
    silent.bind(("127.0.0.1", free_port()))
    silent.listen(8)
    no_engine = {"engine": "unix:///nonexistent/engine.sock"}
    gateways = [
        reach("one", one.state_dir, **no_engine),
        reach("two", two.state_dir, **no_engine),
        reach("silent", tmp_path, port=silent.getsockname()[1]),
    ]
    heard: dict[str, list[GatewayStatus]] = {"one": [], "two": [], "silent": []}

    async def watch() -> None:
        fleet = Fleet(gateways, lambda s: heard[s.name].append(s), period_s=0.1, timeout_s=4)
        fleet.start()
        try:
            # The silent one's first poll is still waiting while the others answer again
            # and again.
            await until(lambda: sum(s.reachable for s in heard["one"]) >= 3)
            await until(lambda: sum(s.reachable for s in heard["two"]) >= 3)
            assert all(not s.reachable for s in heard["silent"]), heard["silent"]
            await until(lambda: heard["silent"] != [])
            assert heard["silent"][0].problem == "no answer in 4 s"
            # Gateway two's bus (and all of it) goes: its row says so at its next poll;
            # one goes on answering.
            two.stop()
            await until(lambda: not heard["two"][-1].reachable)
            assert heard["two"][-1].problem, heard["two"][-1]
            answered = len(heard["one"])
            await until(lambda: len(heard["one"]) > answered + 2)
            assert heard["one"][-1].reachable
        finally:
            await fleet.stop()

    try:
        asyncio.run(watch())
    finally:
        silent.close()


def test_fleet_status_prints_the_table_from_agile_tuis_config(gateway_factory, reach, tmp_path):
    one = gateway_factory(state_dir=tmp_path / "one")
    entry = reach("one", one.state_dir, engine="unix:///nonexistent/engine.sock")
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[gateways.one]
ssh = "{entry.ssh}"
port = {entry.port}
identity = "{entry.identity}"
known_hosts = "{entry.known_hosts}"
state_dir = "{entry.state_dir}"
engine = "{entry.engine}"

[gateways.nowhere]
ssh = "{entry.ssh}"
port = {entry.port}
identity = "{entry.identity}"
known_hosts = "{entry.known_hosts}"
state_dir = "{tmp_path / "nothing"}"
"""
    )
    done = agile_gateway("fleet", "status", "--config", str(config))
    assert done.returncode == 1, done.stderr  # one gateway is not there
    header, first, second, *problems = done.stdout.splitlines()
    assert header.split() == [
        "Gateway",
        "State",
        "Services",
        "Devices",
        "Versions",
        "Pending",
        "Last",
        "seen",
    ]
    # root over SSH: an admin there
    assert first.split()[:6] == ["one", "up", "·", "admin", first.split()[4], "0"], done.stdout
    # Seen at its answer, which may be seconds before the table (nowhere took its time).
    assert re.search(r"(now|\d+ s ago)$", first), done.stdout
    up, total = first.split()[4].split("/")
    assert up == total and int(total) >= 4
    assert second.split()[:4] == ["nowhere", "✗", "no", "gateway"], second
    assert any(p.startswith("nowhere: ") and "no gateway bus there" in p for p in problems)
