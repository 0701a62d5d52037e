"""Polymarket CLOB API client: price history, order book, midpoint (docs/apis.md §2)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from btc_tracker_pipeline.sources.errors import at_url
from btc_tracker_pipeline.sources.gamma import (
    malformed,
    parse_bool,
    parse_number,
    parse_str,
    utc_from_unix,
)
from btc_tracker_pipeline.sources.http import JsonHttp, source_key
from btc_tracker_pipeline.sources.models import BookLevel, OrderBook, PricePoint

# §2.1: startTs/endTs spans longer than 15 days answer HTTP 400 "interval is too long".
MAX_HISTORY_SPAN = timedelta(days=15)
_MAX_SPAN_S = int(MAX_HISTORY_SPAN.total_seconds())


def unix_seconds(moment: datetime) -> float:
    """Unix seconds of a datetime; naive values are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def history_windows(start: datetime, end: datetime) -> list[tuple[int, int]]:
    """Consecutive ``(startTs, endTs)`` windows covering [start, end], each at most
    ``MAX_HISTORY_SPAN`` long: the fewest requests the API allows. Empty if end <= start."""
    start_ts = math.floor(unix_seconds(start))
    end_ts = math.ceil(unix_seconds(end))
    windows = []
    low = start_ts
    while low < end_ts:
        high = min(low + _MAX_SPAN_S, end_ts)
        windows.append((low, high))
        low = high
    return windows


def _object(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise malformed(what, "an object", raw)
    return raw


def _required_number(value: Any, field: str) -> float:
    number = parse_number(value, field)
    if number is None:
        raise malformed(field, "a number", value)
    return number


def _parse_point(raw: Any, field: str) -> PricePoint:
    item = _object(raw, field)
    t = _required_number(item.get("t"), f"{field}.t")
    if not t.is_integer():
        raise malformed(f"{field}.t", "unix seconds", item.get("t"))
    return PricePoint(t=int(t), p=_required_number(item.get("p"), f"{field}.p"))


def parse_prices_history(raw: Any) -> list[PricePoint]:
    """``{"history": [{"t": 1730419203, "p": 0.6325}, …]}`` (§2.1); ``t``/``p`` may be
    numbers or strings. Order is kept."""
    history = _object(raw, "prices-history").get("history")
    if not isinstance(history, list):
        raise malformed("history", "a list", history)
    return [_parse_point(item, f"history[{i}]") for i, item in enumerate(history)]


def _parse_levels(raw: Any, field: str) -> list[BookLevel]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise malformed(field, "a list", raw)
    levels = []
    for i, item in enumerate(raw):
        level = _object(item, f"{field}[{i}]")
        levels.append(
            BookLevel(
                price=_required_number(level.get("price"), f"{field}[{i}].price"),
                size=_required_number(level.get("size"), f"{field}[{i}].size"),
            )
        )
    return levels


def parse_book(raw: Any) -> OrderBook:
    """CLOB ``/book`` (§2.2), levels best-first: bids by falling, asks by rising price.

    The API sends bids ascending and asks descending (best level LAST) and every
    number as a string; sorting instead of reversing keeps us right if that changes.
    """
    book = _object(raw, "book")
    ts_ms = parse_number(book.get("timestamp"), "timestamp")
    bids = _parse_levels(book.get("bids"), "bids")
    asks = _parse_levels(book.get("asks"), "asks")
    return OrderBook(
        token_id=parse_str(book.get("asset_id"), "asset_id") or "",
        timestamp=None if ts_ms is None else utc_from_unix(ts_ms / 1000),
        bids=tuple(sorted(bids, key=lambda level: -level.price)),
        asks=tuple(sorted(asks, key=lambda level: level.price)),
        tick_size=parse_number(book.get("tick_size"), "tick_size"),
        min_order_size=parse_number(book.get("min_order_size"), "min_order_size"),
        last_trade_price=parse_number(book.get("last_trade_price"), "last_trade_price"),
    )


def parse_midpoint(raw: Any) -> float | None:
    """``{"mid": "0.0005"}`` (§2.3) → 0.0005; None when ``mid`` is absent or empty."""
    return parse_number(_object(raw, "midpoint").get("mid"), "mid")


def parse_clob_winner(raw: Any) -> str | None:
    """Winning token id of a CLOB market (``tokens[].winner``, §2.4); None while
    no token has won. Two winners is a malformed answer."""
    tokens = _object(raw, "market").get("tokens")
    if tokens is None:
        return None
    if not isinstance(tokens, list):
        raise malformed("tokens", "a list", tokens)
    winners = []
    for i, item in enumerate(tokens):
        token = _object(item, f"tokens[{i}]")
        if parse_bool(token.get("winner"), f"tokens[{i}].winner"):
            winners.append(parse_str(token.get("token_id"), f"tokens[{i}].token_id"))
    if len(winners) > 1:
        raise malformed("tokens[].winner", "at most one winner", winners)
    return winners[0] if winners else None


class ClobClient:
    """CLOB public market-data client. ``base_url`` like ``https://clob.polymarket.com``
    or a replay server's ``http://127.0.0.1:PORT/clob``."""

    def __init__(self, http: JsonHttp, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    def source(self) -> str:
        """Where this client's data comes from (``source_key``): the base URL and the
        world a replay server names, asked with one ``GET /time`` (the server clock)."""
        return source_key(self.base_url, self.http.world_at(f"{self.base_url}/time"))

    def server_time(self) -> datetime:
        """The server's clock (``GET /time``: Unix seconds, a bare number), naive UTC: the
        current minute of a live view, which behind a replay server is the world's."""
        url = f"{self.base_url}/time"
        body = self.http.get_json(url)
        with at_url(url):
            seconds = _required_number(body, "time")
        return utc_from_unix(seconds)

    def prices_history(
        self, token_id: str, start: datetime, end: datetime, fidelity_min: int = 1
    ) -> list[PricePoint]:
        """Price points of one outcome token in [start, end], sorted by ``t`` and
        de-duplicated, in the fewest ≤15-day requests (§2.1)."""
        url = f"{self.base_url}/prices-history"
        by_t: dict[int, PricePoint] = {}
        for start_ts, end_ts in history_windows(start, end):
            params = {
                "market": token_id,
                "startTs": start_ts,
                "endTs": end_ts,
                "fidelity": fidelity_min,
            }
            body = self.http.get_json(url, params)
            with at_url(url):
                points = parse_prices_history(body)
            for point in points:
                by_t.setdefault(point.t, point)
        return [by_t[t] for t in sorted(by_t)]

    def book(self, token_id: str) -> OrderBook:
        """Order book of one token, best level first."""
        url = f"{self.base_url}/book"
        body = self.http.get_json(url, {"token_id": token_id})
        with at_url(url):
            book = parse_book(body)
        return book if book.token_id else replace(book, token_id=token_id)

    def midpoint(self, token_id: str) -> float | None:
        """Midpoint price of one token, None if the API has none."""
        url = f"{self.base_url}/midpoint"
        body = self.http.get_json(url, {"token_id": token_id})
        with at_url(url):
            return parse_midpoint(body)

    def market(self, condition_id: str) -> dict[str, Any]:
        """Raw CLOB market (``/markets/{condition_id}``); see :func:`parse_clob_winner`."""
        url = f"{self.base_url}/markets/{condition_id}"
        body = self.http.get_json(url)
        with at_url(url):
            return dict(_object(body, "market"))
