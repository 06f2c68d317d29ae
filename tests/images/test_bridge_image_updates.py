"""The gateway service images in Home Assistant over a real broker: the update
service's plan as update entities on the bridge (installed and latest version, the bytes
to download), and an install asked for from Home Assistant run by the update service,
its progress shown until it ends."""

import json
from pathlib import Path

import pytest

from services.updater.service import create as create_updater
from testkit import ha_discovery
from testkit.broker import Subscriber, running_broker
from tests.bridge.mqtt import arrived, publish, start_bridge, until
from tests.images.stack import publish_code_change, publish_signed

pytestmark = pytest.mark.timeout(900)  # a code change built, on a loaded engine
BASE = "agile/gw1"


def image_state(sub, service: str) -> dict:  # type: ignore[no-untyped-def]
    got = arrived(sub, f"{BASE}/$bridge/images/{service}")
    return ha_discovery.UPDATE_STATE(got[-1]) if got else {}


async def test_service_images_are_update_entities_and_an_install_runs_the_update_service(
    docker_client, stack_images, own_registry, services, tmp_path: Path
) -> None:
    publish_signed(own_registry)
    publish_code_change(docker_client, own_registry)
    state = services.state_dir
    state.mkdir(parents=True, exist_ok=True)
    # A stack of no containers: each service "runs" the image its tag names here.
    (state / "stack.json").write_text(
        json.dumps({"project": "agiletest-none", "strategy": "multistage"})
    )
    own_registry.provision(state)
    await services.start(create_updater(services.config(registry=own_registry.address)))
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, "agile/#", "homeassistant/#")
        try:
            await start_bridge(services, broker, installs="true")
            topic = "homeassistant/update/gw1/agile-bridge_image_storage/config"
            config = await until(
                lambda: (
                    ha_discovery.check(topic, p.encode())
                    if (p := dict(sub.messages()).get(topic))
                    else None
                ),
                timeout=120,
            )
            assert config["command_topic"] == f"{BASE}/$bridge/images/storage/install"
            storage = await until(lambda: image_state(sub, "storage"), timeout=120)
            running = docker_client.images.get("agile/storage:multistage").labels
            assert storage["installed_version"] == running["org.agile-gateway.version"]
            assert storage["latest_version"] != storage["installed_version"]  # the change
            assert "B to download" in storage["release_summary"]
            assert "signed by" in storage["release_summary"]
            # core: nothing published for it, so nothing newer; an install asked anyway
            # is the update service's to refuse, and it changes nothing.
            core = image_state(sub, "core")
            assert core["latest_version"] == core["installed_version"]
            publish(broker, f"{BASE}/$bridge/images/core/install", b"install")
            result = await until(lambda: arrived(sub, f"{BASE}/$bridge/images/core/install/result"))
            assert result[-1] == {"ok": True}  # started: the update service says how it ends
            await until(lambda: any(s.get("in_progress") for s in _all(sub, "core")), timeout=60)
            await until(lambda: not image_state(sub, "core")["in_progress"], timeout=120)
            assert image_state(sub, "core")["installed_version"] == core["installed_version"]
        finally:
            sub.stop()


def _all(sub, service: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return arrived(sub, f"{BASE}/$bridge/images/{service}")
