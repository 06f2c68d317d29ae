"""What can be built: the service images and the build strategies (no Docker import,
so that agile-tui can offer them without loading the Docker SDK)."""

import re
from dataclasses import dataclass

from services.catalog import IMAGES, ImageSpec

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
    service: str  # what `agile-gateway service` runs by default ("" for the bus)
    bus_names: tuple[str, ...]  # the default service's, for the health check
    about: str


def _image(spec: ImageSpec) -> ServiceImage:
    first = spec.services[0] if spec.services else None
    return ServiceImage(
        spec.name,
        spec.extras,
        first.name if first else "",
        first.bus_names if first else (),
        spec.about,
    )


SERVICES = {name: _image(spec) for name, spec in IMAGES.items()}

_STEP = re.compile(r"^Step (\d+)/(\d+) :")


def build_step(line: str) -> tuple[int, int] | None:
    """(step, steps) if this line of a build log starts a step (all stages counted)."""
    m = _STEP.match(line)
    return (int(m[1]), int(m[2])) if m else None
