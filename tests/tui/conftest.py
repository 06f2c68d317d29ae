"""Fixtures for the TUI tests: a real demo gateway, and the frozen runtime folder."""

from pathlib import Path

import pytest

from testkit.broker import running_broker
from tests.tui import states
from tests.tui.states import frozen_runtime_dir


@pytest.fixture
def gateway(gateway_factory, tmp_path: Path):
    # The wandering BLE sensor stays in range, so that every run sees the same devices;
    # the store holds a fixed week of temperatures for the history view. The MQTT
    # bridge has a broker, so that the Devices section shows it bridging.
    states.preload_history(tmp_path / "gw")
    with running_broker(tmp_path / "broker") as broker:
        options = [*states.GATEWAY_OPTIONS, *states.mqtt_options(broker)]
        yield gateway_factory(*options, state_dir=tmp_path / "gw")


@pytest.fixture
def frozen_dir(tmp_path: Path) -> Path:
    return frozen_runtime_dir(tmp_path / "frozen")
