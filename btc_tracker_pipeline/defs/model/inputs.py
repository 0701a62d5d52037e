"""Warehouse reads shared by the model assets: labelled data and edge-report inputs."""

from datetime import datetime

import duckdb
import polars as pl

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
