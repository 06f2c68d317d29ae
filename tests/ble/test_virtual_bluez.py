"""bleak, unmodified, against the virtual BlueZ; and the emulator's fidelity to BlueZ's API."""

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from services.ble import gatt as g
from services.ble.sim.peripherals import beacon, environment_sensor, sensortag
from services.devicetypes.ble import decode_temperature
from tests.helpers import bluez_on, eventually

ENV, PULSE, TAG, BEACON, WANDERER = (f"C0:FF:EE:00:00:0{i}" for i in range(1, 6))


async def scan_until(wanted: set[str]) -> dict[str, tuple[BLEDevice, AdvertisementData]]:
    """Scan until every wanted address or name has been seen: what was seen, by address."""
    found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
    every = asyncio.Event()

    def seen(device: BLEDevice, adv: AdvertisementData) -> None:
        found[device.address] = (device, adv)
        if wanted <= set(found) | {d.name for d, _ in found.values()}:
            every.set()

    async with BleakScanner(detection_callback=seen):
        await asyncio.wait_for(every.wait(), 60)
    return found


async def test_scanner_reports_advertised_data(bluez) -> None:
    found = await scan_until({ENV, PULSE, TAG, BEACON})
    _, env_adv = found[ENV]
    assert env_adv.local_name == "AGILE Env 1"
    assert env_adv.service_uuids == [g.ENVIRONMENTAL_SENSING]  # advertised only, not the GATT
    assert -100 <= env_adv.rssi <= -20
    assert found[TAG][1].manufacturer_data == {g.TI_MANUFACTURER_ID: b"\x03\x00"}
    assert found[BEACON][1].manufacturer_data[0x004C][:2] == b"\x02\x15"


async def test_connect_read_write_notify_disconnect(bluez) -> None:
    async with BleakClient(TAG) as client:
        assert client.is_connected
        assert client.services.get_service(g.TI_IO) is not None
        # sensors read zero until switched on, as on the real SensorTag
        assert await client.read_gatt_char(g.TI_HUMIDITY_DATA) == bytearray(4)
        await client.write_gatt_char(g.TI_HUMIDITY_CONFIG, b"\x01", response=True)
        assert await client.read_gatt_char(g.TI_HUMIDITY_CONFIG) == bytearray(b"\x01")
        assert await client.read_gatt_char(g.TI_HUMIDITY_DATA) != bytearray(4)
        await client.write_gatt_char(g.TI_IO_DATA, b"\x05", response=False)  # no response
        assert await client.read_gatt_char(g.TI_IO_DATA) == bytearray(b"\x05")
        got: list[bytes] = []
        three = asyncio.Event()

        def notified(_char, data: bytearray) -> None:  # type: ignore[no-untyped-def]
            got.append(bytes(data))
            if len(got) >= 3:
                three.set()

        await client.start_notify(g.TI_LIGHT_DATA, notified)
        await asyncio.wait_for(three.wait(), 30)
        await client.stop_notify(g.TI_LIGHT_DATA)
        count = len(got)
        # BlueZ cancels the notify session before it answers StopNotify, and signals from
        # one sender arrive in order: a round trip after it finds nothing new.
        await client.read_gatt_char(g.TI_LIGHT_DATA)
        assert len(got) == count  # stopped
    assert not client.is_connected


async def test_values_are_plausible_and_vary(bluez) -> None:
    async with BleakClient(ENV) as client:
        values = []
        for _ in range(10):
            values.append(
                float(decode_temperature(bytes(await client.read_gatt_char(g.TEMPERATURE))))
            )
    assert all(15 < v < 30 for v in values)
    assert len(set(values)) > 1  # sensor noise


async def test_device_that_refuses_connections_is_refused_not_timed_out(bluez) -> None:
    with pytest.raises(BleakError, match="le-connection-abort-by-remote"):
        await BleakClient(BEACON, timeout=60).connect()


async def _raw_client(address: str) -> tuple[MessageBus, asyncio.Queue[Message]]:
    bus = await MessageBus(bus_address=address, bus_type=BusType.SYSTEM).connect()
    queue: asyncio.Queue[Message] = asyncio.Queue()
    bus.add_message_handler(
        lambda m: queue.put_nowait(m) if m.message_type == MessageType.SIGNAL else None
    )
    for rule in ("type='signal',sender='org.bluez'",):
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )
    return bus, queue


async def _call(
    bus: MessageBus, path: str, iface: str, member: str, sig: str = "", body: list | None = None
) -> Message:
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path=path,
            interface=iface,
            member=member,
            signature=sig,
            body=body or [],
        )
    )
    assert reply is not None
    return reply


