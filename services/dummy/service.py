"""Run the Dummy protocol as a gateway service."""

from services.dummy.adapter import DummyAdapter
from services.protocol import ProtocolService
from services.service import ServiceConfig


def create(config: ServiceConfig) -> ProtocolService:
    opts = config.options
    adapter = DummyAdapter(
        short_name=opts.get("name", "Dummy"),
        thermometers=int(opts.get("thermometers", 2)),
        switches=int(opts.get("switches", 1)),
        record_interval_s=float(opts.get("record-interval", 1.0)),
        announce_interval_s=float(opts.get("announce-interval", 1.0)),
        discovery_delay_s=float(opts.get("discovery-delay", 0.0)),
    )
    return ProtocolService(config, adapter)
