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


# The path minutes of the up/down markets of the windows [$1, $2) that precede a window
# end by at most the longest lag (5 min), with each market's terms.
RECENT_PATHS_SQL = """
WITH terms AS (
    SELECT market_id,
           arg_max(reference_start, window_start) AS reference_start,
           arg_max(expiry, window_start) AS expiry
    FROM tracked_markets
    WHERE window_start >= $1 - INTERVAL 1 DAY AND window_start < $2
      AND family LIKE 'updown%'
    GROUP BY market_id
)
SELECT p.market_id, p.minute_ts, p.price, p.quote_ts, p.quote_age_s, p.family,
       t.reference_start, t.expiry
FROM market_paths p JOIN terms t USING (market_id)
WHERE p.window_start >= $1 AND p.window_start < $2
  AND minute(p.minute_ts) % 15 >= 9
"""


def with_path_inputs(conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> pl.DataFrame:
    """The model's inputs for ``rows`` (``edge_inputs``), in their order: an opened
    up/down row with a minute path becomes the row training builds for a path minute
    (``model.dataset.path_rows``; identity: ``market_id``, ``snapshot_ts``, ``family``),
    the window end being one more minute of the path: its price the snapshot's, its quote
    the snapshot's quote, its lags over the path minutes before it. A model that learned
    up/down markets from their paths then scores it as one of them; on its window-end
    indicators it would score inputs it never saw (no path features, another σ and time
    left, indicators its path rows lack). Rows without a path are returned as they are."""
    from btc_tracker_pipeline.model.dataset import path_rows

    updown = (
        pl.col("family").str.starts_with("updown")
        & pl.col("reference_price").is_not_null()
        & pl.col("market_probability").is_not_null()
    )
    ends = rows.filter(updown)
    if ends.is_empty():
        return rows
    start, end = ends["window_start"].min(), ends["window_start"].max() + timedelta(minutes=15)
    recent = conn.execute(RECENT_PATHS_SQL, [start, end]).pl()
    terms = recent.select("market_id", "reference_start", "expiry").unique("market_id")
    if terms.is_empty():
        return rows
    at_end = ends.join(terms, on="market_id").select(
        "market_id",
        pl.col("snapshot_ts").cast(pl.Datetime("us")).alias("minute_ts"),
        pl.col("market_probability").alias("price"),
        # A live snapshot is fetched seconds after the window end (a negative age): its
        # spot is the window end's, the newest candle there is.
        (
            pl.col("snapshot_ts")
            - pl.duration(seconds=pl.col("quote_age_s").fill_null(0.0).clip(lower_bound=0.0))
        )
        .cast(pl.Datetime("us"))
        .alias("quote_ts"),
        pl.col("quote_age_s").fill_null(0.0),
        "family",
        "reference_start",
        "expiry",
    )
    paths = pl.concat([recent, at_end], how="diagonal_relaxed")
    first, last = paths["reference_start"].min(), paths["minute_ts"].max()
    klines = conn.execute(PATH_KLINES_SQL, [first, last + timedelta(minutes=1)]).pl()
    features = path_features(as_of_quote(paths, klines), klines).join(
        at_end.select("market_id", "minute_ts"), on=["market_id", "minute_ts"], how="semi"
    )
    inputs = path_rows(features.with_columns(pl.col("minute_ts").alias("window_start"))).drop(
        "family", "window_start", "_path"
    )
    # A row with a path reaches the model as training's path row: the path's inputs and
    # nothing else (a path row has no window indicators such as the 24 h BTC change).
    indexed = rows.with_row_index("_row")
    keys = ["market_id", "snapshot_ts"]
    pathed = indexed.select("_row", *keys, "family").join(inputs, on=keys, how="inner")
    rest = indexed.join(inputs, on=keys, how="anti")
    return pl.concat([rest, pathed], how="diagonal_relaxed").sort("_row").drop("_row")


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