async def test_object_manager_and_property_types_follow_bluez(bluez_factory, system_bus) -> None:
    await bluez_factory([sensortag(TAG, "Tag", 3)])
    bus, signals = await _raw_client(system_bus)
    try:
        await _call(bus, "/org/bluez/hci0", "org.bluez.Adapter1", "StartDiscovery")
        added = await asyncio.wait_for(signals.get(), 60)
        while added.member != "InterfacesAdded":
            added = await asyncio.wait_for(signals.get(), 60)
        assert added.path == "/"  # BlueZ sends ObjectManager signals from the root
        assert added.body[0] == "/org/bluez/hci0/dev_C0_FF_EE_00_00_03"
        reply = await _call(bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        objects = reply.body[0]
        adapter = objects["/org/bluez/hci0"]["org.bluez.Adapter1"]
        assert adapter["Roles"].value == ["central", "peripheral"]
        assert adapter["Discovering"].value is True
        device = objects[added.body[0]]["org.bluez.Device1"]
        signatures = {k: v.signature for k, v in device.items()}
        assert {
            k: signatures[k]
            for k in (
                "Address",
                "Alias",
                "Adapter",
                "Connected",
                "ServicesResolved",
                "RSSI",
                "TxPower",
                "ManufacturerData",
                "ServiceData",
                "Appearance",
                "Trusted",
            )
        } == {
            "Address": "s",
            "Alias": "s",
            "Adapter": "o",
            "Connected": "b",
            "ServicesResolved": "b",
            "RSSI": "n",
            "TxPower": "n",
            "ManufacturerData": "a{qv}",
            "ServiceData": "a{sv}",
            "Appearance": "q",
            "Trusted": "b",
        }
        assert device["ManufacturerData"].value[g.TI_MANUFACTURER_ID].signature == "ay"
        # Trusted is writable, as pairing needs
        await _call(
            bus,
            added.body[0],
            "org.freedesktop.DBus.Properties",
            "Set",
            "ssv",
            ["org.bluez.Device1", "Trusted", Variant("b", True)],
        )
        reply = await _call(
            bus,
            added.body[0],
            "org.freedesktop.DBus.Properties",
            "Get",
            "ss",
            ["org.bluez.Device1", "Trusted"],
        )
        assert reply.body[0].value is True
        # wrong arguments get BlueZ's errors
        reply = await _call(
            bus,
            "/org/bluez/hci0",
            "org.bluez.Adapter1",
            "SetDiscoveryFilter",
            "a{sv}",
            [{"Transport": Variant("s", "x")}],
        )
        assert reply.message_type == MessageType.ERROR
        assert reply.error_name == "org.bluez.Error.InvalidArguments"
    finally:
        bus.disconnect()


async def test_connect_and_link_loss_follow_bluez_order(bluez_factory, system_bus) -> None:
    bluez = await bluez_factory([environment_sensor(WANDERER, "Wanderer", 5)])
    bus, signals = await _raw_client(system_bus)
    path = "/org/bluez/hci0/dev_C0_FF_EE_00_00_05"
    try:
        await _call(bus, "/org/bluez/hci0", "org.bluez.Adapter1", "StartDiscovery")
        while (await asyncio.wait_for(signals.get(), 60)).member != "InterfacesAdded":
            pass
        reply = await _call(bus, path, "org.bluez.Device1", "Connect")
        assert reply.message_type == MessageType.METHOD_RETURN
        events: list[tuple[str, object]] = []

        async def until(event: tuple[str, object]) -> None:
            while event not in events:
                msg = await asyncio.wait_for(signals.get(), 30)
                if msg.member == "PropertiesChanged" and msg.path == path:
                    events.extend(
                        (k, v.value)
                        for k, v in msg.body[1].items()
                        if k in ("Connected", "ServicesResolved")
                    )
                elif msg.member in ("InterfacesAdded", "InterfacesRemoved") and msg.body[
                    0
                ].startswith(path + "/service"):
                    events.append((msg.member, "gatt"))

        await until(("ServicesResolved", True))
        bluez.peripherals[WANDERER].present = False  # carried out of range
        await until(("Connected", False))
        connect = events.index(("Connected", True))
        resolved = events.index(("ServicesResolved", True))
        assert connect < events.index(("InterfacesAdded", "gatt")) < resolved
        lost = events.index(("ServicesResolved", False))
        assert (
            lost < events.index(("InterfacesRemoved", "gatt")) < events.index(("Connected", False))
        )
    finally:
        bus.disconnect()


async def test_temporary_devices_are_removed_when_not_seen(bluez_factory, system_bus) -> None:
    await bluez_factory([beacon(BEACON, "Beacon", 4)], temporary_timeout_s=0.5)
    bus, signals = await _raw_client(system_bus)
    try:
        await _call(bus, "/org/bluez/hci0", "org.bluez.Adapter1", "StartDiscovery")
        while (await asyncio.wait_for(signals.get(), 60)).member != "InterfacesAdded":
            pass
        await _call(bus, "/org/bluez/hci0", "org.bluez.Adapter1", "StopDiscovery")
        msg = await asyncio.wait_for(signals.get(), 60)
        while msg.member != "InterfacesRemoved":
            msg = await asyncio.wait_for(signals.get(), 60)
        assert msg.body == ["/org/bluez/hci0/dev_C0_FF_EE_00_00_04", ["org.bluez.Device1"]]
    finally:
        bus.disconnect()


@pytest.mark.bus
async def test_sim_bluez_runs_on_its_own(tmp_path, monkeypatch) -> None:
    """`agile-gateway sim-bluez` starts a private bus, says where, and bleak finds devices."""
    import subprocess
    import sys

    from services.paths import ROOT

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.runtime.cli",
            "sim-bluez",
            "--state-dir",
            str(tmp_path),
            "--option",
            "advert-interval=0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line.startswith("DBUS_SYSTEM_BUS_ADDRESS=unix:path=")
        address = line.strip().split("=", 1)[1]
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        await eventually(lambda: bluez_on(address))  # it owns org.bluez once started
        await scan_until({"AGILE Env 1", "CC2650 SensorTag"})
    finally:
        proc.terminate()
        proc.wait(10)
