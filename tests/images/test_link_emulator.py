"""The emulated uplink the paper benchmark pulls through (testkit/link_emulator.py): one
rate for the whole link, whatever the engine opens; and update times predicted from the
rate measured on it."""

import socket
import time

import pytest

from services.images.link_rate import DownloadClock, LinkRate
from services.images.update import plan, pull
from testkit.docker_images import make_random_image
from testkit.link_emulator import EmulatedLink

RATE = 50e6  # bit/s: the paper's line


def test_a_pull_through_the_link_gets_the_set_rate_across_its_parallel_layer_downloads(
    docker_client, registry, tiny_image
):
    """A 24 MB image of three layers: dockerd downloads them at once, over as many
    connections, and together they get the link's rate (±5 %), not three times it as a
    per-connection limit would give."""
    reference = f"{registry.address}/agile-test/link:{time.time_ns()}"
    image = make_random_image(docker_client, tiny_image, reference, layers=3, size=8_000_000)
    docker_client.images.push(reference)
    docker_client.images.remove(image, force=True)
    link = EmulatedLink(registry.address, RATE)
    through = reference.replace(registry.address, link.address)
    try:
        docker_client.images.pull(through)
        traffic = link.reset()
    finally:
        link.close()
        docker_client.images.remove(through, force=True)
    assert traffic.bytes >= 24_000_000
    assert traffic.most_at_once >= 3, traffic
    assert sum(1 for n in traffic.per_connection.values() if n > 4_000_000) >= 3, traffic
    assert traffic.rate() * 8 == pytest.approx(RATE, rel=0.05)


def test_the_link_adds_its_round_trip_to_each_exchange():
    """An echo through a link of 200 ms: a reply never comes sooner (the lower bound is
    the link's own delay, not a machine's speed)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        link = EmulatedLink(f"127.0.0.1:{server.getsockname()[1]}", RATE, rtt_s=0.2)
        try:
            host, port = link.address.split(":")
            with socket.create_connection((host, int(port))) as client:
                peer, _ = server.accept()
                with peer:
                    sent = time.monotonic()
                    client.sendall(b"ping")
                    peer.sendall(peer.recv(4))
                    assert client.recv(4) == b"ping"
                    assert time.monotonic() - sent >= 0.2
        finally:
            link.close()


def test_the_rate_measured_on_one_update_predicts_the_next_within_ten_percent(
    docker_client, registry, tiny_image, tmp_path
):
    """Two services' images of 8 MB each behind a 10 Mbit/s link: the first pull's
    download time gives the link rate (as the update service records it); the plan of
    the second predicts its download time from that rate, within ±10 % of what it takes."""
    link = EmulatedLink(registry.address, 10e6)
    rate = LinkRate(tmp_path / "link-rate.json")
    names = [f"linktest{n}-{time.time_ns()}" for n in (1, 2)]
    try:
        for name in names:
            image = make_random_image(
                docker_client, tiny_image, f"agile/{name}:multistage", layers=1, size=8_000_000
            )
            registry.push(docker_client, image, name, "multistage")
            docker_client.images.remove(image, force=True)
        seconds = []
        for name in names:
            the_plan = plan(
                docker_client,
                link.address,
                name,
                "multistage",
                trust=registry.policy(tmp_path / "trust"),
            )
            predicted = rate.link().seconds(the_plan.download_bytes)
            clock = DownloadClock()
            pull(docker_client, the_plan, clock.progress)
            rate.record(the_plan.download_bytes, clock.seconds)
            seconds.append((predicted, clock.seconds))
    finally:
        link.close()
        for name in names:
            for image in docker_client.images.list(f"{link.address}/agile/{name}"):
                docker_client.images.remove(image.id, force=True)
    assert seconds[0][0] == 0.0  # nothing measured before the first
    predicted, took = seconds[1]
    assert predicted == pytest.approx(took, rel=0.10)
