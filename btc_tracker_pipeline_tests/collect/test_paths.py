"""The minute-path core (collect/paths.py) on hand-made frames."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from btc_tracker_pipeline.collect.paths import (
    path_candidates,
    path_errors,
    path_minutes,
    path_rows,
)
from btc_tracker_pipeline.collect.snapshots import Histories
from btc_tracker_pipeline.sources.models import PricePoint

pytestmark = pytest.mark.unit

W0 = datetime(2026, 3, 1, 12, 0)
MIN = timedelta(minutes=1)
WINDOW = timedelta(minutes=15)


def tracked(*markets: tuple[str, str, datetime, timedelta], window: datetime = W0) -> pl.DataFrame:
    """tracked_markets rows of one window: (id, family, open, length) per market."""
    return pl.DataFrame(
        [
            {
                "window_start": window,
                "window_end": window + WINDOW,
                "market_id": market_id,
                "family": family,
                "yes_token_id": f"t{market_id}",
                "reference_start": start,
                "expiry": start + length,
                "start_date": start - timedelta(days=1),
            }
            for market_id, family, start, length in markets
        ]
    )


def epoch(ts: datetime) -> int:
    return int((ts - datetime(1970, 1, 1)).total_seconds())


def test_minutes_lie_in_the_window_and_in_the_market_s_own_window():
    frame = tracked(
        ("a", "updown_5m", W0 + 10 * MIN, 5 * MIN),
        ("b", "updown_1h", W0 - 30 * MIN, timedelta(hours=1)),
        ("c", "updown_5m", W0 + WINDOW, 5 * MIN),  # listed ahead, opens after the window
        ("d", "above", W0 - timedelta(days=1), timedelta(days=2)),  # not a path family
    )
    minutes = path_minutes(frame)
    got = minutes.group_by("market_id").agg(
        pl.col("offset_min").min().alias("first"),
        pl.col("offset_min").max().alias("last"),
        pl.len(),
    )
    assert sorted(got.rows()) == [("a", 0, 4, 5), ("b", 30, 44, 15)]
    b = minutes.filter(pl.col("market_id") == "b")
    assert b["minute_ts"].to_list() == [W0 + i * MIN for i in range(15)]
    assert b["minutes_left"].to_list() == [30.0 - i for i in range(15)]
    assert path_minutes(frame, ["above"])["market_id"].unique().to_list() == ["d"]


def test_a_price_is_the_newest_point_no_older_than_the_limit_and_failed_tokens_get_no_rows():
    frame = tracked(("a", "updown_5m", W0, 5 * MIN), ("b", "updown_5m", W0 + 5 * MIN, 5 * MIN))
    minutes = path_minutes(frame)
    points = [PricePoint(epoch(W0) - 40 * 60, 0.5), PricePoint(epoch(W0 + 2 * MIN) + 3, 0.61)]
    histories = Histories(
        points={"ta": points}, errors={"tb": "HTTPError: 503"}, max_age=timedelta(minutes=30)
    )
    klines = pl.DataFrame(
        {
            "open_time": [W0 - MIN + i * MIN for i in range(16)],
            "close": [100.0 + i for i in range(16)],
        }
    )
    rows = path_rows(minutes, histories, klines)
    assert rows["market_id"].unique().to_list() == ["a"]
    # 12:00-12:02 only see the 40-minute-old point (stale); 12:03 and 12:04 the 12:02:03 one.
    assert rows["price"].to_list() == [None, None, None, 0.61, 0.61]
    assert rows["quote_age_s"].to_list() == [None, None, None, 57.0, 117.0]
    assert rows["btc_close"].to_list() == [100.0, 101.0, 102.0, 103.0, 104.0]
    errors = path_errors(minutes, histories)
    assert errors.rows() == [(W0, "market b: HTTPError: 503")]


def test_candidates_include_a_market_only_the_window_before_listed():
    before = tracked(("a", "updown_5m", W0 + 5 * MIN, 5 * MIN), window=W0 - WINDOW)
    now = tracked(("b", "updown_15m", W0 + WINDOW, WINDOW))  # listed ahead, not in the window
    frame = path_candidates(pl.concat([before, now]), [(W0, W0 + WINDOW)])
    assert frame.select("window_start", "market_id").rows() == [(W0, "a")]
