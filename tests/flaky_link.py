"""A TCP proxy that stands for a gateway's flaky uplink: it passes bytes until told to
cut one connection, or to go down altogether, after so many bytes from the server."""

import contextlib
import socket
import threading


class FlakyLink:
    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._budget: int | None = None  # bytes still to pass before the fault
        self._stay_down = False
        self.down = False
        self.cuts = 0
        self.passed = 0  # bytes from the server that reached the client
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

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

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in list(self._open):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        self._open.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
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
