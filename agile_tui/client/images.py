"""The Images section's non-UI side: what can be built, layer analysis, and a build as a
child process. No Docker SDK here (it loads with the engine, agile_tui.client.engine)."""

import os
import subprocess
import sys

from services.images.layers import ImageLayers, share
from services.images.recipes import LABEL, SERVICES, STRATEGIES, build_step
from services.images.report import stack_costs

__all__ = [
    "LABEL",
    "SERVICES",
    "STRATEGIES",
    "ImageLayers",
    "build_step",
    "share",
    "stack_costs",
    "start_build",
]


def build_command(service: str, strategy: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "services.runtime.cli",
        "images",
        "build",
        service,
        "--strategy",
        strategy,
    ]


def start_build(service: str, strategy: str, docker_url: str | None) -> subprocess.Popen[str]:
    """`agile-gateway images build` as a child process, its log on stdout: cancelling is
    ending it (the engine drops a build whose client went away), and docker-squash stays
    out of the TUI. The child dies with the TUI."""
    from services.runtime.supervisor import die_with_parent

    env = dict(os.environ)
    if docker_url:
        env["DOCKER_HOST"] = docker_url
    return subprocess.Popen(
        build_command(service, strategy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
        preexec_fn=die_with_parent,
    )
