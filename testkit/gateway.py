"""A gateway for a test or a benchmark: `agile-gateway up --native --simulate` as a real
process tree, or BusServices run in the caller's event loop, each on its own connection."""

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from services.paths import ROOT
from services.runtime.launch import up_command, wait_until_up
from services.service import BusService, ServiceConfig


class Gateway:
    """`agile-gateway up --native --simulate` as a real process tree."""

    def __init__(self, state_dir: Path, options: list[str], extra: Sequence[str] = ()) -> None:
        self.state_dir = state_dir
        self.proc = subprocess.Popen(
            up_command(state_dir, options, extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        up, said = wait_until_up(self.proc)
        if not up:
            self.stop()
            raise RuntimeError("gateway did not come up:\n" + said)
        self.address = (state_dir / "bus.address").read_text().strip()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


class InProcess:
    """Runs BusServices in the test's event loop, each on its own connection."""

    def __init__(self, address: str, state_dir: Path) -> None:
        self.address = address
        self.state_dir = state_dir
        self.running: list[tuple[BusService, asyncio.Event, asyncio.Task[int]]] = []

    def config(self, **options: str) -> ServiceConfig:
        return ServiceConfig(self.address, self.state_dir, simulate=True, options=options)

    async def start(self, service: BusService) -> BusService:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        self.running.append((service, stop, task))
        deadline = time.monotonic() + 5
        while not (hasattr(service, "bus") and service.bus.connected and await _owns_all(service)):
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service.bus_names} did not come up")
            await asyncio.sleep(0.02)
        return service

    async def stop(self, service: BusService) -> None:
        for entry in list(self.running):
            if entry[0] is service:
                entry[1].set()
                await entry[2]
                self.running.remove(entry)

    async def stop_all(self) -> None:
        for service, _, _ in list(self.running):
            await self.stop(service)


async def _owns_all(service: BusService) -> bool:
    from services.bus import list_names

    names = set(await list_names(service.bus))
    return all(n in names for n in service.bus_names)
