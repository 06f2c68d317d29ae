"""The MQTT bridge against mosquitto_pub alone (the ceiling), side by side, in one run:

    ./dev bench mqtt [--records N]

A private bus and Debian's mosquitto on private addresses; the bridge runs as its own
process (`agile-gateway service mqtt`). This process stands in for the DeviceManager:
it owns org.eclipse.agail.Device, lists ten devices the bridge follows, and sends their
SequencedValues, each value the time it was sent, so what is measured is the bridge
alone, from the bus to the broker.
mosquitto_sub (QoS 1) stamps every arrival; mosquitto_pub -l publishes the same
payloads at QoS 1 for the ceiling.

1. throughput: N records sent as fast as the bus takes them, records/s until the last
   one arrived;
2. latency at 200 records/s for 10 s: arrival minus sending time, p50/p95/max.

Goals: >= 2,000 records/s, p95 <= 20 ms at 200 records/s.
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbus_fast import DBusError, Message
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, dbus_method

from services import contract as c
from services.bus import call, connect, request_names
from services.busconfig import start_bus_daemon
from services.paths import ROOT
from testkit.broker import running_broker

BASE = "agile/bench"
DEVICES = [f"bench{i}" for i in range(10)]
PACED = 2000  # records at 200/s: 10 s


class StandInManager(ServiceInterface):
    """What the bridge asks of the DeviceManager: the devices, and their status."""

    def __init__(self) -> None:
        super().__init__(c.DEVICE_MANAGER_IFACE)

    @dbus_method()
    def Devices(self) -> c.DefinitionListWire:
        return [
            c.DeviceDefinition(
                d, d, d, "", "bench", c.device_path(d), (c.DeviceComponent("temperature", "°C"),)
            ).to_wire()
            for d in DEVICES
        ]

    @dbus_method()
    def DevicesStatus(self) -> c.StatusByDevice:
        return {d: ["CONNECTED"] for d in DEVICES}


class StandInDevice(ServiceInterface):
    """What the bridge asks of a Device: its configuration, Follow, and the replay (none:
    the bench sends only while the bridge follows)."""

    def __init__(self, followed: set[str], device_id: str) -> None:
        super().__init__(c.DEVICE_IFACE)
        self.followed, self.device_id = followed, device_id

    @dbus_method()
    def Configuration(self) -> c.Str:
        return json.dumps({"deviceType": "bench", "subscribable": ["temperature"]})

    @dbus_method()
    def Follow(self, component: c.Str, consumer: c.Str) -> None:
        self.followed.add(self.device_id)

    @dbus_method()
    def Replay(self, component: c.Str, after: c.UInt64) -> c.SequencedListWire:
        return []


class Arrivals:
    """mosquitto_sub on the bench's topics, every arrival stamped with its time."""

    def __init__(self, args: list[str], topic: str, out: Path) -> None:
        self.out = out
        cmd = ["mosquitto_sub", *args, "-q", "1", "-t", topic, "-F", "%U %p"]
        self.proc = subprocess.Popen(cmd, stdout=out.open("wb"), stderr=subprocess.DEVNULL)

    def lines(self) -> list[tuple[float, str]]:
        rows = []
        for line in self.out.read_text().splitlines():
            stamp, _, payload = line.partition(" ")
            if payload:
                rows.append((float(stamp), payload))
        return rows

    def wait_for(self, n: int, timeout: float = 120) -> list[tuple[float, str]]:
        deadline = time.monotonic() + timeout
        while len(rows := self.lines()) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(rows)} of {n} records arrived")
            time.sleep(0.1)
        return rows

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def record(i: int) -> c.RecordObject:
    return c.RecordObject(DEVICES[i % 10], "temperature", f"{time.time():.6f}", "°C", "float", i)


