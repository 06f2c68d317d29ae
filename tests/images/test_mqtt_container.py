"""The MQTT bridge in its container: the one service with a network reaches a broker on
the host, with the options `up --containers --option` gave it, kept for the containers
an update recreates."""

import fcntl
import socket
import struct
from pathlib import Path

import pytest

from services import contract as c
from services.bus import call, connect
from services.compose import environment, options_variable, stack_settings
from testkit.broker import Subscriber, running_broker
from tests.helpers import eventually
from tests.images.stack import stack_down, stack_up

pytestmark = pytest.mark.timeout(900)

PROJECT = "agiletest-mqtt"
SIOCGIFADDR = 0x8915  # an interface's IPv4 address (netdevice(7))


def _host_on_the_bridge_network(client) -> str:  # type: ignore[no-untyped-def]
    """The host's address as containers on Docker's bridge network see it: its bridge
    interface's (the network's IPAM names no gateway on Debian's engine)."""
    options = client.networks.get("bridge").attrs["Options"]
    interface = options.get("com.docker.network.bridge.name", "docker0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        asked = struct.pack("256s", interface.encode()[:15])
        return socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, asked)[20:24])


async def test_the_bridge_container_reaches_a_broker_on_the_host(
    docker_client, stack_images, tmp_path: Path
) -> None:
    host = _host_on_the_bridge_network(docker_client)
    with running_broker(tmp_path / "broker", host=host) as broker:
        status = Subscriber(broker, "agile/gw1/status")
        options = [f"mqtt:host={host}", f"mqtt:port={broker.port}", "mqtt:gateway-id=gw1"]
        state = stack_up(
            tmp_path / "state", PROJECT, *(a for o in options for a in ("--option", o))
        )
        try:

            async def online() -> bool:
                return ("agile/gw1/status", "online") in status.messages()

            await eventually(online, timeout=120)
            bus = await connect((state / "bus.address").read_text().strip())
            try:
                (said,) = await call(bus, c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, "Status")
            finally:
                bus.disconnect()
            assert said["connected"].value and said["broker"].value == f"{host}:{broker.port}"
            # What compose hands the container, from the options kept with the stack.
            settings = stack_settings(state)
            env = environment(state, settings["strategy"], settings.get("options", {}))
            assert env[options_variable("mqtt")] == " ".join(o.split(":", 1)[1] for o in options)
        finally:
            status.stop()
            stack_down(state, PROJECT)
