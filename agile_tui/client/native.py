"""The native/demo runtime's service processes, with CPU and memory from /proc."""

import json
import os
import time
from pathlib import Path

from agile_tui.client.stack import StackRow

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _rss_bytes(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


class NativeRuntime:
    """Reads `runtime.json` of a state folder; CPU % comes from deltas between reads."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._last: dict[int, tuple[float, float]] = {}  # pid -> (wall, cpu seconds)

    def status(self) -> dict | None:
        try:
            return json.loads((self.state_dir / "runtime.json").read_text())
        except (OSError, ValueError):
            return None

    def rows(self) -> list[StackRow]:
        status = self.status()
        if not status:
            return []
        rows = []
        now = time.monotonic()
        for name, svc in sorted(status.get("services", {}).items()):
            pid = svc.get("pid")
            cpu_pct = mem = None
            if pid:
                cpu = _cpu_seconds(pid)
                mem = _rss_bytes(pid)
                prev = self._last.get(pid)
                if cpu is not None:
                    if prev and now > prev[0]:
                        cpu_pct = 100.0 * (cpu - prev[1]) / (now - prev[0])
                    self._last[pid] = (now, cpu)
            rows.append(
                StackRow(
                    key=f"native:{name}",
                    name=name,
                    group="native",
                    state=svc.get("state", "?"),
                    health="",
                    started_at=svc.get("started_at"),
                    cpu_pct=cpu_pct,
                    mem_bytes=mem,
                    kind="process",
                    restarts=svc.get("restarts", 0),
                )
            )
        return rows

    def log_file(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"
