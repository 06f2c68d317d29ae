"""Clients find the bus from --bus, then $AGILE_BUS_ADDRESS, then the state folder."""

from pathlib import Path

import pytest

from services.bus import BusNotFound, resolve_bus_address


def test_explicit_address_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGILE_BUS_ADDRESS", "unix:path=/env")
    (tmp_path / "bus.address").write_text("unix:path=/file\n")
    assert resolve_bus_address("unix:path=/flag", tmp_path) == "unix:path=/flag"


def test_environment_beats_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGILE_BUS_ADDRESS", "unix:path=/env")
    (tmp_path / "bus.address").write_text("unix:path=/file\n")
    assert resolve_bus_address(None, tmp_path) == "unix:path=/env"


def test_state_folder_file_is_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGILE_BUS_ADDRESS", raising=False)
    (tmp_path / "bus.address").write_text("unix:path=/file\n")
    assert resolve_bus_address(None, tmp_path) == "unix:path=/file"


def test_no_bus_anywhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGILE_BUS_ADDRESS", raising=False)
    with pytest.raises(BusNotFound, match=r"bus\.address"):
        resolve_bus_address(None, tmp_path)
