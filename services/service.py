"""The life cycle every gateway service process shares: join the bus, export, own, serve, stop."""

import asyncio
import logging
import signal
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from typing import Any

from services.access import guard
from services.bus import Exports, GatewayBus, connect, request_names
from services.serviceconfig import ServiceConfig

log = logging.getLogger(__name__)

# Below the supervisor's 5 s before it kills a stopping service: a service whose
# supervisor was killed has nobody to kill it, so it bounds its own stop.
STOP_GRACE_S = 4.0


class BusService(ABC):
    """One gateway service. Subclasses export their objects in `start`.

    Names are requested only after `start` has exported everything, so a
    client that sees the name appear can call the service at once.
    """

    bus_names: tuple[str, ...] = ()

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.bus: GatewayBus
        self.exports: Exports

    @abstractmethod
    async def start(self) -> None: ...

    @property
    def name(self) -> str:
        if self.config.name:
            return self.config.name
        return self.bus_names[0].rsplit(".", 1)[-1].lower() if self.bus_names else "service"

    async def ready(self) -> None:  # noqa: B027 - optional hook
        """Called once the service owns its names."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        pass

    async def run(self, stop_event: asyncio.Event | None = None) -> int:
        """Serve until SIGTERM/SIGINT (exit 0) or until the bus goes away (exit 1)."""
        stop_event = stop_event or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_event.set)
        self.bus = await connect(self.config.bus_address)
        self.exports = guard(self.bus, self.config.state_dir, self.name)
        await self.start()
        await request_names(self.bus, self.bus_names)
        log.info("%s ready on %s", ", ".join(self.bus_names), self.config.bus_address)
        await self.ready()
        stopped = asyncio.ensure_future(stop_event.wait())
        lost = asyncio.ensure_future(self.bus.wait_for_disconnect())
        await asyncio.wait({stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
        bus_lost = lost.done()
        stopped.cancel()
        lost.cancel()
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await self.stop()
        except TimeoutError:
            log.warning("%s took over %.0f s to stop; exiting anyway", self.name, STOP_GRACE_S)
        finally:
            if not bus_lost:
                self.bus.disconnect()
        if bus_lost:
            log.error("lost the gateway bus; exiting so that the runtime restarts this service")
            return 1
        return 0


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event` at most `seconds`; whether it was set. Not asyncio.wait_for: on
    Python 3.11 it swallows a cancellation that comes as the event is set (CPython
    gh-86296), and a service's loop cancelled at stop would then run on forever."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


_background: set[asyncio.Task[object]] = set()


def spawn(coro: Coroutine[Any, Any, object]) -> asyncio.Task[object]:
    """Run `coro` in the background, keeping a reference so it is not collected mid-flight."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task
