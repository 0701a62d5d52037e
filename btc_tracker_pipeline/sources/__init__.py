"""Pure API clients for Gamma, CLOB and Binance (no Dagster import here).

``models`` holds the records they return, ``errors`` the typed failures,
``http`` the retrying JSON transport shared by the Polymarket clients.
"""

from btc_tracker_pipeline.sources.binance import BinanceClient
from btc_tracker_pipeline.sources.clob import MAX_HISTORY_SPAN, ClobClient, history_windows
from btc_tracker_pipeline.sources.errors import (
    ApiError,
    ClientError,
    CursorLoopError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from btc_tracker_pipeline.sources.gamma import GammaClient
from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client
from btc_tracker_pipeline.sources.models import (
    BookLevel,
    GammaEvent,
    GammaMarket,
    Kline,
    OrderBook,
    PricePoint,
    Ticker24h,
)

__all__ = [
    "MAX_HISTORY_SPAN",
    "ApiError",
    "BinanceClient",
    "BookLevel",
    "ClientError",
    "ClobClient",
    "CursorLoopError",
    "GammaClient",
    "GammaEvent",
    "GammaMarket",
    "HttpSettings",
    "JsonHttp",
    "Kline",
    "MalformedResponseError",
    "NotFoundError",
    "OrderBook",
    "PricePoint",
    "RateLimitedError",
    "ServerError",
    "Ticker24h",
    "TransportError",
    "history_windows",
    "make_client",
]
