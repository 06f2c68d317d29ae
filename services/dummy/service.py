"""Run the Dummy protocol as a gateway service."""

from services.catalog import options_of
from services.dummy.adapter import DummyAdapter
from services.protocol import ProtocolService
from services.service import ServiceConfig


def create(config: ServiceConfig) -> ProtocolService:
    opts = options_of("dummy", config.options)
    adapter = DummyAdapter(
        short_name=opts["name"],
        thermometers=opts["thermometers"],
        switches=opts["switches"],
        record_interval_s=opts["record-interval"],
        announce_interval_s=opts["announce-interval"],
        discovery_delay_s=opts["discovery-delay"],
    )
    return ProtocolService(config, adapter)
