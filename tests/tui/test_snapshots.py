"""Snapshots of every section and modal at 80x24 and 120x40, in deterministic states.

Regenerate after an intended change with `./dev test tests/tui --snapshot-update`,
then `./dev screenshots` for README's pictures.
"""

from pathlib import Path

import pytest

from services.bus import BusNotFound, resolve_bus_address
from tests.tui import states

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_devices_discovered(snap_compare, gateway, frozen_dir, size) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    assert snap_compare(app, terminal_size=size, run_before=states.discovered)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_devices_paired(snap_compare, gateway, frozen_dir, size) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    assert snap_compare(app, terminal_size=size, run_before=states.paired)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_pair_modal(snap_compare, gateway, frozen_dir, size) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    assert snap_compare(app, terminal_size=size, run_before=states.pair_modal)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_data_streams(snap_compare, gateway, frozen_dir, size) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    assert snap_compare(app, terminal_size=size, run_before=states.data_streams)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_containers_native(snap_compare, gateway, frozen_dir, size) -> None:
    app = states.make_app(gateway.address, frozen_dir, mode="containers")
    assert snap_compare(app, terminal_size=size, run_before=states.containers)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_images_without_engine(snap_compare, gateway, frozen_dir, size) -> None:
    app = states.make_app(gateway.address, frozen_dir, mode="images")
    assert snap_compare(app, terminal_size=size, run_before=states.images)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, gateway, frozen_dir, size) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    assert snap_compare(app, terminal_size=size, run_before=states.help_open)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_devices_without_bus(snap_compare, monkeypatch, size) -> None:
    monkeypatch.delenv("AGILE_BUS_ADDRESS", raising=False)
    try:
        resolve_bus_address(None, Path("/nonexistent/agile-state"))
    except BusNotFound as exc:
        problem = str(exc)
    app = states.make_app(None, None, bus_problem=problem)
    assert snap_compare(app, terminal_size=size, run_before=states.no_bus)
