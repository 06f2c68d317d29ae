"""A gateway's container stack on a Docker engine of its own: the images it runs loaded
from this machine's engine (as if installed), compose bringing the services up, and the
stack settings the update service reads, its registry's releases trusted."""

import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from services.compose import STACK_FILE, compose_command, environment
from services.images.update import wait_healthy
from services.runtime.containers import run_dir
from testkit.local_registry import LocalRegistry
from testkit.private_engine import PrivateEngine


@contextmanager
def gateway_stack(
    folder: Path,
    state: Path,
    project: str,
    images: Sequence[str] | Mapping[str, str],
    services: Sequence[str],
    registry: LocalRegistry,
    strategy: str = "multistage",
    registry_address: str = "",
) -> Iterator[PrivateEngine]:
    """`images` (references on this machine's engine; or a mapping of them to the tags
    the gateway runs them as) loaded into an engine in `folder`, compose's `services` up
    and healthy as project `project` with its state in `state`, updates from `registry`
    (at `registry_address` if another, e.g. through a link)."""
    engine = PrivateEngine(folder)
    try:
        saved = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        assert saved.stdout is not None
        engine.client().images.load(iter(lambda: saved.stdout.read(1 << 20), b""))  # type: ignore[union-attr]  # checked above, lost in the lambda
        if saved.wait() != 0:
            raise RuntimeError(f"docker save {' '.join(images)} failed")
        for reference, tag in images.items() if isinstance(images, Mapping) else ():
            engine.client().images.get(reference).tag(*tag.rsplit(":", 1))
        run_dir(state)
        up = subprocess.run(
            [*compose_command(True, project), "up", "-d", *services],
            env={**environment(state, strategy), "DOCKER_HOST": f"unix://{engine.socket}"},
            capture_output=True,
            text=True,
        )
        if up.returncode != 0:
            raise RuntimeError(f"the gateway's stack did not come up:\n{up.stderr}")
        address = registry_address or registry.address
        settings = {"project": project, "strategy": strategy, "registry": address}
        (state / STACK_FILE).write_text(json.dumps(settings))  # as `up --registry` writes it
        registry.provision(state)
        problem = wait_healthy(engine.client(), engine.client().containers.list(), 120)
        if problem:
            raise RuntimeError(f"the gateway's stack: {problem}")
        yield engine
    finally:
        engine.stop()
