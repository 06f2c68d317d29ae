"""What the runtime tells a service (its own module: the catalog, which the access
checks read, needs it without the service life cycle, which needs those checks)."""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServiceConfig:
    """What the runtime tells a service: where the bus is, where state lives, options."""

    bus_address: str
    state_dir: Path
    simulate: bool = False
    options: dict[str, str] = field(default_factory=dict)
    name: str = ""  # the catalog's name (audit entries say which service acted)
