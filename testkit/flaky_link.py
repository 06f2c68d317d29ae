"""A TCP proxy that stands for a gateway's flaky uplink: it passes bytes until told to
cut one connection, or to go down altogether, after so many bytes from the server."""

import socket
import threading

from testkit.tcp_proxy import TcpProxy


class FlakyLink(TcpProxy):
    def __init__(self, target: str, listener: socket.socket | None = None) -> None:
        super().__init__(target, listener)
        self._budget: int | None = None  # bytes still to pass before the fault
        self._stay_down = False
        self.down = False
        self.cuts = 0
        self.passed = 0  # bytes from the server that reached the client
        self.start()

    def cut_after(self, nbytes: int) -> None:
        """Cut the connection that carries the n-th byte from now; later ones work."""
        with self._lock:
            self._budget, self._stay_down = nbytes, False

    def down_after(self, nbytes: int) -> None:
        """After n more bytes, cut every connection and refuse new ones until `up()`."""
        with self._lock:
            self._budget, self._stay_down = nbytes, True

    def up(self) -> None:
        with self._lock:
            self.down, self._budget = False, None

    def refuses(self) -> bool:
        return self.down

    def connected(self, client: socket.socket, server: socket.socket) -> None:
        threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(65536):
                cut = False
                if counted:
                    with self._lock:
                        if self._budget is not None:
                            if len(data) >= self._budget:
                                data, cut = data[: self._budget], True
                                self._budget = None
                            else:
                                self._budget -= len(data)
                sink.sendall(data)
                if counted:
                    with self._lock:
                        self.passed += len(data)
                if cut:
                    with self._lock:
                        self.cuts += 1
                        self.down = self._stay_down
                        for s in list(self._open) if self.down else (source, sink):
                            self._drop(s)
                    return
        except OSError:
            pass
        with self._lock:
            self._drop(source)
            self._drop(sink)
