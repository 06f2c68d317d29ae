"""A gateway of the fleet as the rollout tests need it: its own Docker engine (data
root, exec root, socket, network namespace; no bridge) running the bus and storage as
compose brings them up, its update service a native process on that bus driving that
engine, and the registry reached from inside the engine's namespace at its own address."""

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.bus import ADDRESS_FILE
from services.compose import STACK_FILE, compose_command, environment
from services.images.update import service_containers, wait_healthy
from services.runtime.containers import run_dir
from testkit.flaky_link import FlakyLink
from testkit.local_registry import LocalRegistry
from testkit.private_engine import PrivateEngine
from tests.helpers import ROOT

RUNS = ("bus", "storage")


@dataclass
class ContainerGateway:
    name: str
    project: str
    state: Path
    engine: PrivateEngine

    def storage_image(self) -> str:
        [container] = service_containers(self.engine.client(), self.project, "storage")
        return str(container.attrs["Image"])


@contextlib.contextmanager
def container_gateway(
    name: str, folder: Path, registry: LocalRegistry
) -> Iterator[ContainerGateway]:
    """The stack starts on the registry's agile/bus and agile/storage (:multistage),
    pulled as a gateway is provisioned: an image loaded from a file instead would have
    its layers downloaded again by the next pull (the engine knows a layer's registry
    digest only from pulling or pushing it), whatever a plan says."""
    (folder / "engine").mkdir(parents=True)
    engine = PrivateEngine(folder / "engine")
    stack: list[subprocess.Popen[bytes]] = []
    link = None
    try:
        port = int(registry.address.rsplit(":", 1)[1])
        link = FlakyLink(registry.address, engine.listen(port))
        for image in RUNS:
            pulled = engine.client().images.pull(f"{registry.address}/agile/{image}", "multistage")
            pulled.tag(f"agile/{image}", "multistage")
        state = folder / "state"
        state.mkdir()
        state.chmod(0o755)
        run_dir(state)
        project = f"agiletest-fleet-{name}"
        env = {**environment(state, "multistage"), "DOCKER_HOST": f"unix://{engine.socket}"}
        up = subprocess.run(
            [*compose_command(True, project), "up", "-d", *RUNS],
            env=env,
            capture_output=True,
            text=True,
        )
        assert up.returncode == 0, up.stderr
        registry.provision(state)
        (state / STACK_FILE).write_text(
            json.dumps({"project": project, "strategy": "multistage", "registry": registry.address})
        )
        bus = f"unix:path={state / 'run' / 'bus.sock'}"
        (state / ADDRESS_FILE).write_text(bus + "\n")
        assert wait_healthy(engine.client(), engine.client().containers.list(), 120) == ""
        updater = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.runtime.cli",
                "service",
                "updater",
                "--bus",
                bus,
                "--state-dir",
                str(state),
                "--option",
                f"docker=unix://{engine.socket}",
            ],
            cwd=ROOT,
            stdout=(folder / "updater.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        stack.append(updater)
        yield ContainerGateway(name, project, state, engine)
    finally:
        for proc in stack:
            proc.terminate()
            proc.wait(10)
        if link is not None:
            link.close()
        engine.stop()
