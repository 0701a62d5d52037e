"""Binance spot BTC/USDT through ccxt: 1-minute klines and the 24h ticker (docs/apis.md §3)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt

from btc_tracker_pipeline.sources.errors import (
    ApiError,
    ClientError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from btc_tracker_pipeline.sources.gamma import malformed, parse_number, utc_from_unix
from btc_tracker_pipeline.sources.http import (
    WORLD_HEADER,
    HttpSettings,
    RetryPolicy,
    parse_retry_after,
    source_key,
)
from btc_tracker_pipeline.sources.models import Kline, Ticker24h

T = TypeVar("T")

REAL_BASE_URL = "https://api.binance.com"
DEFAULT_SYMBOL = "BTC/USDT"
KLINES_PAGE_LIMIT = 1000  # §3.6: spot klines max limit
_EPOCH = datetime(1970, 1, 1)
_STATUS_IN_MESSAGE = re.compile(r" (\d{3}) ")

# After mapping, these came from ccxt NetworkError subclasses (§3.4) or from a body ccxt
# could not use (BadResponse, a shape it chokes on), and are retried.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    RateLimitedError,
    ServerError,
    TransportError,
    MalformedResponseError,
)


# --------------------------------------------------------------------------- parsers


def to_ms(moment: datetime) -> int:
    """Unix milliseconds of a datetime (naive = UTC), exactly."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _row(raw: Any, index: int, width: int) -> Sequence[Any]:
    if not isinstance(raw, list | tuple) or len(raw) < width:
        raise malformed(f"klines[{index}]", f"a list of at least {width} values", raw)
    return raw


def _required(value: Any, field: str) -> float:
    number = parse_number(value, field)
    if number is None:
        raise malformed(field, "a number", value)
    return number


def _kline(row: Sequence[Any], index: int) -> Kline:
    field = f"klines[{index}]"
    open_ms = _required(row[0], f"{field}[0] open time")
    if not open_ms.is_integer():
        raise malformed(f"{field}[0] open time", "unix milliseconds", row[0])
    o, h, low, c, v = (_required(row[i], f"{field}[{i}]") for i in range(1, 6))
    return Kline(
        open_time=utc_from_unix(open_ms / 1000), open=o, high=h, low=low, close=c, volume=v
    )


def parse_ohlcv(rows: Any) -> list[Kline]:
    """ccxt ``fetch_ohlcv`` rows ``[ts_ms, open, high, low, close, volume]`` (floats)."""
    if not isinstance(rows, list):
        raise malformed("klines", "a list", rows)
    return [_kline(_row(raw, i, 6), i) for i, raw in enumerate(rows)]


def parse_raw_klines(rows: Any) -> list[Kline]:
    """Raw ``/api/v3/klines`` rows: 12 elements, prices and volumes as strings (§3.6)."""
    if not isinstance(rows, list):
        raise malformed("klines", "a list", rows)
    return [_kline(_row(raw, i, 12), i) for i, raw in enumerate(rows)]


def parse_ticker(ccxt_ticker: Mapping[str, Any]) -> Ticker24h:
    """A ccxt unified ticker (from ``/api/v3/ticker/24hr``, §3.5) as :class:`Ticker24h`;
    ``timestamp`` is the rolling window's ``closeTime``."""
    if not isinstance(ccxt_ticker, Mapping):
        raise malformed("ticker", "an object", ccxt_ticker)
    t = ccxt_ticker
    ts_ms = _required(t.get("timestamp"), "ticker.timestamp")
    return Ticker24h(
        timestamp=utc_from_unix(ts_ms / 1000),
        last=_required(t.get("last"), "ticker.last"),
        bid=parse_number(t.get("bid"), "ticker.bid"),
        ask=parse_number(t.get("ask"), "ticker.ask"),
        open=parse_number(t.get("open"), "ticker.open"),
        high=parse_number(t.get("high"), "ticker.high"),
        low=parse_number(t.get("low"), "ticker.low"),
        change_pct=parse_number(t.get("percentage"), "ticker.percentage"),
        base_volume=parse_number(t.get("baseVolume"), "ticker.baseVolume"),
        quote_volume=parse_number(t.get("quoteVolume"), "ticker.quoteVolume"),
        vwap=parse_number(t.get("vwap"), "ticker.vwap"),
    )


