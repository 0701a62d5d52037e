"""Builders of real-shaped Gamma, CLOB and Binance payloads, shared by both worlds.

Every shape follows docs/apis.md and the recorded API responses the tests read
(``$BTC_TRACKER_FIXTURES``):
Gamma markets carry JSON-encoded ``outcomes``/``outcomePrices``/``clobTokenIds``,
string ``id``/``volume``/``liquidity`` beside numeric ``volumeNum``/``bestAsk``…,
and leave keys out rather than sending null (§1.6); CLOB books hold strings with
the best level last (§2.2); Binance klines are 12-element rows and the 24h ticker
uses strings for prices (§3.5, §3.6). All datetimes are naive UTC.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

EPOCH = datetime(1970, 1, 1)
BTC_IMAGE = "https://polymarket-upload.s3.us-east-2.amazonaws.com/BTC+fullsize.png"
CHAINLINK_SOURCE = "https://data.chain.link/streams/btc-usd"
BINANCE_SOURCE = "https://www.binance.com/en/trade/BTC_USDT"
UMA_ADAPTER = "0x65070BE91477460D8A7AeEb94ef92fe056C2f2A7"
CRYPTO_FEE_SCHEDULE: Mapping[str, Any] = {
    "exponent": 1,
    "rate": 0.07,
    "takerOnly": True,
    "rebateRate": 0.2,
}

# Binance spot intervals a world can serve (docs/apis.md §3.1); all align to the epoch.
INTERVAL_MS: Mapping[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

# Real tag objects (ids, labels, slugs from fixture gamma_public_search_bitcoin_above.json).
_TAGS: Mapping[str, tuple[str, str, bool, str]] = {
    "235": ("Bitcoin", "bitcoin", True, "2023-11-02T21:40:32.974Z"),
    "21": ("Crypto", "crypto", False, "2023-11-02T21:03:54.564Z"),
    "1312": ("Crypto Prices", "crypto-prices", True, "2024-02-12T22:34:50.962Z"),
    "101757": ("Recurring", "recurring", False, "2025-02-01T00:45:26.493838Z"),
    "102264": ("Weekly", "weekly", False, "2025-06-11T21:22:54.932516Z"),
    "102516": ("Multi Strikes", "multi-strikes", False, "2025-08-25T15:12:27.701606Z"),
}
TAG_UPDATED_AT = "2026-03-09T22:20:01.537313Z"
_PLAIN = re.compile(r"[A-Za-z0-9.\-]*")


# --- scalar formatting ----------------------------------------------------------------


def to_naive_utc(dt: datetime) -> datetime:
    """``dt`` as naive UTC (aware datetimes are converted, naive ones taken as UTC)."""
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo is not None else dt


def epoch_s(dt: datetime) -> float:
    """Unix seconds of a naive UTC datetime."""
    return (dt - EPOCH) / timedelta(seconds=1)


def epoch_ms(dt: datetime) -> int:
    """Unix milliseconds of a naive UTC datetime (floored)."""
    return (dt - EPOCH) // timedelta(milliseconds=1)


def from_epoch_s(seconds: float) -> datetime:
    """Naive UTC datetime of unix seconds."""
    return EPOCH + timedelta(seconds=seconds)


def iso_z(dt: datetime) -> str:
    """Gamma ISO form: ``2026-03-22T07:55:00Z`` or ``2026-03-21T07:58:17.582157Z``.

    Fractional digits are variable as in real payloads (trailing zeros dropped).
    """
    text = dt.replace(tzinfo=None).isoformat()
    return (text.rstrip("0") if dt.microsecond else text) + "Z"


def pg_time(dt: datetime) -> str:
    """Gamma ``closedTime`` form (Postgres style): ``2026-03-19 23:20:15+00``."""
    return dt.strftime("%Y-%m-%d %H:%M:%S") + "+00"


def enc(values: Iterable[Any]) -> str:
    """JSON-encoded list as Gamma sends it: ``"[\\"Up\\", \\"Down\\"]"``."""
    values = list(values)
    if all(isinstance(v, str) and _PLAIN.fullmatch(v) for v in values):
        # fast path, byte-identical to json.dumps for plain words and numbers
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"
    return json.dumps(values)


def price_str(x: float) -> str:
    """Price as inside ``outcomePrices``: ``"0.555"``, ``"1"``, ``"0"``."""
    text = f"{round(float(x), 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def num(x: float) -> int | float:
    """JSON number the way Gamma mixes them: int when integral (``"bestAsk": 1``)."""
    x = float(x)
    return int(x) if x.is_integer() else x


def fixed8(x: float) -> str:
    """Binance decimal string with 8 places: ``"60685.22000000"``."""
    return f"{float(x):.8f}"


def interval_ms(interval: str) -> int:
    """Milliseconds of a Binance interval name; ValueError for one not served."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(
            f"unsupported kline interval {interval!r}; served: {', '.join(INTERVAL_MS)}"
        ) from None


