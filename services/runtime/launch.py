"""Starting `agile-gateway up --native --simulate` from another program (the demo, tests,
benchmarks) and waiting until it says it is up."""

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def up_command(
    state_dir: Path, options: Iterable[str] = (), extra: Iterable[str] = ()
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "services.runtime.cli",
        "up",
        "--native",
        "--simulate",
        "--state-dir",
        str(state_dir),
    ]
    for option in options:
        cmd += ["--option", option]
    return [*cmd, *extra]


def wait_until_up(proc: subprocess.Popen[str]) -> tuple[bool, str]:
    """Read the gateway's stdout to its "gateway up|partly up" line; (up?, what it printed)."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("gateway "):
            break
    return bool(lines) and lines[-1].startswith("gateway up"), "".join(lines)
