"""Loopback HTTP server speaking Gamma (``/gamma``), CLOB (``/clob``) and Binance
(``/binance/api/v3``) over any :class:`~btc_tracker_pipeline.replay.world.World`.

Routes, JSON shapes, limits and error bodies follow docs/apis.md. The server owns
routing, filtering, paging, limits, errors, faults and request statistics; the
world only knows its data. ``GET /__replay/stats`` and ``POST /__replay/reset``
expose and zero the counters (never faulted, never counted). Every answer names the
world served in the ``X-Replay-World`` header (``World.identity``).
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from btc_tracker_pipeline.replay import gamma_filters as gf
from btc_tracker_pipeline.replay.faults import FAULT_KINDS, Fault, FaultInjector, FaultSpec
from btc_tracker_pipeline.replay.world import UnknownTokenError, World
from btc_tracker_pipeline.sources.http import WORLD_HEADER

log = logging.getLogger(__name__)

Params = dict[str, list[str]]

MAX_URL_LENGTH = 8192
# ccxt's maxPricesHistoryWindow; longer explicit spans → 400 (docs/apis.md §2.1).
MAX_PRICES_HISTORY_SPAN_S = 1_296_000
_HISTORY_INTERVALS_S: dict[str, int | None] = {
    "1h": 3_600,
    "6h": 6 * 3_600,
    "1d": 86_400,
    "1w": 7 * 86_400,
    "1m": 30 * 86_400,  # one month, not one minute (docs/apis.md §2.1)
    "max": None,
    "all": None,
}
_HISTORY_MIN_FIDELITY = {"1m": 10, "1w": 5}  # docs/apis.md §2.1

# docs/apis.md §3.1
BINANCE_INTERVALS = frozenset(
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h"}
    | {"1d", "3d", "1w", "1M"}
)
KLINES_DEFAULT_LIMIT = 500
KLINES_MAX_LIMIT = 1000
BINANCE_SYMBOL = "BTCUSDT"

# Trimmed real exchangeInfo (fixture binance_exchange_info_btcusdt_ethusdt.json,
# BTCUSDT entry only; docs/apis.md §3.7). serverTime is filled from world.now().
_EXCHANGE_INFO_BTCUSDT: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 0,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 6100},
    ],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "5",
                    "multiplierDown": "0.2",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00001000",
                },
                {
                    "filterType": "MIN_NOTIONAL",
                    "minNotional": "10.00000000",
                    "applyToMarket": True,
                    "avgPriceMins": 5,
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "112.21108820",
                    "stepSize": "0.00000000",
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": ["SPOT", "MARGIN"],
        }
    ],
}

_BINANCE_INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
_BINANCE_INVALID_INTERVAL = {"code": -1120, "msg": "Invalid interval."}


@dataclass
class Response:
    """One HTTP answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A compact-JSON response (the real APIs send compact JSON)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, "application/json", headers or {})


