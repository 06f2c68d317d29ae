"""The base-image hierarchy, built once per test session on the real engine (cached
by recipe digest, so a machine that has it builds nothing)."""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from services.images.build import ROOT, build
from services.images.hierarchy import ensure_hierarchy


@pytest.fixture(scope="session")
def hierarchy(docker_client) -> list[str]:
    return ensure_hierarchy(docker_client)


@pytest.fixture(scope="session")
def stack_images(docker_client, hierarchy) -> None:
    """The multi-stage image of every service of the stack."""
    for service in ("bus", "core", "storage", "ble", "zigbee"):
        for _ in build(docker_client, service, say=lambda _line: None):
            pass


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """Debian's docker-registry on a free port: (host:port, its log file)."""
    folder = tmp_path_factory.mktemp("registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = folder / "registry.log"
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    yield address, log
    proc.terminate()
    proc.wait(10)


def push(docker_client, image_id: str, registry: str, service: str = "storage") -> None:
    docker_client.images.get(image_id).tag(f"{registry}/agile/{service}", "multistage")
    for event in docker_client.api.push(
        f"{registry}/agile/{service}", "multistage", stream=True, decode=True
    ):
        assert "error" not in event, event


def publish_code_change(docker_client, registry: str, service: str = "storage") -> str:
    """Build the service's multi-stage image after a one-line code change and push it;
    the gateway keeps the image it had (the new one is removed from the engine). The new
    image's id."""
    before = docker_client.images.get(f"agile/{service}:multistage").id
    probe = ROOT / "services" / "_update_probe.py"
    probe.write_text(f"VERSION = {time.time_ns()}\n")  # a new version every time
    try:
        for _ in build(docker_client, service, say=lambda _line: None):
            pass
    finally:
        probe.unlink()
    new = docker_client.images.get(f"agile/{service}:multistage").id
    push(docker_client, new, registry, service)
    docker_client.images.get(before).tag(f"agile/{service}", "multistage")
    docker_client.images.remove(new, force=True)
    return new
