"""A real HTTP server on 127.0.0.1 that records the JSON posted to it, answering with scripted statuses
(e.g. 503 twice, then 200) so retries can be watched."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Hook:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)  # answered in order; 200 once they run out
        self.requests: list[tuple[str, int, bytes]] = []  # (path, status answered, body)
        self.lock = threading.Lock()
        self.url = ""

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """The payloads answered with 2xx."""
        return [json.loads(body) for _, status, body in self.requests if status < 300]

    def answer(self, path: str, body: bytes) -> int:
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            self.requests.append((path, status, body))
            return status


@contextmanager
def webhook_server(statuses: list[int] | None = None, path: str = "/hooks/T0KEN/abc") -> Iterator[Hook]:
    hook = Hook(statuses or [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = hook.answer(self.path, body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
