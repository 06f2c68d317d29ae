"""A staged rollout across three gateways, each with its own engine and update service,
reached over SSH: a broken image stops at the canary, which its update service rolls
back, and the other two are never touched; a good one reaches all three."""

import asyncio
import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest

from agile_tui.client.fleet import SERVICE_IMAGES
from fleet.rollout import Rollout, State, Step
from fleet.status import Fleet, GatewayStatus, Member, row
from testkit.local_registry import LocalRegistry
from tests.fleet.container_gateway import ContainerGateway, container_gateway
from tests.helpers import healthy_by_the_engine
from tests.tui import states

pytestmark = pytest.mark.timeout(900)
NAMES = ("canary", "second", "third")


@pytest.fixture(scope="module")
def fleet_registry(tmp_path_factory) -> Iterator[LocalRegistry]:
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def three(
    docker_client, stack_images, fleet_registry, tmp_path_factory
) -> Iterator[list[ContainerGateway]]:
    for image in ("bus", "storage"):
        fleet_registry.push(docker_client, f"agile/{image}:multistage", image, "multistage")
    folder = tmp_path_factory.mktemp("fleet")
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(container_gateway(name, folder / name, fleet_registry))
            for name in NAMES
        ]


def publish(docker_client, registry: LocalRegistry, version: str, broken: bool) -> str:
    """A storage image of a new version (one layer of 2 MB more), pushed as the registry's
    agile/storage:multistage; `broken`: it exits as soon as it starts. Its id."""
    recipe = (
        "FROM agile/storage:multistage\nUSER root\n"
        f"RUN echo {version} > /etc/agile-variant"
        " && head -c 2000000 /dev/urandom > /etc/agile-noise\n"
        "USER agile\n"
        f"LABEL org.agile-gateway.version={version}\n"
        + ('CMD ["sh", "-c", "exit 3"]\n' if broken else "")
    )
    image, _ = docker_client.images.build(fileobj=io.BytesIO(recipe.encode()), rm=True)
    registry.push(docker_client, image.id, "storage", "multistage")
    # Only the gateways' own engines need it: a child left in the shared engine would
    # keep agile/storage:multistage's image from being removed (the delta benchmark does).
    docker_client.images.remove(image.id, force=True)
    return str(image.id)


async def fleet_table(entries: list[Any]) -> list[GatewayStatus]:
    fleet = Fleet(entries, timeout_s=30)
    try:
        return await fleet.poll_all()
    finally:
        await fleet.stop()


def settled_table(gateways: list[ContainerGateway], entries: list[Any]) -> list[GatewayStatus]:
    """The fleet table once every gateway's engine has found its containers healthy by its
    own probe (an update's gate passes at once, the engine says so an interval later)."""
    for gateway in gateways:
        client = gateway.engine.client()
        healthy_by_the_engine(client, client.containers.list())
    return asyncio.run(fleet_table(entries))


def roll_out(
    reach, three: list[ContainerGateway], registry: LocalRegistry
) -> tuple[bool, list[Step]]:  # type: ignore[no-untyped-def]
    members = [
        Member(reach(g.name, g.state, engine=f"unix://{g.engine.socket}"), timeout_s=30)
        for g in three
    ]
    seen: list[list[Step]] = []

    async def run() -> bool:
        rollout = Rollout(
            members,
            "storage",
            registry.address,
            wave_size=1,
            window_s=90,
            canary="canary",
            on_change=lambda steps: seen.append([Step(**vars(s)) for s in steps]),
        )
        try:
            return await rollout.run()
        finally:
            await rollout.close()

    return asyncio.run(run()), seen[-1]


def test_a_broken_image_stops_at_the_canary_and_is_rolled_back_there(
    docker_client, three, fleet_registry, reach
) -> None:
    before = {g.name: g.storage_image() for g in three}
    publish(docker_client, fleet_registry, "broken", broken=True)

    ok, steps = roll_out(reach, three, fleet_registry)

    assert not ok
    states = {s.gateway: s.state for s in steps}
    assert states == {
        "canary": State.ROLLED_BACK,
        "second": State.NOT_STARTED,
        "third": State.NOT_STARTED,
    }, steps
    canary = steps[0]
    assert "not healthy" in canary.message and canary.predicted_bytes > 0, canary
    assert {g.name: g.storage_image() for g in three} == before


