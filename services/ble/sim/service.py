"""The virtual BlueZ as a process: on the bus DBUS_SYSTEM_BUS_ADDRESS names."""

import asyncio
import os
import signal

from services.ble.sim.bluez import VirtualBlueZ
from services.ble.sim.peripherals import default_population, environment_sensor
from services.catalog import options_of
from services.service import ServiceConfig


class SimBlueZService:
    """Not a gateway-bus service: it owns org.bluez on the (virtual) system bus."""

    bus_names: tuple[str, ...] = ()

    def __init__(self, config: ServiceConfig) -> None:
        opts = options_of("sim-bluez", config.options)
        self.address = opts["bus"] or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        notify_hz = opts["notify-hz"]
        if opts["fleet"]:  # exactly N environment sensors, for benchmarks
            peripherals = [
                environment_sensor(
                    f"C0:FF:EE:02:{i >> 8:02X}:{i & 0xFF:02X}", f"Fleet {i}", 1000 + i, notify_hz
                )
                for i in range(opts["fleet"])
            ]
        else:
            peripherals = default_population(
                count=opts["devices"], notify_hz=notify_hz, wanderer_cycle=opts["wanderer"]
            )
        if opts["rssi-jitter"] is not None:
            for p in peripherals:
                p.rssi_jitter = opts["rssi-jitter"]
        self.bluez = VirtualBlueZ(
            peripherals,
            advert_interval_s=opts["advert-interval"],
            temporary_timeout_s=opts["temporary-timeout"],
        )

    async def run(self, stop_event: asyncio.Event | None = None) -> int:
        if not self.address:
            raise SystemExit(
                "sim-bluez: say which bus (--option bus=ADDRESS or DBUS_SYSTEM_BUS_ADDRESS)"
            )
        stop_event = stop_event or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_event.set)
        await self.bluez.start(self.address)
        lost = asyncio.ensure_future(self.bluez.bus.wait_for_disconnect())
        stopped = asyncio.ensure_future(stop_event.wait())
        await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if lost.done():
            return 1
        lost.cancel()
        await self.bluez.stop()
        return 0


def create(config: ServiceConfig) -> SimBlueZService:
    return SimBlueZService(config)
