"""Every service the gateway can run: how to create it and which bus names it owns."""

import importlib
from dataclasses import dataclass
from typing import Protocol

from services import contract as c
from services.service import ServiceConfig


class Runnable(Protocol):
    """A service process: BusService, or a service on another bus (the virtual BlueZ)."""

    bus_names: tuple[str, ...]

    async def run(self) -> int: ...


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    factory: str  # "module:function" taking a ServiceConfig
    bus_names: tuple[str, ...]
    simulated_only: bool = False  # runs only with --simulate (no real hardware behind it)
    system_bus: bool = False  # talks to BlueZ on the system bus (virtual with --simulate)

    def create(self, config: ServiceConfig) -> "Runnable":
        module, func = self.factory.split(":")
        return getattr(importlib.import_module(module), func)(config)


CATALOG: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            "protocolmanager", "services.protocolmanager.service:create", (c.PROTOCOL_MANAGER_NAME,)
        ),
        ServiceSpec(
            "devicemanager",
            "services.devicemanager.service:create",
            (c.DEVICE_MANAGER_NAME, c.DEVICE_NAME),
        ),
        ServiceSpec("storage", "services.storage.service:create", (c.STORAGE_NAME,)),
        ServiceSpec(
            "dummy",
            "services.dummy.service:create",
            (c.protocol_bus_name("Dummy"),),
            simulated_only=True,
        ),
        ServiceSpec(
            "sim-bluez",
            "services.ble.sim.service:create",
            (),
            simulated_only=True,
            system_bus=True,
        ),
        ServiceSpec(
            "ble", "services.ble.service:create", (c.protocol_bus_name("BLE"),), system_bus=True
        ),
        ServiceSpec("zigbee", "services.zigbee.service:create", (c.protocol_bus_name("ZB"),)),
    )
}


def services_for(simulate: bool) -> list[ServiceSpec]:
    """The services of a native gateway, in start order."""
    return [s for s in CATALOG.values() if simulate or not s.simulated_only]
