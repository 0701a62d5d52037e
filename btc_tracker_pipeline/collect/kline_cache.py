"""1-minute klines for backfill runs, cached in the warehouse across runs and processes.

Each backfill run needs the klines of its windows and of the 24 h before them, so
consecutive day-runs overlap by a day. A run fetches only the minutes no stored span
covers, rounded up to whole 1,000-candle pages (docs/apis.md §3.6: the extra candles
cost no request) but never into the newest ``CACHE_MIN_AGE``, and stores them:
``kline_cache`` (the candles) and ``kline_spans`` (the minutes [span_start, span_end)
fetched, gaps in Binance's data included). Written in one transaction of its own; a
cache that cannot be written costs requests later, never rows.

Every row names its source (``BinanceClient.source``: the Binance base URL and the world
a replay server serves, asked once per run) and a run reads only rows of its own source.
Storing drops the rows of every other source: the cache follows the API last used.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import duckdb
import polars as pl

from btc_tracker_pipeline.collect.history_cache import CACHE_MIN_AGE, Connect
from btc_tracker_pipeline.collect.spot import klines_frame
from btc_tracker_pipeline.sources.binance import KLINES_PAGE_LIMIT, BinanceClient
from btc_tracker_pipeline.sources.errors import ApiError
from btc_tracker_pipeline.warehouse.tables import polars_schema
from btc_tracker_pipeline.warehouse.write import registered, transaction

MINUTE = timedelta(minutes=1)
# Cached candles as read back: kline_cache without its source (klines_frame's columns
# but window_start).
CANDLE_SCHEMA = polars_schema("kline_cache", exclude=("source",))

log = logging.getLogger(__name__)


def floor_minute(ts: datetime) -> datetime:
    """``ts`` truncated to the minute."""
    return ts.replace(second=0, microsecond=0)


def uncovered(
    lo: datetime, hi: datetime, spans: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The parts of [lo, hi) no span [start, end) covers, oldest first."""
    gaps = []
    cursor = lo
    for start, end in sorted(spans):
        if cursor >= hi:
            break
        if start > cursor:
            gaps.append((cursor, min(start, hi)))
        cursor = max(cursor, end)
    if cursor < hi:
        gaps.append((cursor, hi))
    return gaps


def prefetch_end(start: datetime, end: datetime, now: datetime) -> datetime:
    """Where to stop fetching [start, end): the end of its last 1,000-candle page, but
    not into the last ``CACHE_MIN_AGE`` (and never before ``end``)."""
    pages = math.ceil((end - start) / MINUTE / KLINES_PAGE_LIMIT)
    full = start + pages * KLINES_PAGE_LIMIT * MINUTE
    return max(end, min(full, floor_minute(now - CACHE_MIN_AGE)))


def read(
    conn: duckdb.DuckDBPyConnection, source: str, lo: datetime, hi: datetime
) -> tuple[list[tuple[datetime, datetime]], pl.DataFrame]:
    """(spans of ``source`` overlapping [lo, hi), its cached candles opening in [lo, hi))."""
    spans = conn.execute(
        "SELECT span_start, span_end FROM kline_spans "
        "WHERE source = ? AND span_end > ? AND span_start < ?",
        [source, lo, hi],
    ).fetchall()
    candles = conn.execute(
        "SELECT open_time, open, high, low, close, volume FROM kline_cache "
        "WHERE source = ? AND open_time >= ? AND open_time < ? ORDER BY open_time",
        [source, lo, hi],
    ).pl()
    return [(s, e) for s, e in spans], candles.cast(CANDLE_SCHEMA)  # type: ignore[arg-type]


def store(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    candles: pl.DataFrame,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    """Record [start, end) as fetched from ``source``, with its candles, in one
    transaction; the rows of any other source are dropped."""
    with registered(conn, candles) as name, transaction(conn):
        for table in ("kline_spans", "kline_cache"):
            conn.execute(f"DELETE FROM {table} WHERE source <> ?", [source])
        conn.execute("DELETE FROM kline_cache WHERE open_time >= ? AND open_time < ?", [start, end])
        conn.execute(f"INSERT INTO kline_cache BY NAME SELECT ? AS source, * FROM {name}", [source])
        conn.execute(
            "INSERT INTO kline_spans (source, span_start, span_end, fetched_at) "
            "VALUES (?, ?, ?, ?)",
            [source, start, end, now],
        )


def backfill_klines(
    client: BinanceClient,
    lo: datetime,
    hi: datetime,
    connect: Connect,
    now: datetime,
    warn: Callable[[str], None] = log.warning,
) -> pl.DataFrame:
    """Every 1-minute candle opening in [lo, hi), as ``klines_frame`` gives it: cached
    where a span covers, fetched (and stored for later runs) for the rest."""
    try:
        source = client.source()
    except ApiError as exc:  # the fetch below will tell whether the API is there
        warn(f"kline cache not used: source unknown ({exc.__class__.__name__}: {exc})")
        return klines_frame(client.klines(lo, hi, "1m"))
    with connect() as conn:
        spans, cached = read(conn, source, lo, hi)
    gaps = uncovered(lo, hi, spans)
    if not gaps:
        return cached
    start, end = gaps[0][0], prefetch_end(gaps[0][0], gaps[-1][1], now)
    fetched = klines_frame(client.klines(start, end, "1m"))
    # Minutes after the newest candle returned stay uncached (an empty or cut-short answer).
    newest = fetched["open_time"].max() if not fetched.is_empty() else start - MINUTE
    keep_to = min(end, floor_minute(now - CACHE_MIN_AGE), newest + MINUTE)  # type: ignore[operator]
    if keep_to > start:
        try:
            with connect() as conn:
                candles = fetched.filter(pl.col("open_time") < keep_to)
                store(conn, source, candles, start, keep_to, now)
        except Exception as exc:  # the windows are written regardless; later runs refetch
            warn(f"kline cache not written ({exc.__class__.__name__}: {exc})")
    t = pl.col("open_time")
    return pl.concat(
        [cached.filter((t < start) | (t >= end)), fetched.filter((t >= lo) & (t < hi))]
    ).sort("open_time")
