"""Pilot tests of the operator's flows against a real demo gateway."""

import re
from pathlib import Path

import pytest
from textual.pilot import Pilot

from agile_tui.client.gateway import GatewayClient
from agile_tui.screens.devices import DevicesScreen
from agile_tui.screens.updates import UpdatesScreen
from agile_tui.widgets.live_table import LiveTable
from fleet.config import Config, ConfigError, load_config
from tests.tui import states


async def test_pair_a_device_with_the_keyboard_alone(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.paired(pilot)
    client = GatewayClient(gateway.address)
    await client.connect()
    try:
        [definition] = await client.registered()
    finally:
        client.close()
    assert (definition.device_id, definition.name) == (states.ENV_SENSOR, "AGILE Env 1")


async def test_pair_with_a_chosen_name(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.discovered(pilot)
        states.select_row(pilot, "discovered", states.DUMMY_SWITCH)
        await pilot.press("p")
        await states.on_screen(pilot, "PairModal")
        await pilot.press("enter", "ctrl+u", *"Kitchen plug", "enter")
        await states.until(pilot, lambda: states.rows(pilot, "registered") == 1)
        table = app.screen.query_one("#registered", LiveTable)
        assert table.get_row(states.DUMMY_SWITCH)[1] == "Kitchen plug"


async def test_b_switches_a_devices_mqtt_bridging_off_and_on(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.paired(pilot)
        registered = app.screen.query_one("#registered", LiveTable)
        await states.until(pilot, lambda: "MQTT connected" in str(registered.border_subtitle))
        registered.focus()
        states.select_row(pilot, "registered", states.ENV_SENSOR)
        assert registered.get_row(states.ENV_SENSOR)[3] == "yes"
        await pilot.press("b")
        await states.until(pilot, lambda: registered.get_row(states.ENV_SENSOR)[3] == "off")
        await pilot.press("b")
        await states.until(pilot, lambda: registered.get_row(states.ENV_SENSOR)[3] == "yes")
    client = GatewayClient(gateway.address)
    await client.connect()
    try:
        assert await client.bridged() == {states.ENV_SENSOR: True}
    finally:
        client.close()


async def test_read_a_component_shows_value_and_unit(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.paired(pilot)
        await pilot.press("tab", "r")  # registered table, read
        await states.on_screen(pilot, "ChoiceModal")
        await pilot.press("enter")  # temperature
        await states.until(pilot, lambda: any("°C" in str(n.message) for n in app._notifications))


async def test_live_chart_gains_points_as_records_arrive(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.charting(pilot)
        first = states.data_points(pilot)
        await states.until(pilot, lambda: states.data_points(pilot) > first, timeout=60)
        await pilot.press("space")  # and stop
        await states.until(pilot, lambda: states.data_points(pilot) == 0)


async def test_unreachable_bus_is_said_and_the_rest_keeps_working(frozen_dir) -> None:
    app = states.make_app("unix:path=/nonexistent/bus.sock", frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.until(pilot, lambda: app.bus_state == "unreachable")
        banner = app.screen.query_one("ProblemBanner")
        assert banner.display and "/nonexistent/bus.sock" in str(banner.render())
        await pilot.press("1")  # containers still list the runtime's processes
        await states.until(pilot, lambda: states.rows(pilot, "stack") == 3)


async def _updates_without_a_bus(pilot: Pilot[None]) -> UpdatesScreen:
    await pilot.press("U")
    await states.on_screen(pilot, "UpdatesScreen")
    screen = pilot.app.screen
    assert isinstance(screen, UpdatesScreen)
    await states.until(pilot, lambda: not screen.model.busy)
    return screen


async def test_updates_without_a_gateway_bus_say_why(frozen_dir) -> None:
    app = states.make_app(None, frozen_dir, mode="images", bus_problem="no gateway bus: none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _updates_without_a_bus(pilot)
        assert "no gateway bus: none" in str(screen.query_one("#note").render())
        await pilot.press("a", "x")  # nothing to update, nothing to cancel: no effect
        assert screen.model.result is None and not screen.model.busy


async def test_an_update_by_the_missing_layers_alone_says_what_a_pull_would_take(
    frozen_dir,
) -> None:
    from agile_tui.client.updates import UpdateCheck
    from services.contract import ServicePlan

    app = states.make_app(None, frozen_dir, mode="images", bus_problem="no gateway bus: none")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _updates_without_a_bus(pilot)
        storage = ServicePlan(
            "storage", "v1", "r:5000/agile/storage:multistage", "v2", 745_000, 4, 4,
            method="layers", pull_bytes=68_400_000,
        )  # fmt: skip
        screen.model.result = UpdateCheck("r:5000", "multistage", [storage])
        screen.show()
        table = screen.query_one("#services", LiveTable)
        await states.until(pilot, lambda: table.keys() == ["storage"])
        assert table.get_row("storage")[3] == "▸ 745,000 B"
        note = str(screen.query_one("#note").render())
        assert "storage: only the layers not here (the engine's pull: 65.2 MiB)" in note


async def test_unreachable_engine_is_said_on_containers(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir, mode="containers")
    async with app.run_test(size=(80, 24)) as pilot:
        await states.engine_settled(pilot)
        banner = app.screen.query_one("ProblemBanner")
        assert banner.display and "nonexistent/docker.sock" in str(banner.render())


async def test_keys_rebind_from_the_config(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir, keys={"devices.discovery": "D"})
    async with app.run_test(size=(80, 24)) as pilot:
        await states.engine_settled(pilot)
        await pilot.press("d")
        await pilot.pause(0.5)
        assert states.rows(pilot, "discovered") == 0
        await pilot.press("D")
        await states.until(pilot, lambda: states.rows(pilot, "discovered") == states.DISCOVERED)


async def test_every_section_is_in_the_command_palette(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)):
        titles = [cmd.title for cmd in app.get_system_commands(app.screen)]
    for section in ("Containers", "Devices", "Data", "Images"):
        assert f"Go to {section}" in titles
    assert "Discovery" in titles and "Pair" in titles


def test_config_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('theme = "agile"\nrefresh_seconds = 1\n[keys]\n"app.help" = "f2"\n')
    assert load_config(good) == Config(refresh_seconds=1.0, keys={"app.help": "f2"}, path=good)
    bad = tmp_path / "bad.toml"
    bad.write_text("refresh_seconds = 0\n")
    with pytest.raises(ConfigError, match="refresh_seconds"):
        load_config(bad)


async def test_stop_and_start_a_real_container(gateway, frozen_dir, container_factory) -> None:
    container = container_factory("tui")
    app = states.make_app(
        gateway.address, frozen_dir, mode="containers", docker_url="unix:///var/run/docker.sock"
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await states.until(pilot, lambda: app.engine_state == "connected")
        screen = app.screen
        await states.until(pilot, lambda: container.id in screen.model.rows)
        table = screen.query_one("#stack", LiveTable)
        table.move_cursor(row=table.get_row_index(container.id))
        await pilot.press("t")
        await states.until(
            pilot, lambda: screen.model.rows[container.id].state == "exited", timeout=60
        )
        assert table.get_row(container.id)[2] == "exited"
        await pilot.press("s")
        await states.until(
            pilot, lambda: screen.model.rows[container.id].state == "running", timeout=60
        )
        await pilot.press("l")
        await states.on_screen(pilot, "LogsScreen")
        await pilot.press("escape")
        await pilot.press("delete")
        await states.on_screen(pilot, "ConfirmModal")
        await pilot.press("y")
        await states.until(pilot, lambda: container.id not in screen.model.rows, timeout=60)


async def test_pair_a_zigbee_device_with_the_keyboard_alone(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.engine_settled(pilot)
        await pilot.press("j")  # ZigBee joining, with its countdown
        await states.until(
            pilot,
            lambda: "ZigBee joining" in str(states.table(pilot, "discovered").border_subtitle),
        )
        await states.until(
            pilot, lambda: states.ZB_CLIMATE in list(states.table(pilot, "discovered").keys())
        )
        table = states.table(pilot, "discovered")
        await pilot.press("home", *["down"] * table.get_row_index(states.ZB_CLIMATE))
        assert table.selected_key() == states.ZB_CLIMATE
        await pilot.press("p")
        await states.on_screen(pilot, "PairModal")
        await pilot.press("enter", "enter")  # the proposed type (zigbee-climate) and name
        await states.until(pilot, lambda: states.rows(pilot, "registered") == 1)
    client = GatewayClient(gateway.address)
    await client.connect()
    try:
        [definition] = await client.registered()
        record = await client.read(definition.device_id, "temperature")
    finally:
        client.close()
    assert (definition.device_id, definition.name) == (states.ZB_CLIMATE, "AGILE Sim TH-100")
    assert record.unit == "°C"


async def test_shift_b_backs_the_zigbee_network_up_and_the_bar_says_when(
    gateway, frozen_dir
) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.engine_settled(pilot)
        await states.until(
            pilot, lambda: "(B)" in str(states.table(pilot, "discovered").border_subtitle)
        )
        assert "no backup (B)" in str(states.table(pilot, "discovered").border_subtitle)
        await pilot.press("B")
        await states.until(
            pilot,
            lambda: re.search(
                r"backup (\d\d-\d\d )?\d\d:\d\d \(B\)",
                str(states.table(pilot, "discovered").border_subtitle),
            ),
        )
    client = GatewayClient(gateway.address)
    await client.connect()
    try:
        backups = await client.zigbee_backups()
    finally:
        client.close()
    assert backups and backups[-1].name.startswith("zigbee-backup-")


async def test_recording_policy_is_edited_and_history_is_charted(gateway, frozen_dir) -> None:
    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.data_streams(pilot)  # the environment sensor's streams
        await pilot.press("R")
        await states.on_screen(pilot, "PolicyModal")
        await pilot.press("space", "tab", "ctrl+u", *"10s", "tab", "ctrl+u", *"2d", "ctrl+s")
        await states.on_screen(pilot, "DataScreen")
        await states.until(
            pilot,
            lambda: "●" in str(app.screen.query_one("#streams").get_option_at_index(0).prompt),
        )
        await pilot.press("space", "h", "h", "h", "h")  # chart it over the stored 7 days
        await states.until(pilot, lambda: states.data_points(pilot) > 100)
    client = GatewayClient(gateway.address)
    await client.connect()
    try:
        policies = await client.policies()
    finally:
        client.close()
    assert policies[(states.ENV_SENSOR, "temperature")] == {
        "record": True,
        "interval_ms": 10_000,
        "retention_ms": 2 * 86_400_000,
        "encrypt": False,
    }


async def test_a_full_disk_under_storage_is_shown_until_space_returns(
    gateway_factory, frozen_dir, tmpfs
) -> None:
    disk = tmpfs("1m")
    gw = gateway_factory(*states.GATEWAY_OPTIONS, f"storage:folder={disk / 'storage'}")
    app = states.make_app(gw.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.storage_full(disk)(pilot)
        banner = app.screen.query("ProblemBanner").last()
        assert banner.display and "No space left on device" in str(banner.render())
        (disk / "ballast").unlink()
        await states.until(pilot, lambda: not banner.display)


async def test_stop_start_and_restart_a_native_service(gateway) -> None:
    """Through the runtime's supervisor on the bus, as a native gateway's operator does."""
    import json

    def service(name: str) -> dict:
        return json.loads((gateway.state_dir / "runtime.json").read_text())["services"][name]

    app = states.make_app(gateway.address, gateway.state_dir, mode="containers")
    async with app.run_test(size=(120, 40)) as pilot:
        await states.until(pilot, lambda: app.bus_state == "connected")
        screen = app.screen
        await states.until(pilot, lambda: "native:dummy" in screen.model.rows)
        states.select_row(pilot, "stack", "native:dummy")
        await pilot.press("t")
        await states.until(pilot, lambda: service("dummy")["state"] == "stopped")
        await pilot.press("s")
        await states.until(pilot, lambda: service("dummy")["state"] == "running")
        before = service("dummy")["pid"]
        await pilot.press("R")
        await states.until(pilot, lambda: service("dummy")["pid"] not in (None, before))
        assert service("dummy")["restarts"] == 0


async def test_the_bus_daemon_restarting_under_agile_tui_is_survived(gateway, frozen_dir) -> None:
    """The supervisor restarts a killed dbus-daemon; agile-tui joins the bus again on its
    own, says so in its bar, and the chart's stream is subscribed again."""
    import os
    import signal
    import subprocess

    app = states.make_app(gateway.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.charting(pilot)
        daemon = subprocess.run(
            ["pgrep", "-f", f"config-file={gateway.state_dir}/bus.conf"],
            capture_output=True,
            text=True,
        ).stdout.split()
        os.kill(int(daemon[0]), signal.SIGKILL)
        await states.until(pilot, lambda: app.bus_state != "connected")
        await states.until(pilot, lambda: app.bus_state == "connected")
        after = states.data_points(pilot)
        await states.until(pilot, lambda: states.data_points(pilot) > after)  # records flow again


async def test_a_storage_key_others_can_read_is_shown_in_data(
    gateway_factory, frozen_dir, tmp_path
) -> None:
    key = tmp_path / "storage.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o644)
    gw = gateway_factory(*states.GATEWAY_OPTIONS, f"storage:key-file={key}")
    app = states.make_app(gw.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.paired(pilot)
        await pilot.press("3")
        await states.until(pilot, lambda: bool(app.storage_problem))
        banner = app.screen.query("ProblemBanner").last()
        assert banner.display and "Encrypted streams are not recorded" in str(banner.render())


async def test_actions_the_role_lacks_are_dimmed_and_say_the_role_they_need(
    gateway, frozen_dir
) -> None:
    from agile_tui.screens.help import key_rows

    app = states.make_app(gateway.address, frozen_dir, mode="devices")
    async with app.run_test(size=(80, 24)) as pilot:
        await states.devices_shown(pilot)
        await states.until(pilot, lambda: app.role == "admin")  # root runs the suite
        assert app.screen.check_action("toggle_discovery", ()) is True
        app.role = "viewer"  # as the gateway says of a member of agile-viewer
        assert app.screen.check_action("toggle_discovery", ()) is None  # dimmed
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Discovery (needs operator)" in titles and "Discovery" not in titles
        removing = [row for row in key_rows(app) if row[3] == "devices.remove"]
        assert [row[2] for row in removing] == ["Remove (needs admin)"]
        app.role = "operator"
        assert app.screen.check_action("toggle_discovery", ()) is True
        await pilot.press("d")  # an operator's: discovery starts
        screen = app.screen
        assert isinstance(screen, DevicesScreen)
        await states.until(pilot, lambda: screen.view.discovering)


async def test_u_in_the_firmware_view_updates_a_zigbee_device_and_shows_it_done(
    gateway_factory, frozen_dir
) -> None:
    from services.zigbee.sim.devices import FIRST_FIRMWARE
    from tests.zigbee.network import ota_file

    gw = gateway_factory(*states.GATEWAY_OPTIONS)
    ota_file(gw.state_dir / "zigbee" / "ota", 0x0202, FIRST_FIRMWARE + 1)  # the sensor's
    app = states.make_app(gw.address, frozen_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await states.firmware_modal(pilot)
        label = pilot.app.screen.query_one("#firmware-offered")
        assert f"0x{FIRST_FIRMWARE + 1:08x}" in str(label.render())
        await pilot.press("u")
        state = pilot.app.screen.query_one("#firmware-state")
        await states.until(pilot, lambda: "done" in str(state.render()), timeout=120)
        runs = pilot.app.screen.query_one("#firmware-runs")
        await states.until(pilot, lambda: f"0x{FIRST_FIRMWARE + 1:08x}" in str(runs.render()))
