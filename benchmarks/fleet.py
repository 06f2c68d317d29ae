"""The fleet at scale: N simulated gateways — each a dbus-daemon with the device manager
on it, no Docker engine — reached over one sshd as agile-tui's Fleet section reaches
gateways (an SSH connection each, the bus forwarded through it).

    ./dev bench fleet [--sizes 1,10,25,50] [--rounds 5]

Per fleet size: the time to the first whole table (every SSH connection made), one
refresh of the whole table (every gateway asked once, all at once) against the same
refresh with the gateways asked one after another (the baseline: a tool without a loop
per gateway), the CPU a refresh costs and the operator's process's RSS, and the ssh
clients' RSS beside it. Then agile-tui itself, headless with the Fleet section open on
the largest fleet: its RSS and CPU over ten refresh periods. Goal: 50 gateways refresh
in ≤ 2 s, agile-tui's RSS ≤ 150 MB.
"""

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fleet.status import Fleet
from testkit.operator import private_sshd, reacher

# 50 connections at once: sshd's default (10:30:100) drops unauthenticated ones past 10.
SSHD_SETTINGS = "MaxStartups 200\nMaxSessions 200\n"
NO_ENGINE = "unix:///nonexistent/engine.sock"  # simulated gateways: a bus, no Docker engine


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve(folder: Path, count: int) -> None:
    """The simulated gateways: their buses, and the device manager on each (one process)."""
    from services.bus import name_has_owner
    from services.busconfig import start_bus_daemon
    from services.contract import DEVICE_MANAGER_NAME as DM
    from services.devicemanager.service import create
    from services.service import ServiceConfig

    daemons, tasks, services, stop = [], [], [], asyncio.Event()
    for i in range(count):
        state = folder / f"gw{i}"
        proc, address = start_bus_daemon(state / "bus", with_parent=True)
        daemons.append(proc)
        (state / "bus.address").write_text(address + "\n")
        service = create(ServiceConfig(address, state, simulate=True))
        services.append(service)
        tasks.append(asyncio.create_task(service.run(stop)))
    deadline = time.monotonic() + 120
    for service in services:  # each owns its names before the benchmark asks
        while not (hasattr(service, "bus") and await name_has_owner(service.bus, DM)):
            if time.monotonic() > deadline:
                raise SystemExit("the simulated gateways did not come up in 120 s")
            await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes it
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for proc in daemons:
        proc.terminate()


def ssh_rss_mb(the_fleet: Fleet) -> float:
    total = 0.0
    for member in the_fleet.members.values():
        if member.tunnel is not None and member.tunnel.master is not None:
            with contextlib.suppress(OSError):
                total += rss_mb(member.tunnel.master.pid)
    return total


async def measure(gateways: list, rounds: int) -> dict[str, float]:
    the_fleet = Fleet(gateways, timeout_s=60)
    try:
        started = time.perf_counter()
        first = await the_fleet.poll_all()
        first_s = time.perf_counter() - started
        down = [s.name for s in first if not s.reachable]
        if down:
            raise SystemExit(f"not reached: {down[:3]} ({first[0].problem})")
        together, one_by_one = [], []
        cpu = cpu_s()
        for _ in range(rounds):
            started = time.perf_counter()
            await the_fleet.poll_all()
            together.append(time.perf_counter() - started)
        cpu_per_refresh = (cpu_s() - cpu) / rounds
        for _ in range(rounds):
            started = time.perf_counter()
            for member in the_fleet.members.values():
                await member.poll()
            one_by_one.append(time.perf_counter() - started)
        return {
            "first_s": first_s,
            "refresh_s": statistics.median(together),
            "sequential_s": statistics.median(one_by_one),
            "cpu_ms": 1000 * cpu_per_refresh,
            "rss_mb": rss_mb(),
            "ssh_rss_mb": ssh_rss_mb(the_fleet),
        }
    finally:
        await the_fleet.stop()


