"""A registry that lies: an HTTP proxy in front of a real one that answers chosen paths
with other bytes (as whoever owns the registry, or the network before it, can), and
passes everything else through unchanged."""

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LyingRegistry:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lies: dict[str, bytes] = {}  # path -> the body served instead
        lies, target = self.lies, upstream

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(with_body=True)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def _answer(self, with_body: bool) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() == "accept"}
                request = urllib.request.Request(
                    f"http://{target}{self.path}", headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, body = response.status, response.read()
                        got = dict(response.headers)
                except urllib.error.HTTPError as exc:
                    status, body, got = exc.code, exc.read(), dict(exc.headers)
                body = lies.get(self.path.split("?")[0], body)
                self.send_response(status)
                for key in ("Content-Type", "Docker-Content-Digest"):
                    if key in got:
                        self.send_header(key, got[key])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
