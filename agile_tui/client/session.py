"""What the TUI is connected to: the gateway bus, the runtime's state folder, the engine."""

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agile_tui.client.gateway import GatewayClient
from agile_tui.client.native import NativeRuntime


@dataclass
class Session:
    bus_address: str | None  # None: no bus could be found
    bus_problem: str = ""  # why, when there is no bus
    state_dir: Path | None = None  # native/demo runtime state folder, if local
    docker_url: str | None = None  # None: the environment's default engine
    registry: str | None = None  # host:port updates come from; None: the stack's own
    runtime: str = "remote"  # demo | native | containers | remote
    hostname: str = field(default_factory=socket.gethostname)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.gateway = GatewayClient(self.bus_address) if self.bus_address else None
        self.native = NativeRuntime(self.state_dir) if self.state_dir else None