async def tui(gateways: list, periods: int) -> dict[str, float]:
    """agile-tui, headless, the Fleet section open on these gateways."""
    from agile_tui.app import AgileApp
    from agile_tui.client.session import Session
    from fleet.config import Config

    app = AgileApp(Session(None, "no local gateway"), Config(), "fleet", gateways)
    async with app.run_test(size=(120, 60)) as pilot:
        started = time.perf_counter()
        while not all(s.last_seen for s in app.screen.statuses.values()):  # type: ignore[attr-defined]  # the Fleet screen's
            await pilot.pause(0.05)
            if time.perf_counter() - started > 120:
                raise SystemExit("agile-tui: not every gateway answered in 120 s")
        first_s = time.perf_counter() - started
        cpu = cpu_s()
        await pilot.pause(periods * Config().refresh_seconds)
        return {
            "first_s": first_s,
            "cpu_pct": 100 * (cpu_s() - cpu) / (periods * Config().refresh_seconds),
            "rss_mb": rss_mb(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev bench fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,25,50")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", nargs=2, metavar=("FOLDER", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(Path(args.serve[0]), int(args.serve[1])))
        return 0
    sizes = [int(n) for n in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="agile-fleet-bench-") as tmp:
        folder = Path(tmp)
        served = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fleet", "--serve", str(folder), str(max(sizes))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert served.stdout is not None and served.stdout.readline().strip() == "ready"
            with private_sshd(folder, SSHD_SETTINGS) as sshd:
                reach = reacher(sshd, folder)
                gateways = [
                    reach(f"gw{i}", folder / f"gw{i}", engine=NO_ENGINE) for i in range(max(sizes))
                ]
                rows = {n: asyncio.run(measure(gateways[:n], args.rounds)) for n in sizes}
                # agile-tui in a process of its own: its RSS is the section's, not the above.
                probe = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.fleet",
                        "--tui",
                        str(sshd[0]),
                        str(sshd[1]),
                        str(folder),
                    ],
                    capture_output=True,
                    text=True,
                )
                if probe.returncode != 0:
                    raise SystemExit(f"agile-tui probe failed:\n{probe.stderr[-2000:]}")
                app = json.loads(probe.stdout.strip().splitlines()[-1])
        finally:
            assert served.stdin is not None
            served.stdin.close()
            served.wait(30)
    print(
        "gateways  first table  refresh (all at once)  one after another  ratio  CPU/refresh  "
        "RSS     ssh clients' RSS"
    )
    for n, r in rows.items():
        ratio = r["sequential_s"] / r["refresh_s"]
        print(
            f"{n:8d}  {r['first_s']:9.2f} s  {r['refresh_s']:19.3f} s  "
            f"{r['sequential_s']:15.3f} s  {ratio:5.1f}x  {r['cpu_ms']:8.0f} ms  "
            f"{r['rss_mb']:5.0f} MB  {r['ssh_rss_mb']:6.0f} MB"
        )
    largest = max(sizes)
    print(
        f"agile-tui, Fleet section on {largest} gateways: first table in {app['first_s']:.2f} s, "
        f"{app['cpu_pct']:.1f} % CPU refreshing every {2.0:g} s, RSS {app['rss_mb']:.0f} MB "
        f"(goals: refresh ≤ 2 s: {rows[largest]['refresh_s']:.2f} s; RSS ≤ 150 MB)"
    )
    return 0


def tui_probe(port: str, key: str, folder: str) -> int:
    base = Path(folder)
    reach = reacher((int(port), Path(key)), Path(tempfile.mkdtemp(prefix="agile-fleet-tui-")))
    count = len(list(base.glob("gw*")))
    gateways = [reach(f"gw{i}", base / f"gw{i}", engine=NO_ENGINE) for i in range(count)]
    print(json.dumps(asyncio.run(tui(gateways, periods=10))))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--tui":
        raise SystemExit(tui_probe(*sys.argv[2:5]))
    raise SystemExit(main())
