"""One row per running unit of the stack, whether a container or a native service process."""

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class StackRow:
    key: str  # container id or "native:<service>"
    name: str
    group: str  # compose project, or "native"
    state: str  # running, exited, restarting, ...
    health: str  # healthy, unhealthy, starting, "" (no health check)
    started_at: float | None  # epoch seconds
    cpu_pct: float | None  # None: not measured yet
    mem_bytes: int | None  # None: not available (e.g. memory cgroup off)
    kind: str = "container"  # or "process"
    image: str = ""
    restarts: int = 0


def format_uptime(started_at: float | None, now: float | None = None) -> str:
    if started_at is None:
        return "-"
    seconds = max(0, int((now if now is not None else time.time()) - started_at))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def format_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def format_cpu(pct: float | None) -> str:
    return "-" if pct is None else f"{pct:.1f}%"
