"""kill -9 of the MQTT bridge in a real gateway process tree, under a steady stream: with
the replay, every record reaches the broker, in order; what a kill repeats is counted."""

import json
import os
import signal
from pathlib import Path

import pytest

from services.bus import connect
from testkit.broker import Subscriber, running_broker
from tests.helpers import THERMOMETER, device, dm, eventually

THERMO = THERMOMETER.device_id
COMPONENTS = ("temperature", "humidity")
KILLS = 3
RECORDS_BETWEEN_KILLS = 600  # 6 s of each stream at 100 records/s


@pytest.mark.timeout(400)
async def test_kill_9_of_the_bridge_loses_nothing(gateway_factory, tmp_path: Path) -> None:
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, "agile/gw1/+/+")
        options = [f"mqtt:{k}={v}" for k, v in broker.options().items()]
        gw = gateway_factory(
            "dummy:record-interval=0.01",  # two streams: 200 records/s
            "mqtt:gateway-id=gw1",
            "mqtt:refresh-interval=0.2",
            *options,
        )
        bus = await connect(gw.address)
        try:
            await dm(bus, "Register", "(ssss)s", THERMOMETER.to_wire(), "")

            async def numbered() -> int:
                (bounds,) = await device(bus, THERMO, "Sequence", "s", "temperature")
                return bounds[1]

            def bridge_pid() -> int | None:
                status = json.loads((gw.state_dir / "runtime.json").read_text())
                return status["services"]["mqtt"]["pid"]

            for _ in range(KILLS):
                target = await numbered() + RECORDS_BETWEEN_KILLS

                async def produced(target: int = target) -> bool:
                    return await numbered() >= target

                await eventually(produced)
                pid = bridge_pid()
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                await eventually(lambda old=pid: _restarted(bridge_pid(), old))

            # Every record the device manager numbered, as the broker must have it.
            wanted: dict[str, list[dict]] = {}
            for component in COMPONENTS:
                rows, after = [], 0
                while batch := (await device(bus, THERMO, "Replay", "st", component, after))[0]:
                    rows += batch
                    after = batch[-1][1]
                assert [seq for _, seq in rows] == list(range(1, len(rows) + 1))
                wanted[component] = [
                    {"value": float(w[2]), "unit": w[3], "ts": w[5]} for w, _ in rows
                ]
        finally:
            bus.disconnect()

        def span(component: str) -> int | None:
            return sub.span(f"agile/gw1/{THERMO}/{component}", wanted[component])

        await eventually(_probe(lambda: all(span(k) is not None for k in COMPONENTS)), 120, 1)
        sent = sum(len(v) for v in wanted.values())
        repeated = sum(span(k) or 0 for k in COMPONENTS) - sent
        sub.stop()
        assert sent > KILLS * RECORDS_BETWEEN_KILLS
        print(f"{sent} records over {KILLS} kills of the bridge: 0 lost, {repeated} repeated")


async def _restarted(pid: int | None, old: int) -> bool:
    return pid is not None and pid != old


def _probe(check):  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        return bool(check())

    return probe
