"""Regenerate screenshots/ (README's pictures) from the snapshot tests' states.

./dev screenshots
"""

import os
import sys
import tempfile
import time
from pathlib import Path

from textual._doc import take_svg_screenshot

from agile_tui.client.paper import REPORT_ENV
from services.paths import ROOT
from testkit.broker import running_broker
from testkit.gateway import Gateway
from testkit.operator import private_sshd, reacher
from tests.tui import states

SHOTS = [
    ("devices", "devices", states.paired),
    ("pair-modal", "devices", states.pair_modal),
    ("firmware-modal", "devices", states.firmware_modal),
    ("data", "devices", states.data_streams),
    ("data-history", "devices", states.data_history),
    ("policy-modal", "devices", states.policy_modal),
    ("containers", "containers", states.containers),
    ("audit", "containers", states.audit_open),
    ("images", "images", states.images),
    ("build-modal", "images", states.build_modal),
    ("build-failed", "images", states.build_failed),
    ("updates", "images", states.updates_pulling),
    ("paper-report", "images", states.paper_report_open),
    ("fleet", "fleet", states.fleet_answered),
    ("help", "devices", states.help_open),
]


def main() -> int:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    os.environ["TZ"] = "UTC"  # the audit log's times, as the snapshots show them
    time.tzset()
    with tempfile.TemporaryDirectory() as tmp, private_sshd(Path(tmp)) as sshd:
        reach = reacher(sshd, Path(tmp))
        frozen = states.frozen_runtime_dir(Path(tmp) / "frozen")
        (Path(tmp) / "paper").mkdir()
        os.environ[REPORT_ENV] = str(states.paper_report(Path(tmp) / "paper"))
        for name, mode, state in SHOTS:
            states.preload_history(Path(tmp) / name)
            states.preload_audit(Path(tmp) / name)
            with running_broker(Path(tmp) / f"{name}-broker") as broker:
                options = [*states.GATEWAY_OPTIONS, *states.mqtt_options(broker)]
                gateway = Gateway(Path(tmp) / name, options)
                # The fleet: this gateway over SSH, one not there, one of unknown host key.
                unknown = Path(tmp) / "no_known_hosts"
                unknown.write_text("")
                fleet = [
                    reach("kitchen", gateway.state_dir, engine="unix:///nonexistent/engine.sock"),
                    reach("barn", Path(tmp) / "not-a-gateway"),
                    reach("silo", gateway.state_dir, known_hosts=unknown),
                ]
                try:
                    app = states.make_app(
                        gateway.address,
                        frozen,
                        mode=mode,
                        gateways=fleet if mode == "fleet" else None,
                    )
                    svg = take_svg_screenshot(app=app, terminal_size=(100, 30), run_before=state)
                finally:
                    gateway.stop()
            (out / f"{name}.svg").write_text(svg)
            print(f"screenshots/{name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
