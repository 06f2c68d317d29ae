"""The Images section's build and update actions, from the keyboard, on the real engine
and a real registry."""

import shutil

import docker
import pytest
from textual.pilot import Pilot
from textual.widgets import Log, ProgressBar

from agile_tui.cli import runtime_of
from agile_tui.screens.build import BuildScreen
from services.images.recipes import LABEL, STRATEGIES
from services.images.update import plan
from services.paths import DOCKERFILES
from tests.images.stack import publish_code_change, stack_app, stack_down, stack_up
from tests.tui import states

pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-tui"


def image_id(docker_client, tag: str) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return docker_client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


async def engine_up(pilot) -> None:  # type: ignore[no-untyped-def]
    await states.until(pilot, lambda: pilot.app.engine_state == "connected")


async def build_from_the_keyboard(pilot: Pilot[None], strategy: str = "multistage") -> BuildScreen:
    """b, storage, the strategy, enter: the build screen."""
    await engine_up(pilot)
    await pilot.press("b")
    await states.on_screen(pilot, "BuildModal")
    # The modal offers the selected image's service and strategy first: start from the top.
    modal = pilot.app.screen
    modal.query_one("#service").highlighted = 0
    modal.query_one("#strategy").highlighted = 0
    await pilot.press("down", "down", "enter")  # bus, core, storage
    await pilot.press(*["down"] * list(STRATEGIES).index(strategy), "enter")
    await states.on_screen(pilot, "BuildScreen")
    screen = pilot.app.screen
    assert isinstance(screen, BuildScreen)
    return screen


def gateway_app(gateway_factory):  # type: ignore[no-untyped-def]
    """On a native gateway's bus: its update service runs the builds."""
    gateway = gateway_factory()
    return states.make_app(gateway.address, None, mode="images", docker_url="")


async def test_a_build_streams_its_log_with_progress_and_tags_the_image(
    docker_client, hierarchy, gateway_factory
) -> None:
    app = gateway_app(gateway_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await build_from_the_keyboard(pilot)
        assert (screen.model.service, screen.model.strategy) == ("storage", "multistage")
        await states.until(pilot, lambda: screen.model.outcome != "running", timeout=600)
        assert screen.model.outcome == "built", "\n".join(screen.query_one(Log).lines[-20:])
        lines = screen.query_one(Log).lines
        assert any(line.startswith("Step 1/") for line in lines)
        bar = screen.query_one(ProgressBar)
        assert bar.total and bar.progress == bar.total
        await pilot.press("escape")
        await states.on_screen(pilot, "ImagesScreen")
    image = docker_client.images.get("agile/storage:multistage")
    assert image.labels[f"{LABEL}.strategy"] == "multistage"
    tagged = f"agile/storage:multistage = agile/storage:{image.labels[f'{LABEL}.version']}"
    assert tagged in lines[-2] and lines[-1] == "built agile/storage:multistage"


async def test_a_failed_build_shows_the_error_and_tags_nothing(
    docker_client, hierarchy, tmp_path, monkeypatch, gateway_factory
) -> None:
    recipes = tmp_path / "dockerfiles"
    shutil.copytree(DOCKERFILES, recipes)
    recipe = recipes / "python-service.multistage.Dockerfile"
    recipe.write_text(recipe.read_text().replace("USER agile\n", "USER agile\nRUN exit 7\n"))
    monkeypatch.setenv("AGILE_DOCKERFILES", str(recipes))  # for the gateway's update service
    before = image_id(docker_client, "agile/storage:multistage")  # None on a fresh engine
    app = gateway_app(gateway_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await build_from_the_keyboard(pilot)
        await states.until(pilot, lambda: screen.model.outcome != "running", timeout=600)
        assert screen.model.outcome == "failed"
        assert "returned a non-zero code: 7" in screen.model.error
        assert "returned a non-zero code: 7" in str(screen.query_one("#error").render())
    assert image_id(docker_client, "agile/storage:multistage") == before


async def test_a_build_is_cancelled_and_tags_nothing(
    docker_client, hierarchy, gateway_factory
) -> None:
    before = image_id(docker_client, "agile/storage:baseline")
    app = gateway_app(gateway_factory)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await build_from_the_keyboard(pilot, "baseline")
        await states.until(pilot, lambda: screen.model.step is not None, timeout=300)
        await pilot.press("x")
        assert screen.model.outcome == "cancelled"
        await states.until(pilot, lambda: screen.model.ended, timeout=60)
        await pilot.press("x")  # nothing left to cancel: no effect
        assert screen.model.outcome == "cancelled"
    assert image_id(docker_client, "agile/storage:baseline") == before


async def test_updates_show_the_bytes_first_then_pull_and_roll_back(
    docker_client, stack_images, registry, tmp_path
) -> None:
    address = registry.address
    v1 = docker_client.images.get("agile/storage:multistage").id
    state = stack_up(tmp_path / "state", PROJECT, registry=registry)
    assert runtime_of(state) == "containers"  # what agile-tui finds in the state folder
    try:
        registry.push(docker_client, v1, "storage", "multistage")
        v2 = publish_code_change(docker_client, registry)
        predicted = plan(
            docker_client,
            address,
            "storage",
            "multistage",
            trust=registry.policy(tmp_path / "trust"),
        )
        app = stack_app(state)
        async with app.run_test(size=(80, 24)) as pilot:
            await engine_up(pilot)
            await pilot.press("U")
            await states.on_screen(pilot, "UpdatesScreen")
            screen = app.screen
            await states.until(pilot, lambda: screen.model.result is not None)
            table = states.table(pilot, "services")
            row = table.get_row("storage")
            assert predicted.version and predicted.version != row[1]
            assert predicted.signed
            assert row[2:] == [
                f"→ {predicted.version}",
                f"▸ {predicted.pull_bytes:,} B",  # no bundle published: the pull is the way
                "none",
                f"r{predicted.signed.release}",
            ]
            assert table.get_row("zigbee")[2] == "unsigned"
            assert f"stack: {predicted.download_bytes:,} B" in str(table.border_subtitle)

            states.select_row(pilot, "services", "storage")
            await pilot.press("u")
            await states.until(pilot, lambda: screen.model.busy == "updating")
            await states.until(pilot, lambda: screen.model.busy == "", timeout=120)
            said = "\n".join(screen.model.operation.said)
            assert "updated to" in said and "healthy" in said
            assert states.rows(pilot, "pull") == 1  # the one code layer
            assert "100%" in states.table(pilot, "pull").get_row_at(0)[1]
            await states.until(pilot, lambda: table.get_row("storage")[2] == "up to date")

            await pilot.press("r", "y")  # roll back to the version before
            await states.until(
                pilot,
                lambda: "back on agile/storage:previous" in "\n".join(screen.model.operation.said),
            )
            await states.until(pilot, lambda: screen.model.busy == "")
            assert table.get_row("storage")[2] == f"→ {predicted.version}"  # checked again
        assert docker_client.images.get("agile/storage:multistage").id == v1
        assert docker_client.images.get("agile/storage:previous").id == v2
    finally:
        stack_down(state, PROJECT)
