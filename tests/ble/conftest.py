"""A private system bus with the virtual BlueZ on it, for bleak and the BLE adapter."""

from collections.abc import Callable
from pathlib import Path

import pytest

from services.ble.sim.bluez import VirtualBlueZ
from services.ble.sim.peripherals import SimPeripheral, default_population
from services.busconfig import start_bus_daemon


@pytest.fixture
def system_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """bleak reads DBUS_SYSTEM_BUS_ADDRESS whenever it opens a bus: point it here."""
    proc, address = start_bus_daemon(tmp_path / "system-bus", names=["org.bluez"])
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
    yield address
    proc.terminate()
    proc.wait(5)


@pytest.fixture
async def bluez_factory(system_bus: str):
    started: list[VirtualBlueZ] = []

    async def start(
        peripherals: list[SimPeripheral] | None = None, **kwargs: float
    ) -> VirtualBlueZ:
        bluez = VirtualBlueZ(
            peripherals or default_population(notify_hz=5.0),
            advert_interval_s=kwargs.pop("advert_interval_s", 0.2),
            **kwargs,
        )
        await bluez.start(system_bus)
        started.append(bluez)
        return bluez

    yield start
    for bluez in started:
        if bluez.bus.connected:
            await bluez.stop()


@pytest.fixture
async def bluez(bluez_factory: Callable) -> VirtualBlueZ:
    return await bluez_factory()