def test_a_release_the_gateways_refuse_starts_nowhere(
    docker_client, three, fleet_registry, reach
) -> None:
    """A new release is signed, but the registry serves it frozen (its timestamp expired:
    the build host stopped signing, or the registry holds old metadata back): every
    gateway refuses it, and the rollout starts nowhere."""
    before = {g.name: g.storage_image() for g in three}
    publish(docker_client, fleet_registry, "frozen", broken=False)
    trust = fleet_registry.trust
    trust.snapshot({"timestamp": -1.0})
    trust.upload(fleet_registry.address)
    entries = [reach(g.name, g.state, engine=f"unix://{g.engine.socket}") for g in three]
    try:
        for status in asyncio.run(fleet_table(entries)):  # said before any rollout
            assert "storage expired" in status.refused and not status.pending, status
            assert row(status, 0.0)[5].startswith("✗ ")
        ok, steps = roll_out(reach, three, fleet_registry)
    finally:  # signed afresh, for the tests after
        trust.snapshot()
        trust.upload(fleet_registry.address)
    assert not ok
    assert {s.state for s in steps} == {State.REFUSED}, steps
    assert all("expired" in s.message for s in steps), steps
    assert {g.name: g.storage_image() for g in three} == before


def test_a_good_image_reaches_every_gateway_wave_by_wave(
    docker_client, three, fleet_registry, reach
) -> None:
    new = publish(docker_client, fleet_registry, "good", broken=False)
    # The fleet table first: every gateway up, its two containers healthy, the update
    # pending with its bytes.
    entries = [reach(g.name, g.state, engine=f"unix://{g.engine.socket}") for g in three]

    for status in settled_table(three, entries):
        assert status.reachable and (status.services_up, status.services_total) == (2, 2), status
        assert set(status.versions) == {"bus", "storage"}, status
        assert status.pending == ["storage"] and 2_000_000 < status.pending_bytes < 2_100_000
        assert status.refused == [] and status.unsigned == [], status

    ok, steps = roll_out(reach, three, fleet_registry)

    assert ok, steps
    assert [(s.gateway, s.wave, s.state) for s in steps] == [
        ("canary", 0, State.HEALTHY),
        ("second", 1, State.HEALTHY),
        ("third", 2, State.HEALTHY),
    ]
    # Pulled: the new layer (the image's config, a few kB, is not in the engine's progress).
    assert all(2_000_000 < s.predicted_bytes < 2_100_000 for s in steps), steps
    assert all(s.predicted_bytes - 20_000 < s.pulled_bytes <= s.predicted_bytes for s in steps)
    assert {g.name: g.storage_image() for g in three} == {n: new for n in NAMES}


async def test_agile_tui_rolls_out_from_the_fleet_section(
    docker_client, three, fleet_registry, reach
) -> None:
    """The canary is the selected gateway; the rest go in one wave of two."""
    new = publish(docker_client, fleet_registry, "from-the-tui", broken=False)
    gateways = [reach(g.name, g.state, engine=f"unix://{g.engine.socket}") for g in three]
    app = states.make_app(None, None, mode="fleet", gateways=gateways)
    async with app.run_test(size=(120, 40)) as pilot:
        await states.fleet_answered(pilot)
        screen = app.screen
        await pilot.press("R")
        await states.on_screen(pilot, "ChoiceModal")
        for _ in range(SERVICE_IMAGES.index("storage")):
            await pilot.press("down")
        await pilot.press("enter")
        await states.on_screen(pilot, "PromptModal")
        await pilot.press("2", "enter")
        await states.on_screen(pilot, "FleetScreen")
        await states.until(pilot, lambda: screen.rolling, timeout=30)
        await states.until(pilot, lambda: not screen.rolling, timeout=600)
        table = screen.query_one("#rollout")
        assert table.border_subtitle == "done: every gateway healthy"
        assert [table.get_row(n)[:3] for n in NAMES] == [
            ["canary", "canary", State.HEALTHY],
            ["second", "1", State.HEALTHY],
            ["third", "1", State.HEALTHY],
        ]
    assert {g.name: g.storage_image() for g in three} == {n: new for n in NAMES}
