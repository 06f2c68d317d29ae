"""The service images' update entities from the update service's plan and signals:
what Home Assistant is told, and only when it changed."""

import json

from services import contract as c
from services.bridge.updates import Updates
from testkit import ha_discovery

BASE = "agile/gw"
STORAGE = f"{BASE}/$bridge/images/storage"


def updates_sent() -> tuple[Updates, list[tuple[str, dict]]]:
    sent: list[tuple[str, dict]] = []

    async def send(topic: str, payload: bytes) -> None:
        sent.append((topic, ha_discovery.UPDATE_STATE(json.loads(payload))))

    return Updates(None, BASE, send), sent  # type: ignore[arg-type]  # no plan asked here


async def test_a_plan_shows_the_version_the_bytes_and_the_release() -> None:
    updates, sent = updates_sent()
    updates.plans = {
        "storage": c.ServicePlan(
            "storage", running="0.1.0-aaa", version="0.1.0-bbb", download_bytes=1_234,
            method="delta", release=7, signed_by="release-1",
        ),
        "core": c.ServicePlan("core", running="0.1.0-ccc", problem="not in the registry"),
    }  # fmt: skip
    await updates.send_images()
    shown = dict(sent)
    assert shown[STORAGE]["installed_version"] == "0.1.0-aaa"
    assert shown[STORAGE]["latest_version"] == "0.1.0-bbb"
    assert shown[STORAGE]["release_summary"] == (
        "1,234 B to download (delta), release r7 signed by release-1"
    )
    core = shown[f"{BASE}/$bridge/images/core"]
    assert core["latest_version"] == core["installed_version"]  # nothing newer to take
    assert core["release_summary"] == "not in the registry"
    await updates.send_images()
    assert len(sent) == 2  # unchanged: not sent again


async def test_an_updates_progress_follows_its_layers_and_ends() -> None:
    import asyncio

    from services import service

    updates, sent = updates_sent()
    updates.plans = {"storage": c.ServicePlan("storage", running="a", version="b")}

    async def settle() -> dict:
        # The signal handler sends from tasks of its own: their end, awaited.
        await asyncio.gather(*list(service._background))
        return [s for t, s in sent if t == STORAGE][-1]

    updates._signal("Started", ["op1", "update", "storage core"])
    assert (await settle())["in_progress"] is True
    updates._signal("Progress", ["op1", "sha256:1", 30, 100])
    updates._signal("Progress", ["op1", "sha256:2", 0, 100])
    assert (await settle())["update_percentage"] == 15
    updates._signal("Progress", ["op1", "sha256:2", 100, 100])
    assert (await settle())["update_percentage"] == 65
    updates._signal("Log", ["op1", "pulled"])  # nothing to show
    updates._signal("Progress", ["op9", "sha256:3", 1, 2])  # not an update's: ignored
    assert updates._progress("storage") == 0.65
