"""Read the per-window tables whole, for tests that compare two warehouses or two runs."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from btc_tracker_pipeline.warehouse.schema import WINDOW_KEYS

# The tables a collect_job backfill writes, but edge_report (for tests that leave it out).
COLLECTED = tuple(t for t in WINDOW_KEYS if t != "edge_report")


def window_rows(
    conn: duckdb.DuckDBPyConnection, tables: Iterable[str] = COLLECTED
) -> dict[str, list[tuple]]:
    """Every row of each of ``tables``, ordered by its key (``schema.WINDOW_KEYS``)."""
    return {
        t: conn.execute(f"SELECT * FROM {t} ORDER BY {', '.join(WINDOW_KEYS[t])}").fetchall()
        for t in tables
    }
