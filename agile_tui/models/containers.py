"""The Containers section's data: the native services' processes and the engine's
containers, the list first, CPU and memory as their samples come, and the list kept up
by engine events between fetches. The fetching blocks (the Docker SDK does): the screen
runs it in threads and applies what comes on its own thread."""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from agile_tui.client.native import NativeRuntime
from agile_tui.client.stack import StackRow

if TYPE_CHECKING:  # the Docker SDK stays out of the TUI's start-up
    from agile_tui.client.engine import Engine

STATS_BATCH_S = 0.25  # stats coming in are shown together at most this often


class ContainersModel:
    def __init__(
        self,
        native: Callable[[], NativeRuntime | None],
        engine: "Callable[[], Engine | None]",
    ) -> None:
        self.native = native  # the session's runtime folder, where it is local
        self.engine = engine  # the app's, once it answers
        self.rows: dict[str, StackRow] = {}  # native ones first, then by project and name

    # -- blocking: in a thread --

    def fetch(self) -> list[StackRow]:
        """The native processes and every container, without stats; ClientError when
        the engine fails (the processes are shown all the same: fetch_native)."""
        engine = self.engine()
        return self.fetch_native() + (engine.containers() if engine else [])

    def fetch_native(self) -> list[StackRow]:
        native = self.native()
        return native.rows() if native else []

    def stats(self, rows: list[StackRow]) -> Iterator[list[StackRow]]:
        """The running containers of `rows` with their CPU and memory, in batches as the
        samples come (one repaint a batch)."""
        engine = self.engine()
        if engine is None:
            return
        batch: list[StackRow] = []
        shown = time.monotonic()
        for row in engine.stats([r for r in rows if r.kind == "container"]):
            batch.append(row)
            if time.monotonic() - shown >= STATS_BATCH_S:
                yield batch
                batch, shown = [], time.monotonic()
        if batch:
            yield batch

    def events(self, stop: threading.Event) -> Iterator[tuple[str, StackRow | None]]:
        """(container id, its row now; None: gone) for each container event, until
        `stop` is set."""
        engine = self.engine()
        if engine is None:
            return
        for action, cid in engine.container_events(stop):
            yield cid, None if action == "destroy" else engine.container(cid, with_stats=False)

    # -- on the screen's thread --

    def fetched(self, rows: list[StackRow]) -> None:
        ordered = sorted(rows, key=lambda r: (r.group != "native", r.group, r.name))
        self.rows = {r.key: r for r in ordered}

    def sampled(self, rows: list[StackRow]) -> None:
        for row in rows:
            old = self.rows.get(row.key)
            if old is not None:  # an event may have changed it meanwhile: keep that
                self.rows[row.key] = replace(old, cpu_pct=row.cpu_pct, mem_bytes=row.mem_bytes)

    def changed(self, cid: str, row: StackRow | None) -> None:
        if row is None:
            self.rows.pop(cid, None)
            return
        old = self.rows.get(cid)
        if old is not None:  # keep the last stats until the next sample
            mem = old.mem_bytes if row.state == "running" else None
            row = replace(row, cpu_pct=old.cpu_pct, mem_bytes=mem)
        self.rows[cid] = row
