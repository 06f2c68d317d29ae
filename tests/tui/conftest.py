"""Fixtures for the TUI tests: a real demo gateway, and the frozen runtime folder."""

from pathlib import Path

import pytest

from tests.tui.states import frozen_runtime_dir


@pytest.fixture
def gateway(gateway_factory):
    return gateway_factory()


@pytest.fixture
def frozen_dir(tmp_path: Path) -> Path:
    return frozen_runtime_dir(tmp_path / "frozen")
