"""CLOB and Binance parsers on the real recorded responses the tests read
(``$BTC_TRACKER_FIXTURES``)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ccxt
import pytest

from btc_tracker_pipeline.sources.binance import (
    parse_ohlcv,
    parse_raw_klines,
    parse_ticker,
    to_ms,
)
from btc_tracker_pipeline.sources.clob import (
    MAX_HISTORY_SPAN,
    history_windows,
    parse_book,
    parse_clob_winner,
    parse_midpoint,
    parse_prices_history,
)
from btc_tracker_pipeline.sources.models import BookLevel, PricePoint

pytestmark = pytest.mark.unit

UP_TOKEN_5M = "94242206871221370391055736153305071391564432448684801902267396130896523340261"


def load(fixtures_dir: Path, name: str) -> Any:
    return json.loads((fixtures_dir / name).read_text())


# ---------------------------------------------------------------- CLOB


def test_book_best_first(fixtures_dir: Path) -> None:
    book = parse_book(load(fixtures_dir, "clob_book_btc_5m_up_token.json"))

    assert book.token_id == UP_TOKEN_5M
    assert book.bids == ()
    assert book.best_bid is None
    assert book.best_ask == 0.001
    assert len(book.asks) == 104
    assert book.asks[0] == BookLevel(price=0.001, size=385409.39)
    assert book.asks[1] == BookLevel(price=0.009, size=100.0)
    assert book.asks[-1] == BookLevel(price=0.999, size=530.0)
    prices = [level.price for level in book.asks]
    assert prices == sorted(prices)
    assert book.timestamp == datetime(2026, 3, 22, 7, 56, 41, 606000)
    assert (book.tick_size, book.min_order_size, book.last_trade_price) == (0.001, 5.0, 0.999)


def test_book_bids_ascending_in_api_come_back_best_first() -> None:
    # §2.2: a non-empty bid side is ascending with the best bid last.
    raw = {
        "asset_id": "1",
        "bids": [{"price": "0.001", "size": "3147.19"}, {"price": "0.002", "size": "1432.11"}],
        "asks": [{"price": "0.01", "size": "5"}, {"price": "0.003", "size": "7"}],
    }

    book = parse_book(raw)

    assert [b.price for b in book.bids] == [0.002, 0.001]
    assert book.best_bid == 0.002 and book.best_ask == 0.003
    assert book.timestamp is None and book.tick_size is None


def test_midpoint(fixtures_dir: Path) -> None:
    assert parse_midpoint(load(fixtures_dir, "clob_midpoint_btc_5m_up_token.json")) == 0.0005
    assert parse_midpoint({"mid": None}) is None


def test_clob_market_winner(fixtures_dir: Path) -> None:
    raw = load(fixtures_dir, "clob_market_resolved_katana_fdv.json")

    assert parse_clob_winner(raw) == (
        "89711174926330519158043401581181146613785179104141808554061413232025882707365"
    )
    for token in raw["tokens"]:
        token["winner"] = False
    assert parse_clob_winner(raw) is None


def test_prices_history(fixtures_dir: Path) -> None:
    points = parse_prices_history(load(fixtures_dir, "clob_prices_history_daily_trimmed.json"))

    assert len(points) == 16
    assert points[0] == PricePoint(t=1729555202, p=0.649)
    assert points[-1] == PricePoint(t=1730851202, p=0.58)
    assert PricePoint(t=1730419203, p=0.6325) in points
    assert all(isinstance(p.t, int) and isinstance(p.p, float) for p in points)


def test_prices_history_accepts_strings() -> None:
    points = parse_prices_history({"history": [{"t": "1730419203", "p": "0.6325"}]})

    assert points == [PricePoint(t=1730419203, p=0.6325)]


def test_history_windows_minimum_count() -> None:
    start = datetime(2026, 1, 1)

    forty_days = history_windows(start, start + timedelta(days=40))
    exactly_15 = history_windows(start, start + MAX_HISTORY_SPAN)
    just_over = history_windows(start, start + MAX_HISTORY_SPAN + timedelta(seconds=1))

    assert len(forty_days) == 3
    assert forty_days[0][0] == 1767225600
    assert forty_days[-1][1] == 1767225600 + 40 * 86400
    assert all(b - a <= 1_296_000 for a, b in forty_days)
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(forty_days))
    assert len(exactly_15) == 1 and len(just_over) == 2
    assert history_windows(start, start) == []


# ---------------------------------------------------------------- Binance


def test_raw_klines(fixtures_dir: Path) -> None:
    klines = parse_raw_klines(load(fixtures_dir, "binance_klines_btcusdt_1m.json"))

    assert len(klines) == 10
    first = klines[0]
    assert first.open_time == datetime(2021, 10, 22, 23, 3)
    assert (first.open, first.high, first.low, first.close) == (
        60685.22,
        60729.84,
        60670.9,
        60719.27,
    )
    assert first.volume == 21.63272
    gaps = {b.open_time - a.open_time for a, b in itertools.pairwise(klines)}
    assert gaps == {timedelta(minutes=1)}
    assert klines[-1].open_time == datetime(2021, 10, 22, 23, 12)


def test_ohlcv_rows_from_ccxt() -> None:
    klines = parse_ohlcv([[1634943780000, 60685.22, 60729.84, 60670.9, 60719.27, 21.63272]])

    assert klines[0].open_time == datetime(2021, 10, 22, 23, 3)
    assert klines[0].close == 60719.27


def ccxt_ticker(raw: dict[str, Any]) -> dict[str, Any]:
    """ccxt's own mapping of a raw 24hr object (no network)."""
    return ccxt.binance().parse_ticker(raw)


def test_ticker_single_symbol(fixtures_dir: Path) -> None:
    ticker = parse_ticker(ccxt_ticker(load(fixtures_dir, "binance_ticker_24hr_btcusdt.json")))

    assert ticker.last == 81472.77
    assert (ticker.bid, ticker.ask) == (81472.76, 81472.77)
    assert ticker.change_pct == 0.529
    assert ticker.open == 81044.0
    assert (ticker.high, ticker.low) == (82100.0, 80126.04)
    assert ticker.base_volume == 12362.3332
    assert ticker.quote_volume == pytest.approx(999748113.6258255)
    assert ticker.vwap == 80870.50376751
    assert ticker.timestamp == datetime(2026, 9, 21, 2, 22, 9, 5000)


def test_ticker_symbols_array(fixtures_dir: Path) -> None:
    rows = load(fixtures_dir, "binance_ticker_24hr_symbols_btcusdt_ethusdt.json")

    btc, eth = (parse_ticker(ccxt_ticker(row)) for row in rows)

    assert [row["symbol"] for row in rows] == ["BTCUSDT", "ETHUSDT"]
    assert btc.last == 81472.77 and btc.change_pct == 0.529
    assert (eth.last, eth.change_pct) == (2665.11, 1.864)
    assert eth.timestamp == datetime(2026, 9, 21, 2, 22, 9, 13000)


def test_to_ms_is_exact() -> None:
    assert to_ms(datetime(2021, 10, 22, 23, 3)) == 1634943780000
    assert to_ms(datetime(2021, 10, 22, 23, 3, 0, 999)) == 1634943780000
