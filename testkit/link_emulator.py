"""A gateway's uplink, emulated between the Docker engine and a registry: a TCP proxy
with one rate for the whole link in each direction, shared by every connection through
it, and a round-trip latency.

One rate for the link, not per connection: dockerd downloads three layers at once, and a
per-connection limit (toxiproxy's, nginx's `limit_rate`) would let three times the rate
through. The rate is a token bucket every connection draws from (what a saturated line
does: whoever sends, the line carries `rate` bytes a second); the latency delays every
chunk by half the round trip in each direction without slowing the stream (a chunk
waits in a queue of its own, so the link stays full, as a real one with a large enough
TCP window). Each direction's queue is bounded to what the link holds in flight, so a
fast sender is held back by TCP, as on a real line, instead of filling memory."""

import math
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from testkit.tcp_proxy import TcpProxy

CHUNK = 16 * 1024
BURST = 4 * CHUNK  # bytes the link may send at once after an idle moment


class Shaper:
    """A token bucket shared by every connection of one direction of the link."""

    def __init__(self, rate_bytes_s: float) -> None:
        self.rate = rate_bytes_s
        self._tokens = float(BURST)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        """Wait until `n` bytes may pass. The bytes are reserved at once (the bucket
        goes into debt), so waiters pass in turn and a late wake-up costs no rate."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(BURST, self._tokens + (now - self._at) * self.rate) - n
            self._at = now
            wait = -self._tokens / self.rate
        if wait > 0:
            time.sleep(wait)


@dataclass
class Traffic:
    """What went down the link (server to client): bytes, when the first and the last
    of them passed, bytes per connection, and the most connections open at once."""

    bytes: int = 0
    first: float = 0.0
    last: float = 0.0
    most_at_once: int = 0
    per_connection: dict[int, int] = field(default_factory=dict)

    def rate(self) -> float:
        """Bytes a second from the first byte down to the last."""
        return self.bytes / (self.last - self.first) if self.last > self.first else 0.0


class EmulatedLink(TcpProxy):
    def __init__(
        self,
        target: str,
        down_bit_s: float,
        up_bit_s: float = 0,
        rtt_s: float = 0,
        listener: socket.socket | None = None,
    ) -> None:
        """`target` host:port; rates in bit/s (up: the down rate if 0); `rtt_s` the round
        trip the link adds; `listener` where clients come from (default: a new socket on
        127.0.0.1; e.g. one in a private engine's network namespace)."""
        super().__init__(target, listener)
        self.set(down_bit_s, up_bit_s, rtt_s)
        self.traffic = Traffic()
        self._connections = 0  # open now
        self._serial = 0
        self.start()

    def set(self, down_bit_s: float, up_bit_s: float = 0, rtt_s: float = 0) -> None:
        """New rates and latency, for the connections opened from now on."""
        self.down = Shaper(down_bit_s / 8)
        self.up = Shaper((up_bit_s or down_bit_s) / 8)
        self.delay = rtt_s / 2

    def reset(self) -> Traffic:
        """The traffic so far; counting starts again."""
        with self._lock:
            seen, self.traffic = self.traffic, Traffic(most_at_once=self._connections)
        return seen

    def connected(self, client: socket.socket, server: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            self._serial += 1
            serial = self._serial
            self.traffic.most_at_once = max(self.traffic.most_at_once, self._connections)
        ended: list[str] = []

        def end(direction: str) -> None:
            with self._lock:
                ended.append(direction)
                if direction == "down":
                    self._connections -= 1
                if len(ended) == 2:  # both ways done: the sockets go (a long run has many)
                    self._drop(client)
                    self._drop(server)

        self._direction(client, server, self.up, None, lambda: end("up"))
        self._direction(server, client, self.down, serial, lambda: end("down"))

    def _direction(
        self,
        source: socket.socket,
        sink: socket.socket,
        shaper: Shaper,
        counted: int | None,
        ended: Callable[[], None],
    ) -> None:
        # Bounded to what the link holds in flight at its rate and latency, plus slack.
        in_flight = math.ceil(shaper.rate * self.delay / CHUNK) + 8
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue(maxsize=in_flight)

        def read() -> None:
            try:
                while data := source.recv(CHUNK):
                    chunks.put((time.monotonic() + self.delay, data))
            except OSError:
                pass
            chunks.put((0.0, b""))

        def write() -> None:
            try:
                while True:
                    due, data = chunks.get()
                    if not data:
                        break
                    if (late := due - time.monotonic()) > 0:
                        time.sleep(late)
                    shaper.take(len(data))
                    if counted is not None:  # before: the reader may be done at once
                        self._count(counted, len(data))
                    sink.sendall(data)
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                ended()

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def _count(self, serial: int, n: int) -> None:
        now = time.monotonic()
        with self._lock:
            t = self.traffic
            t.first = t.first or now
            t.last = now
            t.bytes += n
            t.per_connection[serial] = t.per_connection.get(serial, 0) + n
