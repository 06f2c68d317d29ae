"""The update's health gate: a new container counts as healthy as soon as its own health
check passes, run by the gate, not a whole interval later when the engine first runs it;
a check that fails never passes the gate, and the engine's verdict still fails it."""

import os
from collections.abc import Callable, Iterator

import pytest

from services.images.update import wait_healthy

MINUTE_NS = 60 * 10**9


@pytest.fixture
def checked(docker_client, tiny_image) -> Iterator[Callable[[str], object]]:
    """Containers of tiny_image whose health check (`sh -c TEST`) the engine first runs a
    minute after their start."""
    made = []

    def run(test: str) -> object:
        container = docker_client.containers.run(
            tiny_image,
            detach=True,
            name=f"agiletest-gate-{os.getpid()}-{len(made)}",
            healthcheck={"test": ["CMD-SHELL", test], "interval": MINUTE_NS, "retries": 1},
        )
        made.append(container)
        return container

    yield run
    for container in made:
        container.remove(force=True)


def test_a_passing_check_passes_the_gate_before_the_engine_has_run_it(checked):
    container = checked("true")
    assert wait_healthy(container.client, [container], 30) == ""
    container.reload()
    assert container.attrs["State"]["Health"]["Status"] == "starting"  # the engine's: not yet


def test_a_failing_check_never_passes(checked):
    container = checked("false")
    assert wait_healthy(container.client, [container], 3).startswith("not healthy within 3 s")


def test_a_container_that_exits_fails_the_gate_at_once(checked):
    container = checked("true")
    container.kill()
    container.wait()
    assert (
        wait_healthy(container.client, [container], 30) == "the new version exits (exit code 137)"
    )
