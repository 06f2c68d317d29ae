"""An update of the zigbee service is bracketed by the ZigBee network's backup: taken
before, restored when the update rolls back (a new version may change what the radio
holds)."""

import asyncio
import contextlib
import io
import json
from pathlib import Path

import docker
import pytest

from services.bus import connect
from tests.helpers import eventually, protocol
from tests.images.stack import cli, stack_down, stack_up

pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-zbupdate"
# A new version that wipes the stick and zigpy's database, then fails its start.
WIPES_AND_FAILS = (
    'ENTRYPOINT ["sh", "-c", "rm -f /var/lib/agile/zigbee/virtual-radio.json '
    '/var/lib/agile/zigbee/zigbee.db*; exit 3"]\nCMD []\n'
)


async def network_of(address: str, devices: int) -> dict:
    """The network the ZigBee service runs once `devices` devices are on it (from a
    backup taken now) — joining opened first if nobody is there yet."""
    bus = await connect(address)
    try:
        (listed,) = await protocol(bus, "ZB", "Devices")
        if not listed:
            await protocol(bus, "ZB", "PermitJoin", "u", 60)

        async def enough():
            (listed,) = await protocol(bus, "ZB", "Devices")
            return len(listed) >= devices

        await eventually(enough, timeout=120)
        await protocol(bus, "ZB", "PermitJoin", "u", 0)
        (_, name, _) = (await protocol(bus, "ZB", "TakeBackup"))[0]
        (text,) = await protocol(bus, "ZB", "ExportBackup", "s", name)
        return json.loads(text)
    finally:
        bus.disconnect()


def test_a_zigbee_update_that_rolls_back_puts_the_network_back(
    docker_client, stack_images, own_registry, tmp_path: Path
):
    # Not the session's registry: a zigbee release there would show in other tests.
    registry = own_registry
    state = stack_up(tmp_path / "state", PROJECT, "--option", "zigbee:faults=0", registry=registry)
    broken = None
    try:
        address = (state / "bus.address").read_text().strip()
        before = asyncio.run(network_of(address, 5))
        v1 = docker_client.images.get("agile/zigbee:multistage").id
        registry.push(docker_client, v1, "zigbee", "multistage")
        broken, _ = docker_client.images.build(
            fileobj=io.BytesIO(f"FROM {v1}\n{WIPES_AND_FAILS}".encode()), rm=True
        )
        registry.push(docker_client, broken.id, "zigbee", "multistage")

        rolled = cli(
            "images", "update", "zigbee", "--registry", registry.address,
            "--state-dir", str(state), "--window", "40",
        )  # fmt: skip

        said = rolled.stdout + rolled.stderr
        assert rolled.returncode == 3, said
        assert "zigbee: the network is backed up before the update" in said
        assert "zigbee: the network from before the update is restored" in said
        # Every device back on the network it was on, none paired again by hand (joining
        # stays closed): they announce themselves and zigpy asks them who they are.
        after = asyncio.run(network_of(address, 5))
        for key in ("extended_pan_id", "pan_id", "channel"):
            assert after[key] == before[key]
        assert after["network_key"]["key"] == before["network_key"]["key"]
        assert (
            after["network_key"]["frame_counter"] >= before["network_key"]["frame_counter"] + 10_000
        )
    finally:
        stack_down(state, PROJECT)
        if broken is not None:  # its own id: no tag of the suite's names it
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(broken.id, force=True)
