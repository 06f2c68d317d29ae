"""A TCP proxy's plumbing for the tests' links (testkit/flaky_link.py, testkit/link_emulator.py):
a listener, a connection to the target for each client, and closing them all."""

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target: str, listener: socket.socket | None = None) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self._listeners = [listener or socket.create_server(("127.0.0.1", 0))]
        self.address = f"127.0.0.1:{self._listeners[0].getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def start(self) -> None:
        """Accept clients (once the subclass is ready for them)."""
        threading.Thread(target=self._accept, args=(self._listeners[0],), daemon=True).start()

    def serve(self, listener: socket.socket) -> None:
        """Accept clients from another listening socket too, through the same proxy (e.g.
        the same address inside a private engine's network namespace: a gateway's engine
        and its update service then share one link)."""
        self._listeners.append(listener)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def refuses(self) -> bool:
        """True while new clients are turned away."""
        return False

    def connected(self, client: socket.socket, server: socket.socket) -> None:
        """Carry the bytes between a new client and its server connection."""
        raise NotImplementedError

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        with self._lock:
            for s in list(self._open):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        """Shut and close one socket (the caller holds the lock)."""
        self._open.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.refuses():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
            self.connected(client, server)
