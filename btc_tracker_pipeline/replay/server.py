"""Loopback HTTP server speaking Gamma (``/gamma``), CLOB (``/clob``) and Binance
(``/binance/api/v3``) over any :class:`~btc_tracker_pipeline.replay.world.World`.

Routes, JSON shapes, limits and error bodies follow docs/apis.md. The server owns
routing, filtering, paging, limits, errors, faults and request statistics; the
world only knows its data. ``GET /__replay/stats`` and ``POST /__replay/reset``
expose and zero the counters (never faulted, never counted). Every answer names the
world served in the ``X-Replay-World`` header (``World.identity``).

This module is the core: the socket, dispatch, faults, stats and the serialized calls
into the world. Each API's routes are in ``gamma_routes``, ``clob_routes`` and
``binance_routes``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from btc_tracker_pipeline.replay import binance_routes, clob_routes, gamma_routes
from btc_tracker_pipeline.replay import gamma_filters as gf
from btc_tracker_pipeline.replay.binance_routes import (
    BINANCE_INTERVALS,
    BINANCE_SYMBOL,
    KLINES_DEFAULT_LIMIT,
    KLINES_MAX_LIMIT,
)
from btc_tracker_pipeline.replay.clob_routes import MAX_PRICES_HISTORY_SPAN_S
from btc_tracker_pipeline.replay.faults import FAULT_KINDS, Fault, FaultInjector, FaultSpec
from btc_tracker_pipeline.replay.routing import (
    Handler,
    HttpError,
    Params,
    Response,
    Route,
    json_response,
    param,
)
from btc_tracker_pipeline.replay.world import World
from btc_tracker_pipeline.sources.http import WORLD_HEADER

# The route names and limits stay importable from here, where they used to live.
__all__ = [
    "BINANCE_INTERVALS",
    "BINANCE_SYMBOL",
    "KLINES_DEFAULT_LIMIT",
    "KLINES_MAX_LIMIT",
    "MAX_PRICES_HISTORY_SPAN_S",
    "MAX_URL_LENGTH",
    "ROUTE_TEMPLATES",
    "Handler",
    "HttpError",
    "Params",
    "ReplayServer",
    "Response",
    "Route",
    "json_response",
]

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 8192


def _epoch_s(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


# --- faults that rewrite a good answer -------------------------------------------------


def _drop_first_id(body: Any, _params: Params) -> Any | None:
    """A page whose first item lacks its required ``id`` (a page missing fields)."""
    items = body
    if isinstance(body, dict):
        items = next((v for v in body.values() if isinstance(v, list)), None)
    if not items or not isinstance(items[0], dict) or "id" not in items[0]:
        return None
    del items[0]["id"]
    return body


def _repeat_cursor(body: Any, params: Params) -> Any | None:
    """A keyset page whose ``next_cursor`` is the cursor it was asked for (a loop)."""
    asked = params.get("after_cursor", [None])[0]
    if not asked or not isinstance(body, dict) or "next_cursor" not in body:
        return None
    body["next_cursor"] = asked
    return body


# Faults that rewrite a good answer's body; counted only when they applied.
_BODY_FAULTS: dict[str, Callable[[Any, Params], Any | None]] = {
    "missing": _drop_first_id,
    "cursor": _repeat_cursor,
}


class ReplayServer:
    """Serves Gamma under ``/gamma``, CLOB under ``/clob`` and Binance under
    ``/binance`` from one loopback port, over any World.

    The socket is bound in the constructor (``url``/``port`` are known at once); use
    it as a context manager or call :meth:`start` / :meth:`stop`; :meth:`serve_forever`
    blocks until SIGTERM/SIGINT (for the CLI). Point ccxt at ``url + "/binance/api/v3"``.
    """

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultSpec | None = None,
    ) -> None:
        self.world = world
        self.world_id = world.identity()
        self.host = host
        self.port = port
        self.faults = faults or FaultSpec()
        self._injector = FaultInjector(self.faults)
        self._thread: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self._routes_count: Counter[str] = Counter()
        self._faults_count: Counter[str] = Counter()
        self._total = 0
        # Worlds are not required to be thread-safe: calls into them are serialized.
        self._world_lock = threading.RLock()
        # Bound (and listening) right away, so `url` and `port` are known before start().
        httpd = _HTTPServer((host, port), _Handler)
        httpd.replay = self
        self._httpd: _HTTPServer | None = httpd
        self.port = httpd.server_address[1]

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> ReplayServer:
        """Serve in a daemon thread (the socket is already bound); returns self."""
        httpd = self._httpd
        if httpd is None:
            raise RuntimeError("replay server was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"replay-server-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._thread is not None:
            httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        httpd.server_close()

    def serve_forever(self) -> None:
        """Serve until SIGTERM or SIGINT, then shut down cleanly (for the CLI)."""
        stop = threading.Event()
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, on_signal)
        self.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765`` (no trailing slash)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- stats ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``{"total", "routes": {template: n}, "faults": {kind: n}}`` since the last reset."""
        with self._stats_lock:
            return {
                "total": self._total,
                "routes": dict(sorted(self._routes_count.items())),
                "faults": {kind: self._faults_count.get(kind, 0) for kind in FAULT_KINDS},
            }

    def set_faults(self, faults: FaultSpec | None) -> None:
        """Switch the injected faults while serving (None: none), e.g. to retry a window."""
        self.faults = faults or FaultSpec()
        self._injector = FaultInjector(self.faults)

    def reset_stats(self) -> None:
        """Zero every counter and restart the fault sequence from its seed."""
        with self._stats_lock:
            self._total = 0
            self._routes_count.clear()
            self._faults_count.clear()
        self._injector.reset()

    def _count(self, template: str) -> None:
        with self._stats_lock:
            self._total += 1
            self._routes_count[template] += 1

    def _count_fault(self, kind: str) -> None:
        with self._stats_lock:
            self._faults_count[kind] += 1

    # --- dispatch ------------------------------------------------------------------

    def handle(self, method: str, raw_path: str) -> Response:
        """Answer one request (everything but the socket I/O)."""
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        if path.startswith("/__replay/"):
            return self._handle_control(method, path)
        params: Params = parse_qs(split.query, keep_blank_values=True)
        prefix = path.split("/", 2)[1]
        if prefix not in ("gamma", "clob", "binance"):
            return json_response(404, {"error": "not found"})
        route, path_args = self._match(path)
        self._count(route.template if route else "(unmatched)")

        if path == "/clob/book" and param(params, "token_id") in self.faults.book_down:
            self._count_fault("book_down")
            return json_response(503, {"error": "Service Unavailable"})
        if path == "/clob/prices-history" and param(params, "market") in self.faults.history_down:
            self._count_fault("history_down")
            return json_response(503, {"error": "Service Unavailable"})
        fault = self._injector.decide(prefix)
        if fault is not None and fault.kind not in _BODY_FAULTS:
            self._count_fault(fault.kind)
            early = self._fault_response(fault)
            if early is not None:
                return early
            if fault.kind == "slow":
                time.sleep(self.faults.slow_s)

        if len(raw_path) > MAX_URL_LENGTH:
            # Long id=/slug= lists are refused with 414 (docs/apis.md §1.2, §1.11).
            response = json_response(414, {"error": "URI Too Long"})
        elif method != "GET":
            response = json_response(405, {"error": "method not allowed"})
        elif route is None:
            response = json_response(404, {"error": "not found"})
        else:
            try:
                response = route.handler(self, params, path_args)
            except HttpError as exc:
                response = json_response(exc.status, exc.payload)
            except gf.GammaValidationError as exc:
                response = json_response(422, exc.body())
            except Exception:
                log.exception("replay route %s failed", route.template)
                response = json_response(500, {"error": "internal replay server error"})

        if fault is not None and fault.kind == "malformed":
            # A 200 whose JSON body was cut short.
            cut = max(1, len(response.body) // 2)
            return Response(200, response.body[:cut], "application/json")
        if fault is not None and fault.kind in _BODY_FAULTS and response.status == 200:
            changed = _BODY_FAULTS[fault.kind](json.loads(response.body), params)
            if changed is not None:
                self._count_fault(fault.kind)
                return json_response(200, changed)
        return response

    def _fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "down":
            return json_response(503, {"error": "Service Unavailable"})
        if fault.kind == "429":
            return json_response(
                429, {"error": "Too Many Requests"}, {"Retry-After": str(self.faults.retry_after)}
            )
        if fault.kind == "5xx":
            if fault.status == 502:
                # Gateways answer 502 with an HTML page, not JSON.
                body = b"<html><head><title>502 Bad Gateway</title></head><body>502</body></html>"
                return Response(502, body, "text/html")
            reason = "Internal Server Error" if fault.status == 500 else "Service Unavailable"
            return json_response(fault.status or 500, {"error": reason})
        return None

    def _match(self, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in _ROUTES:
            found = route.pattern.match(path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None, {}

    def _handle_control(self, method: str, path: str) -> Response:
        if path == "/__replay/stats" and method == "GET":
            return json_response(200, self.stats())
        if path == "/__replay/reset" and method == "POST":
            self.reset_stats()
            return json_response(200, self.stats())
        return json_response(404, {"error": "not found"})

    # --- world access (serialized) ---------------------------------------------------

    def query_world(self, name: str, *args: Any) -> Any:
        """The world's method ``name`` called with ``args``, one call at a time."""
        with self._world_lock:
            return getattr(self.world, name)(*args)

    def world_now_s(self) -> int:
        """The world's current time in epoch seconds."""
        return _epoch_s(self.query_world("now"))


# Matched in order (each API's table puts its fixed paths first).
_ROUTES: tuple[Route, ...] = (*gamma_routes.ROUTES, *clob_routes.ROUTES, *binance_routes.ROUTES)
ROUTE_TEMPLATES: tuple[str, ...] = tuple(r.template for r in _ROUTES)


# --- socket layer ----------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen backlog for request bursts
    allow_reuse_address = True
    replay: ReplayServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "btc-tracker-replay"
    sys_version = ""
    disable_nagle_algorithm = True  # avoid 40 ms delayed-ACK stalls on keep-alive
    timeout = 60  # idle keep-alive connections are closed after this
    server: _HTTPServer

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
            self.close_connection = True
        if length > 0:
            self.rfile.read(length)
        self._answer("POST")

    def _answer(self, method: str) -> None:
        try:
            response = self.server.replay.handle(method, self.path)
        except Exception:
            log.exception("replay request %s %s failed", method, self.path)
            response = json_response(500, {"error": "internal replay server error"})
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header(WORLD_HEADER, self.server.replay.world_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)
