"""Typed records the API clients return. No I/O here.

All datetimes are naive UTC (``tzinfo=None``), as stored in DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class GammaMarket:
    """One Gamma market object, parsed (docs/apis.md §1.6)."""

    id: str
    question: str
    slug: str
    condition_id: str | None
    description: str
    outcomes: tuple[str, ...]
    # None when the field is absent; one float per outcome otherwise.
    outcome_prices: tuple[float, ...] | None
    token_ids: tuple[str, ...]
    start_date: datetime | None
    end_date: datetime | None
    event_start_time: datetime | None
    closed_time: datetime | None
    active: bool
    closed: bool
    accepting_orders: bool | None
    volume: float | None
    liquidity: float | None
    volume_24h: float | None
    best_bid: float | None
    best_ask: float | None
    last_trade_price: float | None
    spread: float | None
    group_item_title: str | None
    group_item_threshold: str | None
    uma_resolution_status: str | None
    fees_enabled: bool | None
    fee_rate: float | None
    fee_exponent: float | None
    tick_size: float | None
    resolution_source: str | None
    event_id: str | None
    event_slug: str | None
    event_title: str | None
    series_slug: str | None
    # eventMetadata.priceToBeat: the reference price at an up/down window start.
    price_to_beat: float | None
    tag_ids: tuple[str, ...] = field(default_factory=tuple)
    # negRisk / negRiskMarketID: one of a neg-risk group (its NO converts to YES of the
    # others); None when the field is absent.
    neg_risk: bool | None = None
    neg_risk_market_id: str | None = None
    # cryptoMarketConfig.twapEnabled / twapLookbackSeconds: settled on a TWAP of the feed
    # (Chainlink's 60-second TWAP), not on one price; None when absent.
    twap_enabled: bool | None = None
    twap_lookback_seconds: float | None = None


@dataclass(frozen=True)
class GammaEvent:
    """One Gamma event with its nested markets (docs/apis.md §1.5)."""

    id: str
    slug: str
    title: str
    series_slug: str | None
    start_date: datetime | None
    end_date: datetime | None
    closed: bool
    markets: tuple[GammaMarket, ...]
    tag_ids: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PricePoint:
    """One CLOB prices-history point: ``t`` unix seconds, ``p`` in [0, 1]."""

    t: int
    p: float


@dataclass(frozen=True)
class BookLevel:
    price: float
    size: float


@dataclass(frozen=True)
class OrderBook:
    """CLOB ``/book``. ``bids``/``asks`` are best-first (we reverse the API order)."""

    token_id: str
    timestamp: datetime | None
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    tick_size: float | None
    min_order_size: float | None
    last_trade_price: float | None

    @property
    def best_bid(self) -> float | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0].price if self.asks else None


@dataclass(frozen=True)
class Kline:
    """One OHLCV candle; ``open_time`` is the candle start (naive UTC)."""

    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class Ticker24h:
    """Binance 24h rolling ticker (docs/apis.md §3.5)."""

    timestamp: datetime
    last: float
    bid: float | None
    ask: float | None
    open: float | None
    high: float | None
    low: float | None
    change_pct: float | None
    base_volume: float | None
    quote_volume: float | None
    vwap: float | None
