"""Run the ZigBee adapter as a gateway service (options: services/catalog.py)."""

from services.catalog import options_of
from services.protocol import ProtocolService
from services.service import ServiceConfig
from services.zigbee.adapter import ZigBeeAdapter

DEFAULT_PORT = "/dev/ttyUSB0"


def create(config: ServiceConfig) -> ProtocolService:
    opts = options_of("zigbee", config.options)
    radio = opts["radio"] or ("virtual" if config.simulate else "znp")
    sim = {}
    if radio == "virtual":
        from services.zigbee.sim.devices import population

        sim["devices"] = population(
            extra_climate=opts["devices"],
            report_interval_s=opts["report-interval"],
            faults=opts["faults"],
            latency_s=opts["latency"],
        )
    adapter = ZigBeeAdapter(
        config.state_dir,
        radio=radio,
        port=opts["port"] or ("" if radio == "virtual" else DEFAULT_PORT),
        channel=opts["channel"],
        request_timeout_s=opts["request-timeout"],
        backups_kept=opts["backups"],
        ota_folder=opts["ota-folder"] or "",
        ota_online=opts["ota-online"],
        ota_stall_s=opts["ota-stall"],
        sim=sim,
    )
    return ProtocolService(config, adapter)
