"""Short ways for tests to call the gateway's objects and to wait for things."""

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from dbus_fast.aio import MessageBus

from services import contract as c
from services.bus import call, connect, name_has_owner


async def pm(bus: MessageBus, member: str, signature: str = "", *body: Any) -> list[Any]:
    return await call(
        bus,
        c.PROTOCOL_MANAGER_NAME,
        c.PROTOCOL_MANAGER_PATH,
        c.PROTOCOL_MANAGER_IFACE,
        member,
        signature,
        body,
    )


async def dm(bus: MessageBus, member: str, signature: str = "", *body: Any) -> list[Any]:
    return await call(
        bus,
        c.DEVICE_MANAGER_NAME,
        c.DEVICE_MANAGER_PATH,
        c.DEVICE_MANAGER_IFACE,
        member,
        signature,
        body,
    )


async def device(
    bus: MessageBus, dev_id: str, member: str, signature: str = "", *body: Any
) -> list[Any]:
    return await call(
        bus, c.DEVICE_NAME, c.device_path(dev_id), c.DEVICE_IFACE, member, signature, body
    )


async def protocol(
    bus: MessageBus, short: str, member: str, signature: str = "", *body: Any
) -> list[Any]:
    return await call(
        bus,
        c.protocol_bus_name(short),
        c.protocol_path(short),
        c.PROTOCOL_IFACE,
        member,
        signature,
        body,
    )


async def storage(bus: MessageBus, member: str, signature: str = "", *body: Any) -> list[Any]:
    return await call(bus, c.STORAGE_NAME, c.STORAGE_PATH, c.STORAGE_IFACE, member, signature, body)


async def bluez_on(address: str) -> bool:
    """Whether a (virtual) BlueZ owns org.bluez on the bus at `address`."""
    bus = await connect(address)
    try:
        return await name_has_owner(bus, "org.bluez")
    finally:
        bus.disconnect()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 60.0, interval: float = 0.05
) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except Exception as exc:  # the service may be restarting
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last: {last!r}")


def healthy_by_the_engine(client: Any, containers: list[Any], timeout: float = 60.0) -> None:
    """Wait on the engine's own `health_status` events until it has found each container
    healthy (the update's gate runs the check at once; the engine first an interval after
    the start). Events since the earliest start are replayed: none is missed."""
    pending = set()
    for container in containers:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") != "healthy":
            pending.add(container.id)
    if not pending:
        return
    since = min(
        datetime.fromisoformat(c.attrs["State"]["StartedAt"]).timestamp()
        for c in containers
        if c.id in pending
    )
    events = client.events(
        decode=True,
        since=int(since),
        until=int(time.time() + timeout),  # the stream ends there
        filters={"type": "container", "event": "health_status"},
    )
    try:
        for event in events:
            if event.get("Action") == "health_status: healthy":
                pending.discard(event.get("id"))
            if not pending:
                return
    finally:
        events.close()
    raise AssertionError(f"not healthy by the engine within {timeout:g} s: {sorted(pending)}")


THERMOMETER = c.DeviceOverview(
    "D0:00:00:00:00:01", c.protocol_bus_name("Dummy"), "Dummy Thermometer 1"
)
SWITCH = c.DeviceOverview("D0:00:00:00:00:03", c.protocol_bus_name("Dummy"), "Dummy Switch 1")


ROOT = Path(__file__).resolve().parents[1]


def agile_gateway(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`agile-gateway ARGS` as a child process, from the project's folder."""
    return subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def fill_up(disk: Path) -> Path:
    """Writes a file until the disk is full; the file, to be removed to free the space."""
    ballast = disk / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return ballast
