"""agile-tui vs a bare Textual app (Header, DataTable, Footer), both in a real pty, one run.

    ./dev bench tui [--quick]

- first paint (s) and peak RSS (MB) at start-up, against an already running gateway so
  that the services' own start is excluded;
- keypress-to-repaint latency (p50, p95) moving the cursor through a table of 1,000
  devices: the Devices section with 1,000 discovered Dummy devices vs the bare app
  with 1,000 rows;
- CPU while idle on the Data section with a 1 Hz live chart, vs the bare app idle;
- the Containers section with 9 and with 200 containers on the engine: seconds from the
  engine answering (its dot in the bar) to the rows on screen, against the way before
  (every container's stats sampled one after the other, then the rows), and how long
  the stats take to fill in now.

Each goal is printed as met or missed. `--quick` (the suite's, so that it keeps running):
50 devices, 5 presses, 2 s idle, 2 containers, one paint each.
"""

import asyncio
import os
import pty
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from fcntl import ioctl
from pathlib import Path

from agile_tui.client.engine import Engine
from agile_tui.client.gateway import GatewayClient
from services import contract as c
from services.runtime.launch import up_command, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07]*\x07|[@-_])")
DOWN = b"\x1b[B"
DEVICES = 1000
PRESSES = 100
IDLE_SECONDS = 20.0
CONTAINER_COUNTS: tuple[int, ...] = (9, 200)
BENCH_PROJECT = "agilebench-containers"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAINTS = 5


