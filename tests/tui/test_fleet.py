"""agile-tui's Fleet section: a gateway opened from it is shown in the four sections as
the local one is, through its SSH tunnel; `l` comes back to the local gateway."""

from tests.tui import states


async def test_a_fleet_gateway_opens_in_the_sections_and_the_local_one_comes_back(
    gateway, gateway_factory, frozen_dir, reach, tmp_path
) -> None:
    other = gateway_factory(state_dir=tmp_path / "other")
    kitchen = reach("kitchen", other.state_dir, engine="unix:///nonexistent/engine.sock")
    app = states.make_app(gateway.address, frozen_dir, mode="fleet", gateways=[kitchen])
    async with app.run_test(size=(80, 24)) as pilot:
        await states.fleet_answered(pilot)
        await pilot.press("enter")
        await states.until(pilot, lambda: app.session.hostname == "kitchen")
        await states.on_screen(pilot, "ContainersScreen")
        await states.until(pilot, lambda: app.bus_state == "connected")
        tunnel = app.remote
        assert tunnel is not None and app.session.bus_address == tunnel.bus_address
        bar = str(app.screen.query_one("GatewayBar #status").render())
        assert bar.startswith("kitchen · bus ●"), bar
        # The sections ask the opened gateway: its runtime's services, over the tunnel.
        await pilot.press("2")
        await states.on_screen(pilot, "DevicesScreen")
        await states.until(pilot, lambda: app.bus_state == "connected")

        await pilot.press("5")
        await states.on_screen(pilot, "FleetScreen")
        await pilot.press("l")
        await states.until(pilot, lambda: app.session.hostname == app.home.hostname)
        assert app.session.bus_address == gateway.address
        try:
            await states.until(pilot, lambda: app.bus_state == "connected")
        except AssertionError:
            raise AssertionError(f"bus {app.bus_state}: {app.bus_problem}") from None
        assert app.remote is None and not tunnel.folder.exists()


async def test_screens_left_by_opening_gateways_follow_no_events(
    gateway, gateway_factory, frozen_dir, reach, tmp_path
) -> None:
    """Ten times: open a fleet gateway, visit Devices and Data (both follow the bus's
    events), come back to the local gateway and visit them again. The screens each
    opening made anew are gone, and so are their subscriptions: only the two mounted
    sections follow the gateway's events."""
    other = gateway_factory(state_dir=tmp_path / "other")
    kitchen = reach("kitchen", other.state_dir, engine="unix:///nonexistent/engine.sock")
    app = states.make_app(gateway.address, frozen_dir, mode="fleet", gateways=[kitchen])
    async with app.run_test(size=(80, 24)) as pilot:
        await states.fleet_answered(pilot)
        for _ in range(10):
            for opening, hostname in (("enter", "kitchen"), ("l", app.home.hostname)):
                await pilot.press("5")
                await states.on_screen(pilot, "FleetScreen")
                await pilot.press(opening)
                await states.until(pilot, lambda h=hostname: app.session.hostname == h)
                await states.on_screen(pilot, "ContainersScreen")
                await pilot.press("2")
                await states.on_screen(pilot, "DevicesScreen")
                await pilot.press("3")
                await states.on_screen(pilot, "DataScreen")
        assert app.events.subscribers() == 2  # Devices' new devices, Data's records