class HttpError(Exception):
    """Raised by a route to answer with ``status`` and a JSON ``payload``."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status, payload)
        self.status = status
        self.payload = payload


def _epoch_s(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


def _param(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _decimal_str(value: Decimal) -> str:
    return format(value.normalize(), "f")


# --- routing ---------------------------------------------------------------------------

Handler = Callable[["ReplayServer", Params, dict[str, str]], Response]


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


@dataclass(frozen=True)
class Route:
    """A GET route: its stats template, its matcher and its handler."""

    template: str
    pattern: re.Pattern[str]
    handler: Handler


def _route(template: str, handler: Handler) -> Route:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Route(template, re.compile(f"^{regex}$"), handler)


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

    def _world(self, name: str, *args: Any) -> Any:
        with self._world_lock:
            return getattr(self.world, name)(*args)

    def _now_s(self) -> int:
        return _epoch_s(self._world("now"))

    # --- gamma ---------------------------------------------------------------------

    def _gamma_status(self, params: Params, args: dict[str, str]) -> Response:
        return Response(200, b"OK", "text/plain; charset=utf-8")

    def _gamma_markets(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, gf.list_markets(self._world("gamma_markets"), params))

    def _gamma_markets_keyset(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, gf.keyset_markets(self._world("gamma_markets"), params))

    def _gamma_lookup(self, kind: str, field_name: str, value: str) -> Response:
        items = self._world("gamma_markets" if kind == "market" else "gamma_events")
        # Single lookups return closed objects too (docs/apis.md §1.4).
        found = gf.find_one(items, field_name, value)
        if found is None:
            raise HttpError(404, {"type": "not found error", "error": f"{kind} not found"})
        return json_response(200, found)

    def _gamma_market_by_id(self, params: Params, args: dict[str, str]) -> Response:
        return self._gamma_lookup("market", "id", args["id"])

    def _gamma_market_by_slug(self, params: Params, args: dict[str, str]) -> Response:
        return self._gamma_lookup("market", "slug", args["slug"])

    def _gamma_events(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, gf.list_events(self._world("gamma_events"), params))

    def _gamma_events_keyset(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, gf.keyset_events(self._world("gamma_events"), params))

    def _gamma_event_by_id(self, params: Params, args: dict[str, str]) -> Response:
        return self._gamma_lookup("event", "id", args["id"])

    def _gamma_event_by_slug(self, params: Params, args: dict[str, str]) -> Response:
        return self._gamma_lookup("event", "slug", args["slug"])

    def _gamma_search(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, gf.public_search(self._world("gamma_events"), params))

    def _gamma_tags(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, gf.list_tags(self._world("gamma_events"), params))

    # --- clob ----------------------------------------------------------------------

    @staticmethod
    def _clob_int(params: Params, name: str) -> int | None:
        raw = _param(params, name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise HttpError(400, {"error": f"invalid '{name}'"}) from None

    def _clob_prices_history(self, params: Params, args: dict[str, str]) -> Response:
        market = _param(params, "market")
        if not market:
            raise HttpError(400, {"error": "'market' is required"})
        fidelity = self._clob_int(params, "fidelity")
        fidelity = 1 if fidelity is None else fidelity  # minutes, default 1 (§2.1)
        if fidelity < 1:
            raise HttpError(400, {"error": "invalid 'fidelity'"})
        start_ts = self._clob_int(params, "startTs")
        end_ts = self._clob_int(params, "endTs")
        interval = _param(params, "interval")
        now_s = self._now_s()
        if interval:
            if start_ts is not None or end_ts is not None:
                raise HttpError(
                    400, {"error": "'interval' is mutually exclusive with 'startTs'/'endTs'"}
                )
            if interval not in _HISTORY_INTERVALS_S:
                raise HttpError(400, {"error": f"invalid 'interval': {interval}"})
            minimum = _HISTORY_MIN_FIDELITY.get(interval)
            if minimum is not None and fidelity < minimum:
                raise HttpError(
                    400, {"error": f"minimum 'fidelity' for '{interval}' range is {minimum}"}
                )
            span = _HISTORY_INTERVALS_S[interval]
            start, end = (0 if span is None else now_s - span), now_s
        elif start_ts is None and end_ts is None:
            raise HttpError(400, {"error": "'interval' or 'startTs'/'endTs' is required"})
        else:
            if (
                start_ts is not None
                and end_ts is not None
                and end_ts - start_ts > MAX_PRICES_HISTORY_SPAN_S
            ):
                # docs/apis.md §2.1: explicit spans over 15 days are refused.
                raise HttpError(400, {"error": "'startTs' and 'endTs' interval is too long"})
            # startTs alone is not capped (§2.1).
            start = 0 if start_ts is None else start_ts
            end = now_s if end_ts is None else end_ts
        if end < start:
            return json_response(200, {"history": []})
        try:
            history = self._world("price_history", market, start, end, fidelity)
        except UnknownTokenError:
            # An unknown token is not an error: the history is just empty (§2.1).
            history = []
        return json_response(200, {"history": history})

    def _clob_time(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, self._now_s())

    def _clob_book_for(self, params: Params) -> dict[str, Any]:
        token_id = _param(params, "token_id")
        if not token_id:
            raise HttpError(400, {"error": "Invalid token id"})
        try:
            book = dict(self._world("book", token_id))
        except UnknownTokenError:
            raise HttpError(
                404, {"error": "No orderbook exists for the requested token id"}
            ) from None
        # Best level LAST: bids ascending, asks descending (docs/apis.md §2.2).
        book["bids"] = sorted(book.get("bids") or [], key=lambda lv: float(lv["price"]))
        book["asks"] = sorted(
            book.get("asks") or [], key=lambda lv: float(lv["price"]), reverse=True
        )
        return book

    def _clob_book(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, self._clob_book_for(params))

    def _clob_midpoint(self, params: Params, args: dict[str, str]) -> Response:
        book = self._clob_book_for(params)
        try:
            # An empty side counts as 0 (bids) / 1 (asks): fixture mid 0.0005 = (0 + 0.001) / 2.
            best_bid = Decimal(str(book["bids"][-1]["price"])) if book["bids"] else Decimal(0)
            best_ask = Decimal(str(book["asks"][-1]["price"])) if book["asks"] else Decimal(1)
        except (InvalidOperation, KeyError) as exc:
            raise HttpError(500, {"error": f"bad book level: {exc}"}) from None
        return json_response(200, {"mid": _decimal_str((best_bid + best_ask) / 2)})

    def _clob_market(self, params: Params, args: dict[str, str]) -> Response:
        try:
            market = self._world("clob_market", args["condition_id"])
        except KeyError:
            raise HttpError(404, {"error": "market not found"}) from None
        return json_response(200, market)

    # --- binance -------------------------------------------------------------------

    def _binance_ping(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, {})

    def _binance_time(self, params: Params, args: dict[str, str]) -> Response:
        return json_response(200, {"serverTime": self._now_s() * 1000})

    def _binance_exchange_info(self, params: Params, args: dict[str, str]) -> Response:
        symbol = _param(params, "symbol")
        if symbol is not None and symbol != BINANCE_SYMBOL:
            raise HttpError(400, _BINANCE_INVALID_SYMBOL)
        info = dict(_EXCHANGE_INFO_BTCUSDT, serverTime=self._now_s() * 1000)
        return json_response(200, info)

    def _binance_ticker_24hr(self, params: Params, args: dict[str, str]) -> Response:
        symbol = _param(params, "symbol")
        symbols = _param(params, "symbols")
        if symbol is not None:
            if symbol != BINANCE_SYMBOL:
                raise HttpError(400, _BINANCE_INVALID_SYMBOL)
            return json_response(200, self._world("ticker_24h"))
        if symbols is not None:
            try:
                wanted = json.loads(symbols)
            except ValueError:
                wanted = None
            if not isinstance(wanted, list) or any(s != BINANCE_SYMBOL for s in wanted):
                raise HttpError(400, _BINANCE_INVALID_SYMBOL)
        # Without `symbol` the answer is an array (docs/apis.md §3.5).
        return json_response(200, [self._world("ticker_24h")])

    @staticmethod
    def _binance_int(params: Params, name: str) -> int | None:
        raw = _param(params, name)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise HttpError(
                400, {"code": -1100, "msg": f"Illegal characters found in parameter '{name}'."}
            ) from None

    def _binance_klines(self, params: Params, args: dict[str, str]) -> Response:
        symbol = _param(params, "symbol")
        interval = _param(params, "interval")
        for name, value in (("symbol", symbol), ("interval", interval)):
            if not value:
                raise HttpError(
                    400,
                    {
                        "code": -1102,
                        "msg": f"Mandatory parameter '{name}' was not sent, was empty/null, "
                        "or malformed.",
                    },
                )
        if symbol != BINANCE_SYMBOL:
            raise HttpError(400, _BINANCE_INVALID_SYMBOL)
        if interval not in BINANCE_INTERVALS:
            raise HttpError(400, _BINANCE_INVALID_INTERVAL)
        limit = self._binance_int(params, "limit")
        limit = KLINES_DEFAULT_LIMIT if limit is None else min(max(limit, 1), KLINES_MAX_LIMIT)
        start_ms = self._binance_int(params, "startTime")
        end_ms = self._binance_int(params, "endTime")
        if start_ms is not None and end_ms is not None and start_ms > end_ms:
            raise HttpError(400, {"code": -1023, "msg": "Start time is greater than end time."})
        try:
            rows = self._world("klines", interval, start_ms, end_ms, limit)
        except ValueError:
            raise HttpError(400, _BINANCE_INVALID_INTERVAL) from None
        return json_response(200, rows)


_ROUTES: tuple[Route, ...] = (
    _route("/gamma/status", ReplayServer._gamma_status),
    _route("/gamma/markets", ReplayServer._gamma_markets),
    _route("/gamma/markets/keyset", ReplayServer._gamma_markets_keyset),
    _route("/gamma/markets/slug/{slug}", ReplayServer._gamma_market_by_slug),
    _route("/gamma/markets/{id}", ReplayServer._gamma_market_by_id),
    _route("/gamma/events", ReplayServer._gamma_events),
    _route("/gamma/events/keyset", ReplayServer._gamma_events_keyset),
    _route("/gamma/events/slug/{slug}", ReplayServer._gamma_event_by_slug),
    _route("/gamma/events/{id}", ReplayServer._gamma_event_by_id),
    _route("/gamma/public-search", ReplayServer._gamma_search),
    _route("/gamma/tags", ReplayServer._gamma_tags),
    _route("/clob/time", ReplayServer._clob_time),
    _route("/clob/prices-history", ReplayServer._clob_prices_history),
    _route("/clob/book", ReplayServer._clob_book),
    _route("/clob/midpoint", ReplayServer._clob_midpoint),
    _route("/clob/markets/{condition_id}", ReplayServer._clob_market),
    _route("/binance/api/v3/ping", ReplayServer._binance_ping),
    _route("/binance/api/v3/time", ReplayServer._binance_time),
    _route("/binance/api/v3/exchangeInfo", ReplayServer._binance_exchange_info),
    _route("/binance/api/v3/ticker/24hr", ReplayServer._binance_ticker_24hr),
    _route("/binance/api/v3/klines", ReplayServer._binance_klines),
)
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
