"""ProtocolManager on a real dbus-daemon: registration, discovery fan-out, the device list."""

import asyncio
import subprocess

import pytest
from dbus_fast import DBusError

from services import contract as c
from services.dummy.service import create as create_dummy
from services.protocolmanager.service import create as create_pm
from tests.helpers import eventually, pm

DUMMY = c.protocol_bus_name("Dummy")


async def protocols(bus) -> list[c.ProtocolOverview]:
    (wire,) = await pm(bus, "Protocols")
    return [c.ProtocolOverview.from_wire(p) for p in wire]


async def discovered(bus) -> list[c.DeviceOverview]:
    (wire,) = await pm(bus, "Devices")
    return [c.DeviceOverview.from_wire(d) for d in wire]


async def test_protocol_registers_itself_when_it_starts(services, client) -> None:
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config(**{"announce-interval": "0.1"})))
    found = await eventually(lambda: protocols(client))
    assert found == [c.ProtocolOverview("Dummy", "Dummy", DUMMY, "Available")]


async def test_manager_finds_protocols_already_on_the_bus(services, client) -> None:
    await services.start(create_dummy(services.config()))
    await services.start(create_pm(services.config()))
    assert [p.dbus_interface for p in await eventually(lambda: protocols(client))] == [DUMMY]


async def test_protocol_that_leaves_the_bus_is_dropped(services, client) -> None:
    await services.start(create_pm(services.config()))
    dummy = await services.start(create_dummy(services.config()))
    await eventually(lambda: protocols(client))
    await services.stop(dummy)
    await eventually(lambda: _empty(protocols(client)))


async def _empty(coro) -> bool:
    return not await coro


async def test_add_and_remove(services, client) -> None:
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config()))
    await eventually(lambda: protocols(client))
    await pm(client, "Remove", "s", DUMMY)
    assert await protocols(client) == []
    await pm(client, "Add", "s", DUMMY)
    assert len(await protocols(client)) == 1
    with pytest.raises(DBusError) as err:
        await pm(client, "Remove", "s", "org.eclipse.agail.protocol.Nope")
    assert err.value.type == c.NO_RESULT_ERROR


@pytest.mark.parametrize(
    "name",
    [
        "",
        "org.example.Thing",
        "org.eclipse.agail.protocol.",
        "org.eclipse.agail.protocol.Bad..Name",
    ],
)
async def test_add_with_a_malformed_name_is_invalid_args(services, client, name) -> None:
    await services.start(create_pm(services.config()))
    with pytest.raises(DBusError) as err:
        await pm(client, "Add", "s", name)
    assert err.value.type == c.INVALID_ARGS_ERROR
    assert await pm(client, "Protocols") == [[]]  # and it keeps serving


async def test_add_of_an_absent_protocol_is_no_result(services, client) -> None:
    await services.start(create_pm(services.config()))
    with pytest.raises(DBusError) as err:
        await pm(client, "Add", "s", "org.eclipse.agail.protocol.Absent")
    assert err.value.type == c.NO_RESULT_ERROR


async def test_wrong_signature_is_invalid_args_and_service_keeps_running(services, client) -> None:
    await services.start(create_pm(services.config()))
    with pytest.raises(DBusError) as err:
        await pm(client, "Add", "i", 7)
    assert err.value.type == c.INVALID_ARGS_ERROR
    assert "Add takes (s)" in err.value.text
    assert await pm(client, "Protocols") == [[]]


async def test_discovery_lists_each_device_once(services, client) -> None:
    manager = await services.start(create_pm(services.config(**{"poll-interval": "0.1"})))
    await services.start(create_dummy(services.config(**{"announce-interval": "0.05"})))
    await eventually(lambda: protocols(client))
    await pm(client, "StartDiscovery")
    await eventually(lambda: _count(discovered(client), 3))
    for _ in range(3):  # the devices again, as each poll hears of them
        await manager.refresh()
    devices = await discovered(client)
    assert sorted(d.name for d in devices) == [
        "Dummy Switch 1",
        "Dummy Thermometer 1",
        "Dummy Thermometer 2",
    ]
    (status,) = await pm(client, "DiscoveryStatus")
    assert status == [(DUMMY, "RUNNING")]
    await pm(client, "StopDiscovery")
    assert await pm(client, "DiscoveryStatus") == [[(DUMMY, "NONE")]]


async def test_devices_no_longer_seen_expire(services, client) -> None:
    await services.start(
        create_pm(services.config(**{"poll-interval": "0.1", "device-ttl": "0.5"}))
    )
    await services.start(create_dummy(services.config(**{"announce-interval": "0.05"})))
    await eventually(lambda: protocols(client))
    await pm(client, "StartDiscovery")
    await eventually(lambda: discovered(client))
    await pm(client, "StopDiscovery")
    # The Dummy keeps reporting what it saw for its own visibility window (60 s);
    # the manager still expires its entries once the protocol goes away.
    await services.stop(services.running[-1][0])
    await eventually(lambda: _empty(discovered(client)), timeout=60)


async def test_slow_protocol_fails_without_blocking_the_others(services, client) -> None:
    await services.start(create_pm(services.config(**{"fanout-timeout": "0.5"})))
    await services.start(create_dummy(services.config()))
    await services.start(create_dummy(services.config(name="Slow", **{"discovery-delay": "600"})))
    await eventually(lambda: _count(protocols(client), 2))
    # Far sooner than the slow protocol would answer: the manager did not wait for it.
    await asyncio.wait_for(pm(client, "StartDiscovery"), 120)
    (status,) = await pm(client, "DiscoveryStatus")
    assert sorted(map(tuple, status)) == [
        (DUMMY, "RUNNING"),
        (c.protocol_bus_name("Slow"), "FAILURE"),
    ]


async def _count(coro, n: int) -> bool:
    return len(await coro) == n


async def test_independent_client_sees_agile_signatures(services, bus_address) -> None:
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config()))
    base = [
        "busctl",
        f"--address={bus_address}",
        "call",
        c.PROTOCOL_MANAGER_NAME,
        c.PROTOCOL_MANAGER_PATH,
        c.PROTOCOL_MANAGER_IFACE,
    ]

    async def busctl(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *base, *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        return out.decode()

    assert (await eventually(lambda: busctl("Protocols"))).startswith("a(ssss) ")
    assert (await busctl("Protocols")).strip() == f'a(ssss) 1 "Dummy" "Dummy" "{DUMMY}" "Available"'
    assert (await busctl("Devices")).startswith("a(ssss) ")
    assert (await busctl("DiscoveryStatus")).strip() == f'a(ss) 1 "{DUMMY}" "NONE"'
    gdbus = await asyncio.create_subprocess_exec(
        "gdbus",
        "call",
        "--address",
        bus_address,
        "--dest",
        c.PROTOCOL_MANAGER_NAME,
        "--object-path",
        c.PROTOCOL_MANAGER_PATH,
        "--method",
        f"{c.PROTOCOL_MANAGER_IFACE}.Add",
        "org.example.NotAProtocol",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await gdbus.communicate()
    assert gdbus.returncode != 0
    assert "GDBus.Error:org.freedesktop.DBus.Error.InvalidArgs" in out.decode()
