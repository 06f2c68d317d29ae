"""Snapshots of every section and modal at 80x24 and 120x40, in deterministic states.

Regenerate after an intended change with `./dev test tests/tui --snapshot-update`,
then `./dev screenshots` for README's pictures.
"""

from pathlib import Path

import pytest

from services.bus import BusNotFound, resolve_bus_address
from tests.tui import states

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
SCREENS = {  # name: (section the app opens on, how the state is reached)
    "devices-discovered": ("devices", states.discovered),
    "devices-paired": ("devices", states.paired),
    "devices-viewer": ("devices", states.paired_as_viewer),
    "pair-modal": ("devices", states.pair_modal),
    "firmware-modal": ("devices", states.firmware_modal),
    "data-streams": ("devices", states.data_streams),
    "data-history": ("devices", states.data_history),
    "policy-modal": ("devices", states.policy_modal),
    "containers-native": ("containers", states.containers),
    "images-without-engine": ("images", states.images),
    "build-modal": ("images", states.build_modal),
    "build-failed": ("images", states.build_failed),
    "updates-pulling": ("images", states.updates_pulling),
    "help": ("devices", states.help_open),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, gateway, frozen_dir, screen: str, size: str) -> None:
    mode, state = SCREENS[screen]
    app = states.make_app(gateway.address, frozen_dir, mode=mode)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=state)


@pytest.mark.parametrize("size", SIZES)
def test_devices_without_bus(snap_compare, monkeypatch, size: str) -> None:
    monkeypatch.delenv("AGILE_BUS_ADDRESS", raising=False)
    with pytest.raises(BusNotFound) as err:
        resolve_bus_address(None, Path("/nonexistent/agile-state"))
    app = states.make_app(None, None, bus_problem=str(err.value))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=states.no_bus)


@pytest.mark.parametrize("size", SIZES)
def test_data_with_a_full_disk(snap_compare, gateway_factory, frozen_dir, tmpfs, size: str):
    disk = tmpfs("1m")
    gw = gateway_factory(*states.GATEWAY_OPTIONS, f"storage:folder={disk / 'storage'}")
    app = states.make_app(gw.address, frozen_dir)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=states.storage_full(disk))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("report", ["measured", "stack", "builds", "fix", "none yet"])
def test_paper_report(
    snap_compare, gateway, frozen_dir, monkeypatch, tmp_path, size: str, report: str
) -> None:
    folder = Path("/nonexistent/paper") if report == "none yet" else states.paper_report(tmp_path)
    monkeypatch.setenv("AGILE_PAPER_REPORT", str(folder))
    app = states.make_app(gateway.address, frozen_dir, mode="images")
    charts = {"stack": 1, "builds": 2, "fix": 3}
    shown = (
        states.paper_report_chart(charts[report]) if report in charts else states.paper_report_open
    )
    assert snap_compare(app, terminal_size=SIZES[size], run_before=shown)


@pytest.mark.parametrize("size", SIZES)
def test_fleet(snap_compare, gateway, frozen_dir, reach, tmp_path, size: str) -> None:
    """Three gateways: one whose host key is unknown (selected: its whole reason shown),
    one up (this machine's demo gateway, over SSH), one with no gateway bus."""
    unknown = tmp_path / "no_known_hosts"
    unknown.write_text("")
    no_engine = "unix:///nonexistent/engine.sock"
    gateways = [
        reach("silo", gateway.state_dir, known_hosts=unknown),
        reach("kitchen", gateway.state_dir, engine=no_engine),
        reach("barn", tmp_path / "not-a-gateway"),
    ]
    app = states.make_app(gateway.address, frozen_dir, mode="fleet", gateways=gateways)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=states.fleet_answered)


@pytest.mark.parametrize("size", SIZES)
def test_audit_log(snap_compare, gateway_factory, frozen_dir, tmp_path, monkeypatch, size: str):
    import time

    states.preload_audit(tmp_path / "gw")
    monkeypatch.setenv("TZ", "UTC")  # the entries' times as every machine shows them
    time.tzset()
    try:
        gw = gateway_factory(*states.GATEWAY_OPTIONS, state_dir=tmp_path / "gw")
        app = states.make_app(gw.address, frozen_dir, mode="containers")
        assert snap_compare(app, terminal_size=SIZES[size], run_before=states.audit_open)
    finally:
        monkeypatch.undo()
        time.tzset()
