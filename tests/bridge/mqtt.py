"""The bridge tests' helpers: a bridge started on the test's services, what arrived at
the broker, and publishing to it (mosquitto_pub, an independent client)."""

import json
import subprocess

from services.bridge.service import BridgeService
from testkit.broker import Broker, Subscriber
from tests.helpers import eventually


async def start_bridge(services, broker: Broker, **options: str) -> BridgeService:
    opts = {"gateway-id": "gw1", "refresh-interval": "0.2", "reconnect-max": "1"}
    service = BridgeService(services.config(**opts | broker.options() | options))
    return await services.start(service)


def arrived(sub: Subscriber, topic: str) -> list[dict]:
    return [json.loads(p) if p else {} for t, p in sub.messages() if t == topic]


async def until(check, timeout: float = 60, interval: float = 0.05):  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        return check()

    return await eventually(probe, timeout, interval)


def publish(broker: Broker, topic: str, payload: bytes) -> None:
    subprocess.run(
        ["mosquitto_pub", *broker.client_args(), "-q", "1", "-t", topic, "-s" if payload else "-n"],
        input=payload,
        check=True,
        timeout=10,
    )
