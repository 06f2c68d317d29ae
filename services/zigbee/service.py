"""Run the ZigBee adapter as a gateway service.

Options: `radio` (virtual with --simulate, else znp|ezsp|deconz|zigate|xbee),
`port` (the radio's serial device), `channel` (default 15), `request-timeout`
(s, default 10); for the virtual radio `devices` (extra climate sensors),
`report-interval` (s, default 1), `faults` (1/0: the lossy, dropping-out and
leaving devices, default 1), `latency` (s per frame of every device, default 0).
"""

from services.protocol import ProtocolService
from services.service import ServiceConfig
from services.zigbee.adapter import ZigBeeAdapter


def create(config: ServiceConfig) -> ProtocolService:
    opts = config.options
    radio = opts.get("radio") or ("virtual" if config.simulate else "znp")
    sim = {}
    if radio == "virtual":
        from services.zigbee.sim.devices import population

        sim["devices"] = population(
            extra_climate=int(opts.get("devices", 0)),
            report_interval_s=float(opts.get("report-interval", 1.0)),
            faults=opts.get("faults", "1") not in ("0", "false", "no"),
            latency_s=float(opts.get("latency", 0.0)),
        )
    adapter = ZigBeeAdapter(
        config.state_dir,
        radio=radio,
        port=opts.get("port", "/dev/ttyUSB0" if radio != "virtual" else ""),
        channel=int(opts.get("channel", 15)),
        request_timeout_s=float(opts.get("request-timeout", 10.0)),
        sim=sim,
    )
    return ProtocolService(config, adapter)