# --------------------------------------------------------------------------- ccxt


class _TrackedBinance(ccxt.binance):
    """``ccxt.binance`` that reports each HTTP request and keeps the last status,
    headers and URL so failures can be mapped to our typed errors."""

    def __init__(self, config: dict[str, Any], on_request: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_request = on_request
        self.last_status: int | None = None
        self.last_headers: Mapping[str, str] = {}
        self.last_url: str | None = None

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.on_request()
        self.last_status, self.last_headers, self.last_url = None, {}, url
        return super().fetch(url, method, headers, body)

    def on_rest_response(
        self,
        code: Any,
        reason: Any,
        url: Any,
        method: Any,
        response_headers: Any,
        response_body: Any,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        self.last_status = int(code)
        self.last_headers = response_headers or {}
        if 200 <= self.last_status < 300:
            # ccxt swallows a body that is not JSON (parse_json returns None) and goes on
            # with no markets or no rows; a cut-short answer must be an error, and retried.
            try:
                json.loads(response_body)
            except (TypeError, ValueError) as exc:
                raise ccxt.BadResponse(
                    f"{self.id} answered {self.last_status} with a body that is not JSON: "
                    f"{str(response_body)[:80]!r}"
                ) from exc
        return super().on_rest_response(
            code,
            reason,
            url,
            method,
            response_headers,
            response_body,
            request_headers,
            request_body,
        )


def site_of(base_url: str) -> str:
    """``base_url`` without a trailing ``/`` or ``/api/v3``: the client adds the API path
    itself, so ``https://api.binance.com`` and ``https://api.binance.com/api/v3/`` name
    the same API."""
    site = base_url.rstrip("/")
    return site.removesuffix("/api/v3").rstrip("/")


def point_at(exchange: ccxt.binance, base_url: str) -> None:
    """Send every ccxt API group to ``base_url``'s host, keeping each path, so a stray
    call shows up in a fake server's log; spot public is ``base_url/api/v3`` (§3.3)."""
    api = exchange.urls["api"]
    for name, value in list(api.items()):
        if isinstance(value, str):
            api[name] = base_url + urlsplit(value).path
    api["public"] = base_url + "/api/v3"


def make_exchange(
    base_url: str, timeout_s: float, enable_rate_limit: bool, on_request: Callable[[], None]
) -> ccxt.binance:
    """A spot-only ccxt Binance client (§3.2) pointed at ``base_url``."""
    exchange = _TrackedBinance(
        {
            "timeout": int(timeout_s * 1000),
            "enableRateLimit": enable_rate_limit,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        },
        on_request,
    )
    if base_url != REAL_BASE_URL:
        point_at(exchange, base_url)
    return exchange


def _status(exc: ccxt.BaseError, last_status: int | None) -> int | None:
    if last_status is not None:
        return last_status
    found = _STATUS_IN_MESSAGE.search(str(exc))
    return int(found.group(1)) if found else None


def map_ccxt_error(
    exc: ccxt.BaseError, url: str | None, status: int | None, headers: Mapping[str, str]
) -> ApiError:
    """Our typed error for a ccxt exception (§3.4 mapping); the message is kept."""
    message = f"binance: {type(exc).__name__}: {exc}"
    status = _status(exc, status)
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return RateLimitedError(message, url, retry_after_s=retry_after)
    if isinstance(exc, ccxt.RequestTimeout):
        return TransportError(message, url)
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        if status == 404:
            return NotFoundError(message, url)
        return ServerError(message, url, status=status)
    if isinstance(exc, ccxt.NetworkError):
        return TransportError(message, url)
    if isinstance(exc, ccxt.BadResponse):
        return MalformedResponseError(message, url)
    return ClientError(message, url, status=status, body=str(exc))


class BinanceClient:
    """Binance spot market data through sync ``ccxt.binance``, with retries.

    ``requests`` counts HTTP requests ccxt sent (``load_markets`` included);
    ``retries`` counts retried calls. Calls are serialized (ccxt is not thread-safe).
    """

    def __init__(
        self,
        base_url: str = REAL_BASE_URL,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        enable_rate_limit: bool = True,
        *,
        symbol: str = DEFAULT_SYMBOL,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = site_of(base_url)
        self.symbol = symbol
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._requests = 0
        self._retries = 0
        self.exchange = make_exchange(self.base_url, timeout_s, enable_rate_limit, self._on_request)
        settings = HttpSettings(
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            max_retry_after_s=max_retry_after_s,
        )
        self._policy = RetryPolicy(settings, RETRYABLE_ERRORS, sleep, self._on_retry)

    @property
    def requests(self) -> int:
        """HTTP requests ccxt has sent."""
        with self._count_lock:
            return self._requests

    @property
    def retries(self) -> int:
        """Calls that were retried after a transient failure."""
        with self._count_lock:
            return self._retries

    def klines(self, start: datetime, end: datetime, timeframe: str = "1m") -> list[Kline]:
        """Every candle whose open time is in [start, end), oldest first, in
        ceil(n / 1000) requests when the candles run to ``end`` (one more when the
        range ends in an outage or in the future). The newest candle may still be
        open if ``end`` is in the future (§3.6).

        Binance answers ``startTime`` with the first candles opening at or after it,
        whatever the gap (§3.8), so a range is paged to its end: a page shorter than
        asked is not the end (a gap inside it, or a server with a smaller limit); only
        an empty page is, as nothing then opens in [startTime, endTime].
        """
        start_ms, end_ms = to_ms(start), to_ms(end)
        step_ms = int(self.exchange.parse_timeframe(timeframe) * 1000)
        rows: list[Any] = []
        since = start_ms
        while since < end_ms:
            fresh = self._klines_page(timeframe, since, end_ms)
            if not fresh:  # nothing opens in [since, end), or the server ignores startTime
                break
            rows.extend(fresh)
            since = int(fresh[-1][0]) + step_ms
        return parse_ohlcv(rows)

    def _klines_page(self, timeframe: str, since: int, end_ms: int) -> list[Any]:
        """One ``fetch_ohlcv`` page from ``since``, keeping the rows opening in
        [since, end_ms) (``until`` becomes Binance's inclusive ``endTime``)."""
        page = self._call(
            self.exchange.fetch_ohlcv,
            self.symbol,
            timeframe,
            since,
            KLINES_PAGE_LIMIT,
            {"until": end_ms - 1},
        )
        return [r for r in _ohlcv_rows(page) if since <= r[0] < end_ms]

    def ticker_24h(self) -> Ticker24h:
        """The rolling 24h ticker of the symbol (``GET /api/v3/ticker/24hr``)."""
        return parse_ticker(self._call(self.exchange.fetch_ticker, self.symbol))

    def source(self) -> str:
        """Where this client's data comes from (``source_key``): the base URL and the
        world a replay server names, asked with one ``GET /api/v3/ping``."""
        return source_key(self.base_url, self._call(self._ping_world))

    def _ping_world(self) -> str | None:
        self.exchange.public_get_ping()
        return self.exchange.last_headers.get(WORLD_HEADER)

    def _on_request(self) -> None:
        with self._count_lock:
            self._requests += 1

    def _on_retry(self) -> None:
        with self._count_lock:
            self._retries += 1

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        """Run one ccxt call with retries, raising our typed errors."""
        return self._policy.retrying()(self._attempt, method, *args)

    def _attempt(self, method: Callable[..., T], *args: Any) -> T:
        with self._lock:
            try:
                return method(*args)
            except ccxt.BaseError as exc:
                ex = self.exchange
                raise map_ccxt_error(
                    exc, ex.last_url or self.base_url, ex.last_status, ex.last_headers
                ) from exc
            except (TypeError, KeyError, ValueError, IndexError) as exc:
                # ccxt parses the body itself; a shape it cannot handle surfaces here.
                raise MalformedResponseError(
                    f"binance: ccxt could not parse the response: {type(exc).__name__}: {exc}",
                    self.exchange.last_url or self.base_url,
                ) from exc


def _ohlcv_rows(page: Any) -> list[Any]:
    if not isinstance(page, list):
        raise malformed("klines", "a list", page)
    for i, row in enumerate(page):
        _row(row, i, 6)
    return page
