"""Binance under ``/binance/api/v3``: ping, time, exchangeInfo, the 24h ticker and
klines for BTCUSDT (docs/apis.md §3), with Binance's parameter rules and error codes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from btc_tracker_pipeline.replay.routing import (
    HttpError,
    Params,
    Response,
    Route,
    json_response,
    param,
    route,
)

if TYPE_CHECKING:
    from btc_tracker_pipeline.replay.server import ReplayServer

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


def ping(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/ping``: an empty object."""
    return json_response(200, {})


def server_time(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/time``: the world's current time in epoch milliseconds."""
    return json_response(200, {"serverTime": server.world_now_s() * 1000})


def exchange_info(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/exchangeInfo``: BTCUSDT's trading rules at the world's current time."""
    symbol = param(params, "symbol")
    if symbol is not None and symbol != BINANCE_SYMBOL:
        raise HttpError(400, _BINANCE_INVALID_SYMBOL)
    info = dict(_EXCHANGE_INFO_BTCUSDT, serverTime=server.world_now_s() * 1000)
    return json_response(200, info)


def ticker_24hr(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/ticker/24hr``: the 24h rolling ticker, an object for ``symbol`` and an array
    otherwise."""
    symbol = param(params, "symbol")
    symbols = param(params, "symbols")
    if symbol is not None:
        if symbol != BINANCE_SYMBOL:
            raise HttpError(400, _BINANCE_INVALID_SYMBOL)
        return json_response(200, server.query_world("ticker_24h"))
    if symbols is not None:
        try:
            wanted = json.loads(symbols)
        except ValueError:
            wanted = None
        if not isinstance(wanted, list) or any(s != BINANCE_SYMBOL for s in wanted):
            raise HttpError(400, _BINANCE_INVALID_SYMBOL)
    # Without `symbol` the answer is an array (docs/apis.md §3.5).
    return json_response(200, [server.query_world("ticker_24h")])


def _int_param(params: Params, name: str) -> int | None:
    raw = param(params, name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise HttpError(
            400, {"code": -1100, "msg": f"Illegal characters found in parameter '{name}'."}
        ) from None


def klines(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/klines``: candles of ``interval`` from ``startTime`` (else the newest) up to
    ``endTime``, at most ``limit`` (default 500, capped at 1000)."""
    symbol = param(params, "symbol")
    interval = param(params, "interval")
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
    limit = _int_param(params, "limit")
    limit = KLINES_DEFAULT_LIMIT if limit is None else min(max(limit, 1), KLINES_MAX_LIMIT)
    start_ms = _int_param(params, "startTime")
    end_ms = _int_param(params, "endTime")
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise HttpError(400, {"code": -1023, "msg": "Start time is greater than end time."})
    try:
        rows = server.query_world("klines", interval, start_ms, end_ms, limit)
    except ValueError:
        raise HttpError(400, _BINANCE_INVALID_INTERVAL) from None
    return json_response(200, rows)


ROUTES: tuple[Route, ...] = (
    route("/binance/api/v3/ping", ping),
    route("/binance/api/v3/time", server_time),
    route("/binance/api/v3/exchangeInfo", exchange_info),
    route("/binance/api/v3/ticker/24hr", ticker_24hr),
    route("/binance/api/v3/klines", klines),
)