class PtyApp:
    """A program in a pseudo-terminal of 80x24, with its output timed as it arrives."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execvpe(argv[0], argv, env)
        ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.output = bytearray()
        self.text = b""
        self.last_output = self.started
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self.changed:
                self.output += chunk
                self.last_output = time.perf_counter()
                self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """Seconds from start until `text` was on screen."""
        deadline = time.perf_counter() + timeout
        needle = text.encode()
        with self.changed:
            while needle not in ANSI.sub(b"", bytes(self.output)):
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"{text!r} did not appear")
                self.changed.wait(left)
            return self.last_output - self.started

    def quiet(self, seconds: float = 0.3) -> None:
        while time.perf_counter() - self.last_output < seconds:
            time.sleep(0.05)

    def keypress_latency(self, key: bytes) -> float:
        with self.changed:
            before = len(self.output)
            sent = time.perf_counter()
            os.write(self.fd, key)
            while len(self.output) == before:
                if not self.changed.wait(5):
                    screen = ANSI.sub(b"", bytes(self.output[-4000:])).decode(errors="replace")
                    raise TimeoutError(f"no repaint after a key; the last output:\n{screen}")
            return self.last_output - sent

    def rss_peak_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def close(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def env_for(tmp: Path) -> dict[str, str]:
    config = tmp / "tui.toml"
    config.write_text("refresh_seconds = 60\n")  # no background repaint during measurements
    return {
        **os.environ,
        "TERM": "xterm-256color",
        "AGILE_TUI_CONFIG": str(config),
        "COLUMNS": "80",
        "LINES": "24",
    }


def latency(app: PtyApp) -> tuple[float, float]:
    app.quiet()
    samples = []
    for _ in range(PRESSES):
        samples.append(app.keypress_latency(DOWN))
        app.quiet(0.05)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def idle_cpu_percent(app: PtyApp) -> float:
    began, cpu = time.perf_counter(), app.cpu_seconds()
    time.sleep(IDLE_SECONDS)
    return 100 * (app.cpu_seconds() - cpu) / (time.perf_counter() - began)


async def prepare_gateway(address: str) -> None:
    """Discovery on (1,000 Dummy devices listed) and one thermometer registered for the chart."""
    client = GatewayClient(address)
    await client.connect()
    try:
        await client.start_discovery()
        dummy = c.protocol_bus_name("Dummy")
        while sum(1 for d in await client.discovered() if d.protocol == dummy) < DEVICES:
            await asyncio.sleep(0.2)
        await client.register(
            c.DeviceOverview("D0:00:00:00:00:01", dummy, "Dummy Thermometer 1"), ""
        )
    finally:
        client.close()


def containers_on_screen(
    env: dict[str, str], tmp: Path, count: int
) -> tuple[float, float, float | None]:
    """(rows on screen after the engine answered, s; all stats sampled now, s; the same
    one after the other as before, s — measured for small counts only)."""
    from services.engine import connect
    from testkit.docker_images import make_tiny_image

    client = connect(timeout=120)
    image = make_tiny_image(client)
    made = [
        client.containers.run(
            image,
            name=f"{BENCH_PROJECT}-{i}",
            detach=True,
            labels={"com.docker.compose.project": BENCH_PROJECT},
        )
        for i in range(count)
    ]
    try:
        total = len(client.containers.list(all=True))
        app = PtyApp(
            [
                str(ROOT / ".venv/bin/agile-tui"),
                "--bus",
                "unix:path=/nonexistent",
                "--state-dir",
                str(tmp / "no-gateway"),  # the engine's containers alone
                "--section",
                "containers",
            ],
            env,
        )
        try:
            engine_at = app.wait_for("engine ●")
            rows_at = app.wait_for(f"{total} units")
        finally:
            app.close()
        engine = Engine.connect()
        rows = engine.containers()
        began = time.perf_counter()
        for _ in engine.stats(rows):
            pass
        side_by_side = time.perf_counter() - began
        one_by_one = None
        if count <= 20:
            began = time.perf_counter()
            for row in rows:
                if row.state == "running":
                    engine._sample(row.key)
            one_by_one = time.perf_counter() - began
        return rows_at - engine_at, side_by_side, one_by_one
    finally:
        for container in made:
            container.remove(force=True)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    global DEVICES, PRESSES, IDLE_SECONDS, CONTAINER_COUNTS, PAINTS
    if "--quick" in sys.argv[1:]:  # the suite's size (tests/test_benchmarks.py)
        DEVICES, PRESSES, IDLE_SECONDS, CONTAINER_COUNTS, PAINTS = 50, 5, 2.0, (2,), 1
    tmp = Path(tempfile.mkdtemp(prefix="agile-bench-tui-"))
    state = tmp / "gw"
    options = [f"dummy:thermometers={DEVICES - 1}", "dummy:announce-interval=5"]
    gateway = subprocess.Popen(
        up_command(state, options),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        if not wait_until_up(gateway)[0]:
            raise SystemExit("the gateway did not start")
        asyncio.run(prepare_gateway((state / "bus.address").read_text().strip()))
        env = env_for(tmp)
        agile = [
            str(ROOT / ".venv/bin/agile-tui"),
            "--state-dir",
            str(state),
            "--docker",
            "unix:///nonexistent/docker.sock",
        ]
        bare = [sys.executable, "-m", "benchmarks.bare_app", str(DEVICES)]

        print("agile-tui vs a bare Textual app (Header, DataTable, Footer), 80x24 pty")
        paints: dict[str, list[float]] = {"agile": [], "bare": []}
        for _ in range(PAINTS):  # alternate, and take medians: a 2-core machine is noisy
            for name, argv, marker in (("agile", agile, "Discovered"), ("bare", bare, "Protocol")):
                app = PtyApp(argv, env)
                paints[name].append(app.wait_for(marker))
                app.close()
        a_paint = statistics.median(paints["agile"])
        b_paint = statistics.median(paints["bare"])
        a = PtyApp(agile, env)
        a.wait_for("discovery running")  # the 1,000 rows are in
        a_lat = latency(a)
        a_rss = a.rss_peak_mb()
        a.close()
        b = PtyApp(bare, env)
        b.wait_for("Protocol")
        b_lat = latency(b)
        b_rss = b.rss_peak_mb()
        b_idle = idle_cpu_percent(b)
        b.close()
        d = PtyApp([*agile, "--section", "data"], env)
        d.wait_for("temperature · Dummy")
        d.quiet()
        os.write(d.fd, b" ")  # chart it: one record a second
        time.sleep(3)
        d_idle = idle_cpu_percent(d)
        d.close()
        containers = {n: containers_on_screen(env, tmp, n) for n in CONTAINER_COUNTS}
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(20)

    print(f"\n{'':<40}{'agile-tui':>12}{'bare app':>12}{'ratio':>8}")
    print(
        f"{f'first paint, median of {PAINTS} (s)':<40}{a_paint:>12.3f}{b_paint:>12.3f}"
        f"{a_paint / b_paint:>8.2f}"
    )
    print(f"{'peak RSS (MB)':<40}{a_rss:>12.1f}{b_rss:>12.1f}{a_rss / b_rss:>8.2f}")
    print(
        f"{f'keypress→repaint p50, {DEVICES:,} rows (ms)':<40}{a_lat[0] * 1000:>12.1f}"
        f"{b_lat[0] * 1000:>12.1f}{a_lat[0] / b_lat[0]:>8.2f}"
    )
    print(
        f"{f'keypress→repaint p95, {DEVICES:,} rows (ms)':<40}{a_lat[1] * 1000:>12.1f}"
        f"{b_lat[1] * 1000:>12.1f}{a_lat[1] / b_lat[1]:>8.2f}"
    )
    print(f"{'CPU idle, Data with a 1 Hz chart (%)':<40}{d_idle:>12.2f}{b_idle:>12.2f}")

    print(f"\nContainers section{'rows now':>30}{'stats now':>12}{'stats before':>14}{'ratio':>8}")
    for n, (rows_s, stats_s, before_s) in containers.items():
        # Before, the rows came only after every sample: rows_s + before_s at best.
        before = f"{before_s:>14.2f}" if before_s is not None else f"{'(not run)':>14}"
        ratio = f"{(rows_s + before_s) / rows_s:>8.1f}" if before_s is not None else ""
        print(f"{f'{n} containers (s)':<30}{rows_s:>18.2f}{stats_s:>12.2f}{before}{ratio}")

    print("\ngoals")
    print(f"  first paint <= 1.2x bare app: {verdict(a_paint <= 1.2 * b_paint)}")
    print(f"  peak RSS <= 80 MB: {verdict(a_rss <= 80)}")
    print(f"  keypress p95 <= 50 ms: {verdict(a_lat[1] <= 0.050)}")
    print(f"  idle CPU on Data with a 1 Hz chart <= 1 %: {verdict(d_idle <= 1.0)}")
    for n, (rows_s, _, _) in containers.items():
        print(f"  Containers rows <= 1 s after the engine answers, {n}: {verdict(rows_s <= 1.0)}")


if __name__ == "__main__":
    main()
