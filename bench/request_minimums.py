"""The fewest requests the APIs allow for a backfill (docs/apis.md §2.1, §3.6), read from
the warehouse it wrote; ``backfill_requests.py`` and ``backfill_30d.py`` compare to them.

* per run: what one run per day of windows allows if runs share nothing — one
  prices-history call per YES token per day-run it is tracked in, ceil((24 h lookback +
  the run's minutes) / 1000) kline pages per run;
* whole range: what the APIs allow — one prices-history call per token per 15 days of
  the history it needs, ceil((24 h + every minute of the range) / 1000) kline pages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import duckdb

from btc_tracker_pipeline.collect.snapshots import MAX_QUOTE_AGE, SETTLE_AFTER_EXPIRY
from btc_tracker_pipeline.runner import chunks

KLINE_PAGE = 1000  # candles per Binance klines page (docs/apis.md §3.6)
HISTORY_SPAN = timedelta(days=15)  # longest prices-history request (docs/apis.md §2.1)
LOOKBACK_MIN = 24 * 60  # btc_spot_prices reads 24 h of klines before its first window


def token_minimums(conn: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(Σ distinct YES tokens per day-run, Σ ceil(needed history / 15 days) per token).

    A token's needed history runs from 30 min before the first window it is tracked in
    (or its listing) to the end of its last window (or 2 h after expiry), as in
    ``collect.snapshots.history_span``."""
    per_run = conn.execute(
        "SELECT sum(n) FROM (SELECT count(DISTINCT yes_token_id) AS n FROM tracked_markets "
        "WHERE yes_token_id IS NOT NULL GROUP BY date_trunc('day', window_start))"
    ).fetchone()[0]
    spans = conn.execute(
        "SELECT min(window_start), max(window_end), min(start_date), max(expiry) "
        "FROM tracked_markets WHERE yes_token_id IS NOT NULL GROUP BY yes_token_id"
    ).fetchall()
    needed = 0
    for first, last, listed, expiry in spans:
        lo = first - MAX_QUOTE_AGE if listed is None else max(first - MAX_QUOTE_AGE, listed)
        hi = last if expiry is None else min(last, expiry + SETTLE_AFTER_EXPIRY)
        if lo < hi:
            needed += math.ceil((hi - lo) / HISTORY_SPAN)
    return int(per_run or 0), needed


def kline_minimums(keys: Sequence[str]) -> tuple[int, int]:
    """(kline pages if each day-run fetched its own lookback, pages for the whole range)."""
    per_run = sum(math.ceil((LOOKBACK_MIN + len(c) * 15) / KLINE_PAGE) for c in chunks(keys))
    whole = math.ceil((LOOKBACK_MIN + len(keys) * 15) / KLINE_PAGE)
    return per_run, whole
