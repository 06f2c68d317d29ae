"""Waiting until a gateway is ready — every service on the bus under its names — so that
a script can call the services as soon as `agile-gateway up --wait` or
`agile-gateway status --wait` returns."""

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.bus import BusNotFound, resolve_bus_address
from services.runtime.status import gateway_status
from services.runtime.supervisor import STATUS_FILE

# What every gateway runs, whichever runtime: without these nothing is ready.
CORE = ("protocolmanager", "devicemanager", "storage")
LOG_LINES = 10


@dataclass
class Readiness:
    ready: bool
    address: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    waiting_for: list[str] = field(default_factory=list)  # services not (yet) up
    problem: str = ""  # why the bus itself could not be asked

    def explain(self, state_dir: Path) -> str:
        """What is missing, with the last lines each missing service logged."""
        if self.problem:
            return self.problem
        lines = [f"not up: {', '.join(self.waiting_for)}"]
        logs = _log_files(state_dir)
        for name in self.waiting_for:
            tail = _tail(logs.get(name))
            if tail:
                lines.append(f"--- last lines of {logs[name]} ---")
                lines += tail
        return "\n".join(lines)


def _log_files(state_dir: Path) -> dict[str, str]:
    try:
        services = json.loads((state_dir / STATUS_FILE).read_text()).get("services", {})
    except (OSError, ValueError):
        return {}
    return {name: s["log"] for name, s in services.items() if s.get("log")}


def _tail(path: str | None) -> list[str]:
    if not path:
        return []
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, LOG_LINES)]
    except OSError:
        return []


def assess(report: dict[str, Any]) -> list[str]:
    """The services of a status report that are not up; empty when the gateway is ready."""
    if report.get("bus") != "reachable":
        return ["bus"]
    states = {s["name"]: s["state"] for s in report["services"]}
    missing = [name for name in CORE if name not in states]
    return missing + [name for name, state in states.items() if state != "running"]


async def wait_ready(
    bus: str | None, state_dir: Path, timeout_s: float, interval_s: float = 0.1
) -> Readiness:
    """Poll the gateway's status until every service is up, or `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    result = Readiness(False, problem="no gateway bus yet")
    while True:
        try:
            address = resolve_bus_address(bus, state_dir)
        except BusNotFound as exc:
            result = Readiness(False, problem=str(exc))
        else:
            report = await gateway_status(address, state_dir)
            waiting = assess(report)
            problem = report.get("error", "") if waiting == ["bus"] else ""
            result = Readiness(not waiting, address, report, waiting, problem)
        if result.ready or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(interval_s)
