"""A real HTTP server on 127.0.0.1 for client tests: each test supplies an ``app``
that maps a recorded request to a reply."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]

    def all(self, name: str) -> list[str]:
        """Every value of a (possibly repeated) query parameter."""
        return [v for k, v in self.query if k == name]

    def get(self, name: str) -> str | None:
        """The single value of a query parameter, None if absent."""
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


@dataclass
class Reply:
    """What to answer: JSON-encoded ``body`` unless it is bytes."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


App = Callable[[Request], Reply]


@dataclass
class Server:
    """A running loopback server and the requests it has seen."""

    base: str
    requests: list[Request]

    def paths(self) -> list[str]:
        """Paths of the requests received, in order."""
        return [r.path for r in self.requests]


def _handler(app: App, log: list[Request], lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            split = urlsplit(self.path)
            request = Request(
                path=split.path,
                query=tuple(parse_qsl(split.query, keep_blank_values=True)),
                headers=dict(self.headers.items()),
            )
            with lock:
                log.append(request)
            reply = app(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops bursts of concurrent connects


@contextmanager
def serve(app: App) -> Iterator[Server]:
    """Run ``app`` on ``http://127.0.0.1:<free port>`` for the duration of the block."""
    log: list[Request] = []
    httpd = _Server(("127.0.0.1", 0), _handler(app, log, threading.Lock()))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield Server(base=f"http://127.0.0.1:{httpd.server_address[1]}", requests=log)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def routes(table: dict[str, Callable[[Request], Reply]]) -> App:
    """An app dispatching on the exact path; anything else is a 404."""

    def app(request: Request) -> Reply:
        handler = table.get(request.path)
        if handler is None:
            return Reply({"error": f"no route {request.path}"}, status=404)
        return handler(request)

    return app
