"""The Docker engine, through the Docker SDK: containers, their stats, logs, events and images.

Everything here blocks (the SDK is synchronous): the TUI calls it from thread workers.
"""

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import docker
from docker.errors import APIError, NotFound

from agile_tui.client.errors import EngineError
from agile_tui.client.stack import StackRow
from services.engine import connect, said
from services.images.layers import ImageLayers, analyse

COMPOSE_PROJECT = "com.docker.compose.project"
STATS_WORKERS = 8  # stats samples asked at once: each mostly waits on the engine
CONTAINER_EVENTS = {
    "create",
    "start",
    "restart",
    "stop",
    "die",
    "kill",
    "pause",
    "unpause",
    "destroy",
    "rename",
    "health_status",
}


@dataclass
class _CpuSample:
    container_total: int
    system_total: int


def _started_at(attrs: dict[str, Any]) -> float | None:
    state = attrs.get("State", {})
    if not state.get("Running"):
        return None
    stamp = state.get("StartedAt", "")
    try:
        from datetime import datetime

        return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None


class Engine:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self._cpu: dict[str, _CpuSample] = {}
        self._inspected: dict[str, dict[str, Any]] = {}
        self._histories: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, url: str | None = None, timeout: float = 5.0) -> "Engine":
        return cls(connect(url, timeout))

    def close(self) -> None:
        self.client.close()

    # -- containers --

    def _row(self, attrs: dict[str, Any], stats: dict[str, Any] | None) -> StackRow:
        state = attrs.get("State", {})
        labels = attrs.get("Config", {}).get("Labels") or {}
        row = StackRow(
            key=attrs["Id"],
            name=attrs.get("Name", "").lstrip("/"),
            group=labels.get(COMPOSE_PROJECT, ""),
            state=state.get("Status", "?"),
            health=(state.get("Health") or {}).get("Status", ""),
            started_at=_started_at(attrs),
            cpu_pct=None,
            mem_bytes=None,
            image=attrs.get("Config", {}).get("Image", ""),
            restarts=int(attrs.get("RestartCount", 0)),
        )
        return self._with_stats(row, stats) if stats else row

    def _with_stats(self, row: StackRow, stats: dict[str, Any]) -> StackRow:
        usage = stats.get("memory_stats", {}).get("usage")
        # Without the memory cgroup (many Pi kernels) the engine reports no usage.
        return replace(
            row, cpu_pct=self._cpu_pct(row.key, stats), mem_bytes=int(usage) if usage else None
        )

    def _cpu_pct(self, cid: str, stats: dict[str, Any]) -> float | None:
        cpu = stats.get("cpu_stats", {})
        total = cpu.get("cpu_usage", {}).get("total_usage")
        system = cpu.get("system_cpu_usage")
        if total is None or system is None:
            return None
        ncpu = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
        with self._lock:
            prev = self._cpu.get(cid)
            self._cpu[cid] = _CpuSample(total, system)
        if prev is None or system <= prev.system_total:
            return None
        return 100.0 * ncpu * (total - prev.container_total) / (system - prev.system_total)

    def _sample(self, cid: str) -> dict[str, Any] | None:
        try:
            return self.client.api.stats(cid, stream=False, one_shot=True)
        except (APIError, NotFound):
            return None

    def container(self, cid: str, with_stats: bool = True) -> StackRow | None:
        with said("reading a container"):
            try:
                c = self.client.containers.get(cid)
            except NotFound:
                return None
            stats = self._sample(cid) if with_stats and c.status == "running" else None
        return self._row(c.attrs, stats)

    def containers(self) -> list[StackRow]:
        """Every container, without stats: one list call, what a table shows first."""
        with said("listing containers"):
            listed = self.client.containers.list(all=True)
        return [self._row(c.attrs, None) for c in listed]

    def stats(self, rows: list[StackRow]) -> Iterator[StackRow]:
        """The running ones of `rows` again with CPU and memory, each as soon as its
        sample comes (the engine takes about a second or two per sample: they are taken
        side by side, a few at a time)."""
        running = {r.key: r for r in rows if r.state == "running"}
        with ThreadPoolExecutor(STATS_WORKERS, thread_name_prefix="stats") as pool:
            samples = {pool.submit(self._sample, cid): cid for cid in running}
            for done in as_completed(samples):
                with said("reading stats"):
                    stats = done.result()
                if stats:
                    yield self._with_stats(running[samples[done]], stats)

    def _act(self, cid: str, verb: str, fn: Callable[[Any], None]) -> None:
        with said(verb):
            try:
                fn(self.client.containers.get(cid))
            except NotFound:
                raise EngineError(f"container {cid[:12]} no longer exists") from None

    def start(self, cid: str) -> None:
        self._act(cid, "start", lambda c: c.start())

    def stop(self, cid: str, timeout: int = 10) -> None:
        self._act(cid, "stop", lambda c: c.stop(timeout=timeout))

    def restart(self, cid: str, timeout: int = 10) -> None:
        self._act(cid, "restart", lambda c: c.restart(timeout=timeout))

    def remove(self, cid: str) -> None:
        self._act(cid, "remove", lambda c: c.remove(force=True))

    def inspect(self, cid: str) -> dict[str, Any]:
        with said("inspect"):
            try:
                return self.client.api.inspect_container(cid)
            except NotFound:
                raise EngineError(f"container {cid[:12]} no longer exists") from None

    def logs(self, cid: str, tail: int = 500, follow: bool = True) -> "LogStream":
        with said("logs"):
            stream = self.client.api.logs(cid, stream=True, follow=follow, tail=tail)
        return LogStream(stream)

    def container_events(self, stop: threading.Event) -> Iterator[tuple[str, str]]:
        """(action, container id) for each container event, until `stop` is set."""
        since = int(time.time())
        while not stop.is_set():
            until = int(time.time()) + 1
            with said("following events"):  # each event as it comes: yielded inside
                for event in self.client.events(
                    since=since, until=until, decode=True, filters={"type": "container"}
                ):
                    action = str(event.get("Action", "")).split(":")[0]
                    if action in CONTAINER_EVENTS:
                        yield action, event.get("id") or event.get("Actor", {}).get("ID", "")
            since = until

    # -- images --

    def images(self) -> list[ImageLayers]:
        """Tagged images first (by name), then untagged ones (build stages, replaced
        versions)."""
        with said("listing images"):
            return self._images()

    def _images(self) -> list[ImageLayers]:
        # One listing call, then what never changes for an image id (its id is the
        # digest of its config) asked once per image, not at every reload: hundreds of
        # inspect and history calls on a build host.
        listed = self.client.api.images()
        with self._lock:
            current = {i["Id"] for i in listed}
            self._inspected = {k: v for k, v in self._inspected.items() if k in current}
            self._histories = {k: v for k, v in self._histories.items() if k in current}

        def cached(cache: dict[str, Any], ask: Callable[[str], Any], image_id: str) -> Any:
            with self._lock:
                known = cache.get(image_id)
            if known is None:
                known = ask(image_id)
                with self._lock:
                    cache[image_id] = known
            return known

        attrs = [
            {
                **cached(self._inspected, self.client.api.inspect_image, summary["Id"]),
                "RepoTags": summary.get("RepoTags"),  # tags move; the listing has them now
            }
            for summary in listed
        ]
        history = partial(cached, self._histories, self.client.api.history)
        images = analyse(attrs, history)
        return sorted(images, key=lambda i: (not i.tags, i.name))

    def prune_untagged(self, label: str | None = None) -> tuple[int, int]:
        """Remove images no tag and no container uses (only those with `label`, if
        given): (images removed, bytes freed). Build stages are among them: the next
        build makes them again."""
        filters: dict[str, object] = {"dangling": True}
        if label:
            filters["label"] = label
        with said("prune"):
            result = self.client.images.prune(filters=filters)
        removed = {d["Deleted"] for d in result.get("ImagesDeleted") or [] if "Deleted" in d}
        return len(removed), int(result.get("SpaceReclaimed") or 0)


class LogStream:
    """Lines of a container's log as they come; `close()` ends it from another thread."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._closed = False

    def __iter__(self) -> Iterator[str]:
        pending = b""
        with said("following the log"):
            try:
                for chunk in self._stream:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line.decode("utf-8", "replace")
            except Exception:
                # Closed under its reader, the HTTP stack fails in ways of its own: the
                # end asked for. Otherwise a failure, said.
                if not self._closed:
                    raise
                return
        if pending:
            yield pending.decode("utf-8", "replace")

    def close(self) -> None:
        self._closed = True
        self._stream.close()
