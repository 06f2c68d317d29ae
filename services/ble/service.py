"""Run the BLE adapter as a gateway service."""

from services.ble.adapter import BLEAdapter
from services.catalog import options_of
from services.protocol import ProtocolService
from services.service import ServiceConfig


def create(config: ServiceConfig) -> ProtocolService:
    opts = options_of("ble", config.options)
    adapter = BLEAdapter(adapter=opts["adapter"], reconnect_max_s=opts["reconnect-max"])
    return ProtocolService(config, adapter)
