"""The bridge tests' fixtures: a real broker, and subscribers to it."""

from pathlib import Path

import pytest

from testkit.broker import Broker, Subscriber, running_broker


@pytest.fixture
def broker(tmp_path: Path):
    with running_broker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def subscribe():
    """mosquitto_sub on a broker's topics (see Subscriber), stopped after the test."""
    started: list[Subscriber] = []

    def start(broker: Broker, *topics: str) -> Subscriber:
        started.append(Subscriber(broker, *topics))
        return started[-1]

    yield start
    for sub in started:
        sub.stop()