# --- Gamma ----------------------------------------------------------------------------


def tag_objects(ids: Sequence[str]) -> list[dict[str, Any]]:
    """Event ``tags`` list for the given known tag ids, in that order."""
    tags = []
    for tag_id in ids:
        label, slug, force_show, created = _TAGS[tag_id]
        tags.append(
            {
                "id": tag_id,
                "label": label,
                "slug": slug,
                "forceShow": force_show,
                "createdAt": created,
                "updatedAt": TAG_UPDATED_AT,
                "requiresTranslation": False,
            }
        )
    return tags


def series_object(
    series_id: str, slug: str, title: str, recurrence: str, created_at: str
) -> dict[str, Any]:
    """An event's ``series[0]`` entry (shape of fixture gamma_market_btc_5m_by_slug.json)."""
    return {
        "id": series_id,
        "ticker": slug,
        "slug": slug,
        "title": title,
        "seriesType": "single",
        "recurrence": recurrence,
        "image": "",
        "icon": "",
        "active": True,
        "closed": False,
        "archived": False,
        "featured": False,
        "restricted": True,
        "createdAt": created_at,
        "updatedAt": created_at,
        "commentCount": 0,
        "requiresTranslation": False,
    }


@dataclass(frozen=True, slots=True)
class MarketStatic:
    """The fixed part of a Gamma market (identity, texts, schedule)."""

    id: str
    question: str
    condition_id: str
    question_id: str
    slug: str
    resolution_source: str
    description: str
    outcomes: tuple[str, str]
    token_ids: tuple[str, str]
    start_date: datetime
    created_at: datetime
    accepting_orders_at: datetime
    end_date: datetime
    event_start: datetime | None = None
    group_item_title: str | None = None
    group_item_threshold: str = "0"
    tick: float = 0.01
    min_size: float = 5
    automatically_resolved: bool = False
    # negRiskMarketID of a neg-risk group (``negRisk: true``); None: not neg-risk.
    neg_risk_market_id: str | None = None
    # cryptoMarketConfig (newer crypto markets, e.g. settled on a 60 s TWAP); None: absent.
    crypto_config: Mapping[str, Any] | None = None
    # pre-formatted strings, filled once (a world formats thousands of markets a minute)
    text: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = {
            "endDate": iso_z(self.end_date),
            "startDate": iso_z(self.start_date),
            "createdAt": iso_z(self.created_at),
            "outcomes": enc(self.outcomes),
            "clobTokenIds": enc(self.token_ids),
            "endDateIso": self.end_date.strftime("%Y-%m-%d"),
            "startDateIso": self.start_date.strftime("%Y-%m-%d"),
            "acceptingOrdersTimestamp": iso_z(self.accepting_orders_at.replace(microsecond=0)),
        }
        if self.event_start is not None:
            text["eventStartTime"] = iso_z(self.event_start)
        object.__setattr__(self, "text", text)


