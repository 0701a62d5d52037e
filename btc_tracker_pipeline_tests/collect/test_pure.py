"""Pure collection helpers: quote at a window end, spans, live/history, run status, spot."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from btc_tracker_pipeline.collect.history_cache import cache_source
from btc_tracker_pipeline.collect.runs import RunRecord, is_live
from btc_tracker_pipeline.collect.snapshots import (
    MAX_QUOTE_AGE,
    Histories,
    history_snapshot_frame,
    history_span,
    quote_at,
    to_unix,
)
from btc_tracker_pipeline.collect.spot import klines_frame, window_stats
from btc_tracker_pipeline.sources.models import Kline, PricePoint

pytestmark = pytest.mark.unit

END = datetime(2026, 3, 1, 10, 15)


def test_quote_is_the_last_point_at_or_before_the_window_end():
    points = [
        PricePoint(to_unix(END) + d, p) for d, p in ((-120, 0.4), (-3, 0.5), (0, 0.6), (2, 0.9))
    ]
    assert quote_at(points, END).p == 0.6
    assert quote_at(points[:2], END).p == 0.5
    assert quote_at(points[3:], END) is None


def test_stale_quote_is_no_quote():
    points = [PricePoint(to_unix(END - timedelta(minutes=31)), 0.5)]
    assert quote_at(points, END) is None


def test_the_staleness_limit_is_a_parameter():
    points = [PricePoint(to_unix(END - timedelta(minutes=45)), 0.5)]
    assert quote_at(points, END) is None
    assert quote_at(points, END, timedelta(minutes=90)).p == 0.5
    assert quote_at(points, END, timedelta(minutes=45)).p == 0.5
    start, end = datetime(2026, 3, 1), datetime(2026, 3, 2)
    assert history_span(None, None, start, end, timedelta(minutes=90)) == (
        start - timedelta(minutes=90),
        end,
    )
    # The backfill cache keeps quotes decided under one limit apart from another's.
    assert cache_source("http://c/clob", MAX_QUOTE_AGE) == "http://c/clob"
    assert cache_source("http://c/clob", timedelta(minutes=90)) == (
        "http://c/clob|max_quote_age_s=5400"
    )


def test_history_snapshots_keep_the_quote_age():
    end = END
    tracked = pl.DataFrame({"market_id": ["m1", "m2"], "yes_token_id": ["t1", "t2"]})
    histories = Histories(
        points={
            "t1": [PricePoint(to_unix(end - timedelta(minutes=44, seconds=57)), 0.4)],
            "t2": [PricePoint(to_unix(end - timedelta(minutes=3)), 0.7)],
        },
        max_age=timedelta(minutes=90),
    )
    frame = history_snapshot_frame(tracked, histories, end - timedelta(minutes=15), end)
    assert frame["quote_age_s"].to_list() == [2697.0, 180.0]
    assert history_snapshot_frame(
        tracked, Histories(points=histories.points), end - timedelta(minutes=15), end
    )["market_id"].to_list() == ["m2"]


def test_history_span_is_clipped_to_the_market_life():
    start, end = datetime(2026, 3, 1), datetime(2026, 3, 2)
    assert history_span(None, None, start, end) == (start - timedelta(minutes=30), end)
    created = datetime(2026, 3, 1, 12)
    expiry = datetime(2026, 3, 1, 13)
    assert history_span(created, expiry, start, end) == (created, expiry + timedelta(hours=2))
    assert history_span(datetime(2026, 3, 3), None, start, end) is None


def test_live_only_just_after_the_window():
    assert is_live(END, END + timedelta(minutes=2))
    assert not is_live(END, END + timedelta(minutes=11))
    assert not is_live(END, END - timedelta(seconds=1))


def test_run_status():
    r = RunRecord("market_snapshots", END - timedelta(minutes=15), END)
    r.markets_tried, r.markets_ok = 10, 10
    assert r.status == "ok"
    r.markets_ok = 8
    r.errors.append("market 1: ServerError")
    assert r.status == "partial"
    r.markets_ok = 0
    assert r.status == "failed"
    assert r.frame()["errors"][0] == '["market 1: ServerError"]'


def test_spot_window_stats_from_klines():
    start = END - timedelta(hours=24, minutes=15)
    klines = [
        Kline(start + timedelta(minutes=i), 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 1.0)
        for i in range(24 * 60 + 15)
    ]
    frame = klines_frame(klines)
    stats = window_stats(frame, END - timedelta(minutes=15), END).row(0, named=True)
    last_close = 100.5 + 24 * 60 + 14
    assert stats["spot_price"] == last_close and stats["source"] == "klines"
    day_open = 100.0 + 15  # first candle of the 24 h before END
    assert abs(stats["change_24h_pct"] - (last_close - day_open) / day_open * 100) < 1e-9
    assert stats["volume_24h"] == 1440.0
    assert window_stats(frame, END, END + timedelta(minutes=15)).is_empty()
    assert isinstance(frame, pl.DataFrame)
