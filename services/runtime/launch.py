"""Starting `agile-gateway up --native --simulate` from another program (the demo, tests,
benchmarks) and waiting until it says it is up (its --json line)."""

import json
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
        "--json",
    ]
    for option in options:
        cmd += ["--option", option]
    return [*cmd, *extra]


def wait_until_up(proc: subprocess.Popen[str]) -> tuple[bool, str]:
    """Read the gateway's output to the JSON object saying how it came up; (up?, what it
    printed). False if it ended first."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("{"):
            try:
                return json.loads(line).get("state") == "up", "".join(lines)
            except ValueError:
                continue  # a log line that happens to start with a brace
    return False, "".join(lines)
