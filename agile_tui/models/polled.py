"""A model fetched now, every period, and at once when poked: one fetch at a time."""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

from agile_tui.client.errors import ClientError

View = TypeVar("View")


class Polled(Generic[View]):
    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._wake = asyncio.Event()
        self._running = False
        self._fetching = False

    async def fetch(self) -> View | None:
        """What there is to show now; None: nothing to ask (no bus yet)."""
        raise NotImplementedError

    @property
    def idle(self) -> bool:
        """Neither fetching nor about to (a poke waits for the next run)."""
        return not self._running or not (self._fetching or self._wake.is_set())

    def poke(self) -> None:
        """Fetch again now (an action changed something, an event said so)."""
        self._wake.set()

    async def run(
        self, fetched: Callable[[View], None], failed: Callable[[ClientError], None]
    ) -> None:
        """Until cancelled (its worker, with the screen): each fetch's view to `fetched`,
        each failure to `failed`; the next fetch a period after the last one ended, so
        fetches never overlap."""
        self._running = True
        try:
            while True:
                self._wake.clear()
                self._fetching = True
                try:
                    view = await self.fetch()
                except ClientError as exc:
                    failed(exc)
                else:
                    if view is not None:
                        fetched(view)
                finally:
                    self._fetching = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.period_s)
        finally:
            self._running = False
