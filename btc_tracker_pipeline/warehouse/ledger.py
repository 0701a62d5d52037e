"""Reading and writing the forward paper ledger (``paper_ledger``, ``model.ledger``).

The table only grows: a position is inserted once (``INSERT OR IGNORE`` on its
primary key ``position_id``), and settling an open position updates its settlement
columns (``model.ledger.SETTLEMENT_COLUMNS``) and nothing else.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from btc_tracker_pipeline.model.ledger import LEDGER_SCHEMA, OPEN, SETTLEMENT_COLUMNS
from btc_tracker_pipeline.warehouse.write import registered, transaction

# Each (window, market) BUY row of edge_report with its snapshot's source, quote time and
# liquidity: what a position may be opened from (model.ledger.RECOMMENDATION_COLUMNS).
RECOMMENDATIONS_SQL = """
SELECT e.window_start, e.window_end, e.market_id, e.family, e.question, e.cluster,
       e.recommendation, e.in_sample, e.model_version, e.model_prob, e.market_prob,
       e.bid, e.ask, e.fee_yes, e.fee_no, e.fee_exponent, e.kelly, e.net_edge,
       s.source, coalesce(s.quote_ts, s.snapshot_ts) AS opened_at, s.liquidity
FROM edge_report e JOIN market_snapshots s USING (window_start, market_id)
WHERE e.window_start >= ? AND e.window_start < ? AND e.recommendation <> 'PASS'
ORDER BY e.window_start, e.market_id
"""


def read_ledger(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every position, oldest first."""
    frame = conn.execute("SELECT * FROM paper_ledger ORDER BY opened_at, position_id").pl()
    return frame.cast(LEDGER_SCHEMA)  # type: ignore[arg-type]


def recommendations(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> pl.DataFrame:
    """The BUY rows of ``edge_report`` in windows [start, end) with their snapshot's
    ``source``, quote time (``opened_at``) and ``liquidity``."""
    return conn.execute(RECOMMENDATIONS_SQL, [start, end]).pl()


def labels_of_open_positions(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The ``market_resolutions`` rows of markets that hold an open position."""
    return conn.execute(
        "SELECT window_start, market_id, status, yes_won, settled_at FROM market_resolutions "
        "WHERE market_id IN (SELECT market_id FROM paper_ledger WHERE status = ?)",
        [OPEN],
    ).pl()


def windows_already_run(
    conn: duckdb.DuckDBPyConnection, asset: str, start: datetime, end: datetime
) -> bool:
    """Whether ``asset`` has recorded a run (``collection_runs``) of a window in [start, end)."""
    row = conn.execute(
        "SELECT count(*) FROM collection_runs WHERE asset = ? AND window_start >= ? "
        "AND window_start < ?",
        [asset, start, end],
    ).fetchone()
    return bool(row and row[0])


def write_ledger(
    conn: duckdb.DuckDBPyConnection,
    opened: pl.DataFrame,
    settled: pl.DataFrame,
    runs: pl.DataFrame,
) -> None:
    """In one transaction: insert the ``opened`` positions (a position_id already there is
    left as it was), fill in the settlement columns of the ``settled`` positions that are
    still open, and append the run's ``collection_runs`` rows."""
    assignments = ", ".join(f'"{c}" = s."{c}"' for c in SETTLEMENT_COLUMNS)
    with transaction(conn):
        if not opened.is_empty():
            with registered(conn, opened.select(list(LEDGER_SCHEMA))) as name:
                conn.execute(f"INSERT OR IGNORE INTO paper_ledger BY NAME SELECT * FROM {name}")
        if not settled.is_empty():
            with registered(conn, settled.select("position_id", *SETTLEMENT_COLUMNS)) as name:
                conn.execute(
                    f"UPDATE paper_ledger SET {assignments} FROM {name} s "
                    f"WHERE paper_ledger.position_id = s.position_id "
                    f"AND paper_ledger.status = '{OPEN}'"
                )
        if not runs.is_empty():
            with registered(conn, runs) as name:
                conn.execute(f"INSERT INTO collection_runs BY NAME SELECT * FROM {name}")
