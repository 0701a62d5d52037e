"""Warehouse reads shared by the model assets: labelled data and edge-report inputs."""

from datetime import datetime, timedelta

import duckdb
import polars as pl

from btc_tracker_pipeline.features.path_features import as_of_quote, path_features
from btc_tracker_pipeline.model.spreads import warehouse_spread_estimates

# One row per (window, market): indicators + the book + the market's fee schedule.
EDGE_INPUTS_SQL = """
SELECT i.*, t.question, coalesce(t.event_slug, i.market_id) AS cluster,
       i.market_probability AS market_prob, s.best_bid, s.best_ask,
       t.fees_enabled, t.fee_rate, t.fee_exponent, t.parse_source
FROM market_indicators i
JOIN market_snapshots s USING (window_start, market_id)
JOIN tracked_markets t USING (window_start, market_id)
WHERE i.window_start >= ? AND i.window_start < ?
ORDER BY i.window_start, i.market_id
"""


def edge_inputs(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> pl.DataFrame:
    """Indicator rows of [start, end) with what an edge report needs beside them,
    including the ``spread_estimate`` of the warehouse's live books (``model.spreads``)."""
    return warehouse_spread_estimates(conn, conn.execute(EDGE_INPUTS_SQL, [start, end]).pl())


def newest_indicator_window(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """Start of the newest window that has indicator rows (what an edge report reads)."""
    return conn.sql("SELECT max(window_start) FROM market_indicators").fetchone()[0]


def training_tables(
    conn: duckdb.DuckDBPyConnection,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(indicators of resolved markets, resolutions, one static row per market with its
    ``neg_risk`` / ``twap_settled`` flags from any of its ``tracked_markets`` rows)."""
    resolutions = conn.sql("SELECT * FROM market_resolutions").pl()
    indicators = conn.sql(
        "SELECT * FROM market_indicators WHERE market_id IN "
        "(SELECT market_id FROM market_resolutions WHERE status = 'resolved')"
    ).pl()
    markets = conn.sql(
        "SELECT m.market_id, m.event_slug, m.start_date, m.end_date AS expiry, "
        "f.neg_risk, f.twap_settled FROM markets m LEFT JOIN ("
        "SELECT market_id, bool_or(neg_risk) AS neg_risk, bool_or(twap_settled) AS twap_settled "
        "FROM tracked_markets GROUP BY market_id) f USING (market_id)"
    ).pl()
    return indicators, resolutions, markets


# The in-window rows of resolved up/down markets with their terms (reference start and
# expiry from the market's newest tracked_markets row, as the path itself may lack the
# family). Spot and time left are then taken as of the quote (features.path_features.
# as_of_quote), as the oracle scores the same information time (model.oracle: minute −
# quote age).
TRAINING_PATHS_SQL = """
WITH terms AS (
    SELECT market_id,
           arg_max(reference_start, window_start) AS reference_start,
           arg_max(expiry, window_start) AS expiry,
           arg_max(family, window_start) AS tracked_family
    FROM tracked_markets GROUP BY market_id
)
SELECT p.window_start, p.market_id, p.minute_ts, p.offset_min, p.price, p.quote_ts,
       p.quote_age_s, coalesce(p.family, t.tracked_family) AS family,
       t.reference_start, t.expiry
FROM market_paths p JOIN terms t USING (market_id)
WHERE t.reference_start IS NOT NULL AND t.expiry IS NOT NULL
  AND p.market_id IN (SELECT market_id FROM market_resolutions WHERE status = 'resolved')
ORDER BY p.market_id, p.minute_ts
"""
# BTC 1-minute klines from 24 h before the earliest open (path_sigma) to the last minute.
PATH_KLINES_SQL = """
SELECT open_time, open, high, low, close FROM btc_spot_prices
WHERE open_time >= ? - INTERVAL 24 HOUR AND open_time < ?
ORDER BY open_time
"""


def training_paths(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The in-window rows of resolved up/down markets: ``market_paths`` with each
    market's ``reference_start``/``expiry`` and spot and time left as of the quote
    (TRAINING_PATHS_SQL, ``as_of_quote``), through ``features.path_features`` over the
    klines of
    ``btc_spot_prices`` (empty when there are no paths)."""
    paths = conn.execute(TRAINING_PATHS_SQL).pl()
    if paths.is_empty():
        return path_features(paths.with_columns(pl.lit(None).alias("btc_close")), pl.DataFrame())
    first, last = paths["reference_start"].min(), paths["minute_ts"].max()
    klines = conn.execute(PATH_KLINES_SQL, [first, last]).pl()
    return path_features(as_of_quote(paths, klines), klines)


# One row per (market, path minute): what the edge report needs of an in-window row. No
# book was recorded at the minute: the spread is the warehouse's estimate (or default).
PATH_EDGE_INPUTS_SQL = """
SELECT p.window_start AS path_window_start, p.market_id, p.minute_ts AS snapshot_ts,
       coalesce(p.quote_ts, p.minute_ts) AS quote_ts,
       t.family, t.question, coalesce(t.event_slug, p.market_id) AS cluster,
       p.price AS market_prob, p.price AS market_probability,
       CAST(NULL AS DOUBLE) AS best_bid, CAST(NULL AS DOUBLE) AS best_ask,
       t.fees_enabled, t.fee_rate, t.fee_exponent,
       p.minutes_left / 60.0 AS time_to_expiry_hours,
       CASE WHEN p.btc_close IS NULL THEN 0 ELSE 1 END AS q_spot,
       t.parse_source, false AS barrier_touched, CAST(NULL AS DOUBLE) AS liquidity
FROM market_paths p JOIN (
    -- A market's newest terms: a live tick's window need not list a market that closed
    -- inside it (its path comes from an earlier tick's row, collect.paths).
    SELECT * FROM tracked_markets WHERE market_id IN (SELECT market_id FROM market_paths)
    QUALIFY row_number() OVER (PARTITION BY market_id ORDER BY window_start DESC) = 1
) t USING (market_id)
WHERE p.minute_ts >= ? AND p.minute_ts <= ?
ORDER BY p.minute_ts, p.market_id
"""


def path_edge_inputs(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, entry_lag: timedelta
) -> pl.DataFrame:
    """Path minutes in [start, end] as edge-report inputs, with ``spread_estimate``.

    ``window_start`` is the row's quote time less ``entry_lag``: paper trading fills a
    row at ``window_start`` + its entry lag (a window row's snapshot), so a path row
    fills at its quote's time, at that quote (± the spread), which is also its
    information time (spot as of the quote, ``training_paths``). Filling a quote up to a
    minute old at the row's minute would trade a price the market had already left."""
    rows = conn.execute(PATH_EDGE_INPUTS_SQL, [start, end]).pl()
    rows = rows.unique(["market_id", "snapshot_ts"], keep="first", maintain_order=True)
    rows = rows.with_columns((pl.col("quote_ts") - entry_lag).alias("window_start"))
    return warehouse_spread_estimates(conn, rows)
