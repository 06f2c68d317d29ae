"""One SSH connection to a gateway carries its bus and its Docker engine; its host key
is checked as ssh checks it."""

import asyncio
import subprocess

import docker
import pytest

from fleet.tunnel import Tunnel, TunnelError
from services import contract as c
from services.bus import call, connect


async def registered_devices(address: str) -> list:
    bus = await connect(address)
    try:
        (devices,) = await call(
            bus, c.DEVICE_MANAGER_NAME, c.DEVICE_MANAGER_PATH, c.DEVICE_MANAGER_IFACE, "Devices"
        )
        return devices
    finally:
        bus.disconnect()


def test_the_gateway_bus_and_engine_come_through_one_ssh_connection(
    gateway_factory, reach, docker_client, tmp_path
) -> None:
    gw = gateway_factory()
    tunnel = Tunnel(reach("one", gw.state_dir))
    try:
        tunnel.open()
        assert asyncio.run(registered_devices(tunnel.bus_address)) == []
        engine = docker.DockerClient(base_url=tunnel.engine_url, timeout=30)
        try:
            # The gateway's own engine, over `docker system dial-stdio` there.
            assert engine.info()["ID"] == docker_client.info()["ID"]
            assert engine.version()["ApiVersion"]
        finally:
            engine.close()
    finally:
        tunnel.close()
    assert not tunnel.folder.exists()
    assert not tunnel.alive()


def test_an_unknown_host_key_is_said_and_never_accepted(gateway_factory, reach, tmp_path):
    gw = gateway_factory()
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    tunnel = Tunnel(reach("one", gw.state_dir, known_hosts=empty))
    with pytest.raises(TunnelError, match="its host key is unknown; not connecting"):
        tunnel.open()
    assert empty.read_text() == ""  # nothing learnt behind the operator's back
    assert not tunnel.folder.exists()


def test_a_changed_host_key_is_said_and_refused(gateway_factory, reach, tmp_path):
    gw = gateway_factory()
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    entry = reach("one", gw.state_dir)
    assert entry.known_hosts is not None
    known = entry.known_hosts.read_text().split()
    impostor = (tmp_path / "other.pub").read_text().split()[:2]
    entry.known_hosts.write_text(" ".join([known[0], *impostor]) + "\n")
    with pytest.raises(TunnelError, match="its host key has CHANGED"):
        Tunnel(entry).open()


def test_a_gateway_without_a_bus_is_said(reach, tmp_path):
    with pytest.raises(TunnelError, match=r"no gateway bus there .*is agile-gateway up"):
        Tunnel(reach("one", tmp_path / "nothing")).open()
