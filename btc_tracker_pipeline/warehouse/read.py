"""Reads the assets make of the warehouse: a run's windows of a table, the klines and
barrier extremes its indicators need, the terms its labels are checked against."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl

from btc_tracker_pipeline.warehouse.write import registered

# The highest high and lowest low of the stored 1m klines from each barrier's touch start
# (its reference start, else its listing) up to the klines read for the run ($3): one
# aggregate per distinct start, however many weeks back it lies (structural.touch_history).
TOUCH_HISTORY_SQL = """
WITH starts AS (
    SELECT DISTINCT coalesce(reference_start, start_date) AS touch_start
    FROM tracked_markets
    WHERE window_start >= $1 AND window_start < $2 AND family IN ('reach', 'dip')
)
SELECT s.touch_start, $3::TIMESTAMP AS before,
       max(k.high) AS history_high, min(k.low) AS history_low
FROM starts s JOIN btc_spot_prices k ON k.open_time >= s.touch_start AND k.open_time < $3
WHERE s.touch_start < $3
GROUP BY s.touch_start
ORDER BY s.touch_start
"""


def read(conn: duckdb.DuckDBPyConnection, sql: str, *params: object) -> pl.DataFrame:
    """The rows of ``sql`` with ``params`` as a polars frame."""
    # execute(...).pl(), not sql(..., params=...).pl(): a relation with parameters is
    # materialized first, and converting that is ~8x slower (5 vs 36 ms here).
    return conn.execute(sql, list(params)).pl()


def window_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: datetime,
    end: datetime,
    *,
    ordered: bool = False,
) -> pl.DataFrame:
    """The rows of ``table`` in the windows [start, end) (by window then market when
    ``ordered``)."""
    order = " ORDER BY window_start, market_id" if ordered else ""
    return read(
        conn,
        f"SELECT * FROM {table} WHERE window_start >= ? AND window_start < ?{order}",
        start,
        end,
    )


# The newest tracked_markets row of every market of the families $3 whose own window
# [reference_start, expiry) overlaps [$1, $2), from any window: a live tick lists only
# the markets open at the tick, so one that closed inside the window just ended is known
# only from an earlier tick's rows (up/down markets are listed a day ahead).
PATH_TERMS_SQL = """
SELECT * FROM tracked_markets
WHERE family IN (SELECT unnest($3::VARCHAR[])) AND reference_start < $2 AND expiry > $1
QUALIFY row_number() OVER (PARTITION BY market_id ORDER BY window_start DESC) = 1
ORDER BY market_id
"""


def path_terms(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, families: list[str]
) -> pl.DataFrame:
    """The newest ``tracked_markets`` row of each market of ``families`` whose own window
    overlaps [start, end), whichever window it was tracked in."""
    return read(conn, PATH_TERMS_SQL, start, end, families)


def klines_between(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> pl.DataFrame:
    """The stored 1-minute klines opening in [start, end), by open time."""
    return read(
        conn,
        "SELECT open_time, open, high, low, close, volume FROM btc_spot_prices "
        "WHERE open_time >= ? AND open_time < ? ORDER BY open_time",
        start,
        end,
    )


def touch_history(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, before: datetime
) -> pl.DataFrame:
    """Per barrier touch start of the markets tracked in [start, end): the highest high
    and lowest low of the klines from that start up to ``before``."""
    return read(conn, TOUCH_HISTORY_SQL, start, end, before)


def label_terms(
    conn: duckdb.DuckDBPyConnection, market_ids: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The tracked terms of ``market_ids`` (their latest tracked row) and the 1m klines
    spanning their reference starts to one minute past their expiries."""
    ids = pl.DataFrame({"market_id": market_ids}, schema={"market_id": pl.String})
    with registered(conn, ids) as name:
        terms = conn.sql(
            "SELECT market_id, family, strike, reference_start, expiry FROM tracked_markets "
            f"WHERE market_id IN (SELECT market_id FROM {name}) "
            "QUALIFY row_number() OVER (PARTITION BY market_id ORDER BY window_start DESC) = 1"
        ).pl()
    if terms.is_empty():
        return terms, pl.DataFrame(
            schema={"open_time": pl.Datetime("us"), "open": pl.Float64, "close": pl.Float64}
        )
    lo = terms.select(pl.min_horizontal(pl.col("reference_start"), pl.col("expiry")).min()).item()
    hi = terms["expiry"].max() + timedelta(minutes=1)
    klines = conn.execute(
        "SELECT open_time, open, close FROM btc_spot_prices WHERE open_time >= ? AND open_time <= ?"
        " ORDER BY open_time",
        [lo, hi],
    ).pl()
    return terms, klines
