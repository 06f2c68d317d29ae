"""Run the BLE adapter as a gateway service."""

from services.ble.adapter import BLEAdapter
from services.protocol import ProtocolService
from services.service import ServiceConfig


def create(config: ServiceConfig) -> ProtocolService:
    opts = config.options
    adapter = BLEAdapter(
        adapter=opts.get("adapter"), reconnect_max_s=float(opts.get("reconnect-max", 30.0))
    )
    return ProtocolService(config, adapter)