@dataclass(frozen=True, slots=True)
class MarketState:
    """The part of a Gamma market that changes with time.

    ``None`` means the key is absent from the payload (``liquidity`` once closed,
    ``bestBid`` on an empty bid side, ``umaResolutionStatus`` on some closed markets).
    """

    updated_at: datetime
    outcome_prices: tuple[float, float]
    volume: float
    volume_24hr: float
    volume_1wk: float
    liquidity: float | None
    best_bid: float | None
    best_ask: float | None
    last_trade: float
    spread: float
    closed: bool
    accepting_orders: bool
    competitive: float
    closed_time: datetime | None = None
    uma_status: str | None = None
    uma_statuses: tuple[str, ...] = ()
    one_hour_change: float | None = None
    one_day_change: float | None = None


def gamma_market(
    static: MarketStatic, state: MarketState, events: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Gamma market object; with ``events`` it is the ``/markets`` form, without it
    the form nested in an event (docs/apis.md §1.4–1.6)."""
    head, tail = gamma_market_parts(static, state)
    if events is None:
        return head | tail
    return head | {"events": events} | tail


def gamma_market_parts(
    static: MarketStatic, state: MarketState
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Gamma market split where ``events`` goes (after ``negRisk``), so that both the
    ``/markets`` form and the nested form can be assembled cheaply from one build."""
    s, q, text = static, state, static.text
    volume = round(q.volume, 6)
    volume_24hr = num(round(q.volume_24hr, 6))
    liquidity = None if q.liquidity is None else round(q.liquidity, 4)
    out: dict[str, Any] = {
        "id": s.id,
        "question": s.question,
        "conditionId": s.condition_id,
        "slug": s.slug,
        "resolutionSource": s.resolution_source,
        "endDate": text["endDate"],
    }
    if liquidity is not None:
        out["liquidity"] = str(liquidity)
    out["startDate"] = text["startDate"]
    out["image"] = BTC_IMAGE
    out["icon"] = BTC_IMAGE
    out["description"] = s.description
    out["outcomes"] = text["outcomes"]
    out["outcomePrices"] = enc(price_str(p) for p in q.outcome_prices)
    out["volume"] = str(volume)
    out["active"] = True
    out["closed"] = q.closed
    out["marketMakerAddress"] = ""
    out["createdAt"] = text["createdAt"]
    out["updatedAt"] = iso_z(q.updated_at)
    if q.closed_time is not None:
        out["closedTime"] = pg_time(q.closed_time)
    out["new"] = False
    out["featured"] = False
    out["archived"] = False
    if q.closed:
        out["resolvedBy"] = UMA_ADAPTER
    out["restricted"] = True
    if s.group_item_title is not None:
        out["groupItemTitle"] = s.group_item_title
    out["groupItemThreshold"] = s.group_item_threshold
    out["questionID"] = s.question_id
    if q.closed_time is not None and q.uma_status is not None:
        out["umaEndDate"] = iso_z(q.closed_time)
    out["enableOrderBook"] = True
    out["orderPriceMinTickSize"] = s.tick
    out["orderMinSize"] = num(s.min_size)
    out["volumeNum"] = volume
    if q.uma_status is not None:
        out["umaResolutionStatus"] = q.uma_status
    if liquidity is not None:
        out["liquidityNum"] = liquidity
    out["endDateIso"] = text["endDateIso"]
    out["startDateIso"] = text["startDateIso"]
    out["hasReviewedDates"] = True
    out["volume24hr"] = volume_24hr
    out["volume1wk"] = num(round(q.volume_1wk, 6))
    out["volume1mo"] = volume
    out["volume1yr"] = volume
    out["clobTokenIds"] = text["clobTokenIds"]
    out["volume24hrClob"] = volume_24hr
    out["volumeClob"] = volume
    if liquidity is not None:
        out["liquidityClob"] = liquidity
    out["acceptingOrders"] = q.accepting_orders
    out["negRisk"] = s.neg_risk_market_id is not None
    tail: dict[str, Any] = {
        "ready": False,
        "funded": False,
        "acceptingOrdersTimestamp": text["acceptingOrdersTimestamp"],
        "cyom": False,
        "competitive": q.competitive,
        "pagerDutyNotificationEnabled": False,
        "approved": True,
        "rewardsMinSize": 50,
        "rewardsMaxSpread": 4.5,
        "spread": num(round(q.spread, 6)),
    }
    if q.closed and s.automatically_resolved:
        tail["automaticallyResolved"] = True
    if q.one_day_change is not None:
        tail["oneDayPriceChange"] = num(round(q.one_day_change, 6))
    if q.one_hour_change is not None:
        tail["oneHourPriceChange"] = num(round(q.one_hour_change, 6))
    tail["lastTradePrice"] = num(round(q.last_trade, 6))
    if q.best_bid is not None:
        tail["bestBid"] = num(round(q.best_bid, 6))
    if q.best_ask is not None:
        tail["bestAsk"] = num(round(q.best_ask, 6))
    tail |= _MARKET_FLAGS
    tail["umaResolutionStatuses"] = enc(q.uma_statuses)
    tail |= _MARKET_FLAGS_2
    if "eventStartTime" in text:
        tail["eventStartTime"] = text["eventStartTime"]
    tail |= _MARKET_FEES
    tail["feeSchedule"] = dict(CRYPTO_FEE_SCHEDULE)
    if s.neg_risk_market_id is not None:
        tail["negRiskMarketID"] = s.neg_risk_market_id
    if s.crypto_config is not None:
        tail["cryptoMarketConfig"] = dict(s.crypto_config)
    return out, tail


_MARKET_FLAGS = {
    "automaticallyActive": True,
    "clearBookOnStart": False,
    "showGmpSeries": False,
    "showGmpOutcome": False,
    "manualActivation": False,
    "negRiskOther": False,
}
_MARKET_FLAGS_2 = {"pendingDeployment": False, "deploying": False, "rfqEnabled": False}
_MARKET_FEES = {
    "holdingRewardsEnabled": False,
    "feesEnabled": True,
    "requiresTranslation": False,
    "makerRebatesFeeShareBps": 10000,
    "feeType": "crypto_fees",
}


@dataclass(frozen=True, slots=True)
class EventStatic:
    """The fixed part of a Gamma event."""

    id: str
    slug: str
    title: str
    description: str
    resolution_source: str
    start_date: datetime
    created_at: datetime
    end_date: datetime
    tag_ids: tuple[str, ...]
    series: Mapping[str, Any] | None = None
    series_slug: str | None = None
    start_time: datetime | None = None
    show_market_images: bool = True
    neg_risk: bool = False


@dataclass(frozen=True, slots=True)
class EventState:
    """The part of a Gamma event that changes with time."""

    updated_at: datetime
    closed: bool
    volume: float
    volume_24hr: float
    liquidity: float
    competitive: float
    metadata: Mapping[str, Any] | None = field(default=None)


def gamma_event(
    static: EventStatic, state: EventState, markets: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Gamma event object; with ``markets`` it is the ``/events`` form, without it
    the form embedded in a market's ``events`` list (docs/apis.md §1.5)."""
    s, q = static, state
    out: dict[str, Any] = {
        "id": s.id,
        "ticker": s.slug,
        "slug": s.slug,
        "title": s.title,
        "description": s.description,
        "resolutionSource": s.resolution_source,
        "startDate": iso_z(s.start_date),
        "creationDate": iso_z(s.start_date),
        "endDate": iso_z(s.end_date),
        "image": BTC_IMAGE,
        "icon": BTC_IMAGE,
        "active": True,
        "closed": q.closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": num(round(q.liquidity, 4)),
        "volume": num(round(q.volume, 6)),
        "openInterest": 0,
        "createdAt": iso_z(s.created_at),
        "updatedAt": iso_z(q.updated_at),
        "competitive": q.competitive,
        "volume24hr": num(round(q.volume_24hr, 6)),
        "volume1wk": num(round(q.volume, 6)),
        "volume1mo": num(round(q.volume, 6)),
        "volume1yr": num(round(q.volume, 6)),
        "enableOrderBook": True,
        "liquidityClob": num(round(q.liquidity, 4)),
        "negRisk": s.neg_risk,
        "commentCount": 0,
    }
    if markets is not None:
        out["markets"] = markets
    out["tags"] = tag_objects(s.tag_ids)
    if s.series is not None:
        out["series"] = [dict(s.series)]
    out |= {
        "cyom": False,
        "showAllOutcomes": True,
        "showMarketImages": s.show_market_images,
        "enableNegRisk": s.neg_risk,
        "automaticallyActive": True,
    }
    if s.start_time is not None:
        out["startTime"] = iso_z(s.start_time)
    if s.series_slug is not None:
        out["seriesSlug"] = s.series_slug
    out |= {
        "negRiskAugmented": False,
        "pendingDeployment": False,
        "deploying": False,
        "requiresTranslation": False,
    }
    if q.metadata is not None:
        out["eventMetadata"] = dict(q.metadata)
    return out


# --- CLOB -----------------------------------------------------------------------------


def clob_book(
    condition_id: str,
    token_id: str,
    timestamp_ms: int,
    bids: Iterable[tuple[float, float]],
    asks: Iterable[tuple[float, float]],
    tick: float,
    last_trade: float,
    min_order_size: float = 5,
) -> dict[str, Any]:
    """CLOB ``/book`` body: strings everywhere, bids ascending and asks descending so
    that the best level of each side is the LAST element (docs/apis.md §2.2)."""
    bid_levels = [
        {"price": price_str(p), "size": price_str(sz)} for p, sz in sorted(bids, key=lambda x: x[0])
    ]
    ask_levels = [
        {"price": price_str(p), "size": price_str(sz)}
        for p, sz in sorted(asks, key=lambda x: -x[0])
    ]
    digest = hashlib.sha1(
        json.dumps([condition_id, token_id, timestamp_ms, bid_levels, ask_levels]).encode()
    ).hexdigest()
    return {
        "market": condition_id,
        "asset_id": token_id,
        "timestamp": str(timestamp_ms),
        "hash": digest,
        "bids": bid_levels,
        "asks": ask_levels,
        "min_order_size": price_str(min_order_size),
        "tick_size": price_str(tick),
        "neg_risk": False,
        "last_trade_price": price_str(last_trade),
    }


def clob_market_body(
    static: MarketStatic,
    *,
    closed: bool,
    accepting_orders: bool,
    prices: Sequence[float],
    winners: Sequence[bool],
    tags: Sequence[str] = ("Crypto", "Bitcoin", "Crypto Prices"),
) -> dict[str, Any]:
    """CLOB ``/markets/{condition_id}`` body: snake_case, ``tokens[].winner``
    (fixture clob_market_resolved_katana_fdv.json)."""
    return {
        "accepting_order_timestamp": iso_z(static.accepting_orders_at.replace(microsecond=0)),
        "accepting_orders": accepting_orders,
        "active": True,
        "archived": False,
        "closed": closed,
        "condition_id": static.condition_id,
        "description": static.description,
        "enable_order_book": not closed,
        "end_date_iso": iso_z(static.end_date),
        "fpmm": "",
        "game_start_time": None,
        "icon": BTC_IMAGE,
        "image": BTC_IMAGE,
        "is_50_50_outcome": False,
        "maker_base_fee": 0,
        "market_slug": static.slug,
        "minimum_order_size": num(static.min_size),
        "minimum_tick_size": static.tick,
        "neg_risk": static.neg_risk_market_id is not None,
        "neg_risk_market_id": static.neg_risk_market_id or "",
        "neg_risk_request_id": "",
        "notifications_enabled": True,
        "question": static.question,
        "question_id": static.question_id,
        "rewards": {"max_spread": 4.5, "min_size": 50, "rates": None},
        "seconds_delay": 0,
        "tags": list(tags),
        "taker_base_fee": 0,
        "tokens": [
            {"outcome": outcome, "price": num(price), "token_id": token, "winner": winner}
            for outcome, price, token, winner in zip(
                static.outcomes, prices, static.token_ids, winners, strict=True
            )
        ],
    }


# --- Binance --------------------------------------------------------------------------

KLINE_COLUMNS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote",
    "trades",
    "taker",
    "taker_quote",
)
_SUMMED = ("volume", "quote", "trades", "taker", "taker_quote")


def resample_ohlcv(
    open_ms: np.ndarray, cols: Mapping[str, np.ndarray], target_ms: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Aggregate sorted base candles into ``target_ms`` candles aligned to the epoch (UTC):
    first open, max high, min low, last close, summed volumes/trades. Columns absent
    from ``cols`` are absent from the result; empty buckets produce no candle."""
    if len(open_ms) == 0:
        return open_ms.astype(np.int64), {k: v[:0] for k, v in cols.items()}
    buckets = (open_ms // target_ms) * target_ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(open_ms)] - 1
    out: dict[str, np.ndarray] = {}
    for name, values in cols.items():
        if name == "open":
            out[name] = values[starts]
        elif name == "close":
            out[name] = values[ends]
        elif name == "high":
            out[name] = np.maximum.reduceat(values, starts)
        elif name == "low":
            out[name] = np.minimum.reduceat(values, starts)
        elif name in _SUMMED:
            out[name] = np.add.reduceat(values, starts)
        else:
            raise ValueError(f"unknown kline column {name!r}")
    return buckets[starts].astype(np.int64), out


def kline_rows(
    open_ms: np.ndarray, interval: int, cols: Mapping[str, np.ndarray]
) -> list[list[Any]]:
    """Binance ``/api/v3/klines`` rows (docs/apis.md §3.6): ints for times and trade
    count, 8-decimal strings for prices and volumes, ``closeTime = open + interval - 1``.
    Missing optional columns (quote, trades, taker, taker_quote) are sent as zero."""
    n = len(open_ms)
    zeros = np.zeros(n)

    def col(name: str) -> list[float]:
        return cols.get(name, zeros).tolist()

    rows = []
    for t, o, h, lo, c, v, qv, nt, tb, tbq in zip(
        open_ms.tolist(),
        col("open"),
        col("high"),
        col("low"),
        col("close"),
        col("volume"),
        col("quote"),
        col("trades"),
        col("taker"),
        col("taker_quote"),
        strict=True,
    ):
        rows.append(
            [
                int(t),
                f"{o:.8f}",
                f"{h:.8f}",
                f"{lo:.8f}",
                f"{c:.8f}",
                f"{v:.8f}",
                int(t) + interval - 1,
                f"{qv:.8f}",
                round(nt),
                f"{tb:.8f}",
                f"{tbq:.8f}",
                "0",
            ]
        )
    return rows


def ticker_24h_body(
    *,
    last: float,
    open_: float,
    high: float,
    low: float,
    volume: float,
    quote_volume: float,
    close_time_ms: int,
    first_id: int,
    count: int,
    bid: float,
    ask: float,
    bid_qty: float,
    ask_qty: float,
    last_qty: float,
) -> dict[str, Any]:
    """Binance ``/api/v3/ticker/24hr?symbol=BTCUSDT`` body (docs/apis.md §3.5), consistent
    by construction: ``priceChange = last - open``, ``closeTime - openTime = 86400000``,
    ``count = lastId - firstId + 1``, ``weightedAvgPrice = quoteVolume / volume``."""
    change = round(last - open_, 2)
    vwap = quote_volume / volume if volume > 0 else last
    return {
        "symbol": "BTCUSDT",
        "priceChange": fixed8(change),
        "priceChangePercent": f"{(100.0 * change / open_) if open_ else 0.0:.3f}",
        "weightedAvgPrice": fixed8(vwap),
        "prevClosePrice": fixed8(open_),
        "lastPrice": fixed8(last),
        "lastQty": fixed8(last_qty),
        "bidPrice": fixed8(bid),
        "bidQty": fixed8(bid_qty),
        "askPrice": fixed8(ask),
        "askQty": fixed8(ask_qty),
        "openPrice": fixed8(open_),
        "highPrice": fixed8(high),
        "lowPrice": fixed8(low),
        "volume": fixed8(volume),
        "quoteVolume": fixed8(quote_volume),
        "openTime": close_time_ms - 86_400_000,
        "closeTime": close_time_ms,
        "firstId": first_id,
        "lastId": first_id + count - 1,
        "count": count,
    }