def sequenced(i: int) -> Message:
    """Record i as a followed stream's SequencedValue: the devices take turns, so it is
    number i // 10 + 1 of its device's stream."""
    iface, path, member = c.SEQUENCED_VALUE_SIGNAL
    body = [[record(i).to_wire(), i // 10 + 1]]
    return Message.new_signal(path, iface, member, c.SEQUENCED_SIGNATURE, body)


def sent_at(payload: str) -> float:
    return float(json.loads(payload)["value"])


def latencies(rows: list[tuple[float, str]]) -> list[float]:
    return sorted((stamp - sent_at(p)) * 1000 for stamp, p in rows)


def summary(ms: list[float]) -> str:
    p95 = ms[int(len(ms) * 0.95)]
    return f"{statistics.median(ms):>8.1f}{p95:>8.1f}{ms[-1]:>8.1f}"


async def bridge_run(
    broker_args: list[str], options: dict[str, str], n: int, folder: Path
) -> tuple[float, list[float]]:
    proc, address = start_bus_daemon(folder / "bus")
    bus = await connect(address)
    followed: set[str] = set()
    bus.export(c.DEVICE_MANAGER_PATH, StandInManager())
    for d in DEVICES:
        bus.export(c.device_path(d), StandInDevice(followed, d))
    await request_names(bus, [c.DEVICE_NAME])  # the stand-in DeviceManager
    opts = [f"--option={k}={v}" for k, v in options.items()]
    cli = [sys.executable, "-m", "services.runtime.cli", "service", "mqtt", "--bus", address]
    log = (folder / "bridge.log").open("wb")
    bridge = subprocess.Popen(
        [*cli, "--state-dir", str(folder / "state"), *opts], cwd=ROOT, stderr=log
    )
    try:
        arrivals = Arrivals(broker_args, f"{BASE}/+/+", folder / "bridge.out")
        deadline = time.monotonic() + 120
        up = False
        while not (len(followed) == len(DEVICES) and (up := await connected(bus))):
            if bridge.poll() is not None or time.monotonic() > deadline:
                said = (folder / "bridge.log").read_text()
                raise SystemExit(
                    f"the bridge did not follow ({len(followed)} of {len(DEVICES)} devices) "
                    f"and connect (connected: {up}):\n{said}"
                )
            await asyncio.sleep(0.1)

        start = time.time()
        for i in range(n):
            sent = bus.send(sequenced(i))
            if i % 50 == 49:
                # dbus-fast takes a full socket buffer (EAGAIN) as the end of the
                # connection: written, and a breath, every 50 (at most 10,000/s offered).
                await sent
                await asyncio.sleep(0.005)
        offered = n / (time.time() - start)
        rows = await asyncio.to_thread(arrivals.wait_for, n)
        rate = n / (rows[n - 1][0] - start)
        print(f"(offered {offered:,.0f} records/s on the bus)")

        count = PACED
        for i in range(n, n + count):
            await bus.send(sequenced(i))
            await asyncio.sleep(1 / 200)
        rows = await asyncio.to_thread(arrivals.wait_for, n + count)
        arrivals.stop()
        return rate, latencies(rows[n : n + count])
    finally:
        bridge.terminate()
        bridge.wait(10)
        bus.disconnect()
        proc.terminate()


async def connected(bus: MessageBus) -> bool:
    try:
        (status,) = await call(bus, c.BRIDGE_NAME, c.BRIDGE_PATH, c.BRIDGE_IFACE, "Status")
    except DBusError:
        return False
    return bool(status["connected"].value)


def ceiling_run(broker_args: list[str], n: int, folder: Path) -> tuple[float, list[float]]:
    from services.bridge.topics import record_payload

    arrivals = Arrivals(broker_args, f"{BASE}/ceiling", folder / "ceiling.out")
    time.sleep(0.5)
    cmd = ["mosquitto_pub", *broker_args, "-q", "1", "-t", f"{BASE}/ceiling", "-l"]
    pub = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert pub.stdin
    start = time.time()
    pub.stdin.write(b"".join(record_payload(record(i)) + b"\n" for i in range(n)))
    pub.stdin.flush()
    rows = arrivals.wait_for(n)
    rate = n / (rows[n - 1][0] - start)
    count = PACED
    for i in range(count):
        pub.stdin.write(record_payload(record(i)) + b"\n")
        pub.stdin.flush()
        time.sleep(1 / 200)
    rows = arrivals.wait_for(n + count)
    pub.stdin.close()
    pub.wait(10)
    arrivals.stop()
    return rate, latencies(rows[n : n + count])


def main() -> None:
    global PACED
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="the suite's size: 500, then 1 s")
    chosen = parser.parse_args()
    n = 500 if chosen.quick else chosen.records
    if chosen.quick:
        PACED = 200
    with tempfile.TemporaryDirectory(prefix="agile-bench-mqtt-") as tmp:
        folder = Path(tmp)
        with running_broker(folder / "broker") as broker:
            args = broker.client_args()
            options = broker.options() | {"gateway-id": "bench", "refresh-interval": "60"}
            ceiling = ceiling_run(args, n, folder)
            bridged = asyncio.run(bridge_run(args, options, n, folder))
    paced = f"then 200 records/s for {PACED / 200:g} s"
    print(f"\nMQTT: {n:,} records as fast as they come, {paced} (QoS 1)")
    print(f"{'':<28}{'rec/s':>10}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}")
    for name, (rate, ms) in (
        ("mosquitto_pub alone", ceiling),
        ("bus -> bridge -> broker", bridged),
    ):
        print(f"{name:<28}{rate:>10,.0f}{summary(ms)}")
    print(f"bridge / ceiling: {bridged[0] / ceiling[0]:.2f} of the rate")
    print("goals: >= 2,000 records/s; p95 <= 20 ms at 200 records/s")


if __name__ == "__main__":
    main()
