"""What can be built: the service images and the build strategies (no Docker import,
so that agile-tui can offer them without loading the Docker SDK)."""

import re
from dataclasses import dataclass

from services import contract as c

# baseline: one self-contained Dockerfile; multistage: build stage + deployment stage on
# the hierarchy; squashed: the multi-stage image squashed above the shared runtime image
# (keeps sharing); squashed-all: squashed into a single layer.
STRATEGIES = {
    "baseline": "one self-contained Dockerfile, build tools in",
    "multistage": "venv built apart; runtime + venv + code",
    "squashed": "multi-stage, squashed above the runtime image",
    "squashed-all": "multi-stage, squashed into one layer",
}
LABEL = "org.agile-gateway"


@dataclass(frozen=True)
class ServiceImage:
    name: str
    extras: tuple[str, ...]
    service: str  # what `agile-gateway service` runs by default
    bus_names: tuple[str, ...]
    about: str


SERVICES = {
    s.name: s
    for s in (
        # The bus daemon: no Python, its own Dockerfile (dockerfiles/bus/).
        ServiceImage("bus", (), "", (), "dbus-daemon, the stack's bus"),
        # One image for both core services; a container picks one with AGILE_SERVICE.
        ServiceImage(
            "core",
            (),
            "protocolmanager",
            (c.PROTOCOL_MANAGER_NAME,),
            "protocol manager and device manager",
        ),
        ServiceImage("storage", (), "storage", (c.STORAGE_NAME,), "time-series storage"),
        ServiceImage("ble", ("ble",), "ble", (c.protocol_bus_name("BLE"),), "BLE adapter"),
        ServiceImage(
            "zigbee", ("zigbee",), "zigbee", (c.protocol_bus_name("ZB"),), "ZigBee adapter"
        ),
    )
}

_STEP = re.compile(r"^Step (\d+)/(\d+) :")


def build_step(line: str) -> tuple[int, int] | None:
    """(step, steps) if this line of a build log starts a step (all stages counted)."""
    m = _STEP.match(line)
    return (int(m[1]), int(m[2])) if m else None
