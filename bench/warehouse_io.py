"""Warehouse I/O as history grows: one window's write + close with and without the key
indexes (schema 4 vs 5), the migration between them, and the two ways to read a
parameterised query into polars.

A synthetic ``market_snapshots`` of ``--markets`` markets per window over 1 day and over
``--days`` days (the rest of the warehouse empty), built at schema 4 (PRIMARY KEY and
``idx_snapshots_market``), copied and migrated to schema 5. On each: ``--repeat`` times,
open the file, ``write_window`` one new window (delete + insert, as an asset does),
close it (DuckDB checkpoints). Then the indicators' lookback read (LOOKBACK_WINDOWS
windows) through ``sql(q, params=...).pl()`` and ``execute(q, params).pl()``.

    .venv/bin/python bench/warehouse_io.py --days 30 --markets 160 --repeat 9

Writes the table to bench/results/warehouse_io.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
from bench_report import write_results  # (bench/ is on sys.path)
from rich.console import Console
from rich.table import Table

from btc_tracker_pipeline.collect.snapshots import SNAPSHOT_SCHEMA
from btc_tracker_pipeline.features.indicators import LOOKBACK_WINDOWS
from btc_tracker_pipeline.partitions import WINDOW
from btc_tracker_pipeline.warehouse import TableWrite, write_window
from btc_tracker_pipeline.warehouse.schema import migrate

FIRST = datetime(2026, 1, 1)
LOOKBACK_SQL = (
    "SELECT * FROM market_snapshots WHERE window_start >= ? AND window_start < ?"
    " ORDER BY window_start, market_id"
)


def snapshot_frame(window_start: datetime, markets: int) -> pl.DataFrame:
    """One window of history snapshots for ``markets`` markets."""
    end = window_start + WINDOW
    ids = [str(3_225_100_000 + i) for i in range(markets)]
    return (
        pl.DataFrame(
            {
                "window_start": [window_start] * markets,
                "window_end": [end] * markets,
                "market_id": ids,
                "yes_token_id": [f"token-{i}" for i in ids],
                "snapshot_ts": [end] * markets,
                "quote_ts": [end] * markets,
                "yes_price": [0.5] * markets,
                "no_price": [0.5] * markets,
                "source": ["history"] * markets,
            }
        )
        .with_columns(
            [
                pl.lit(None, dtype).alias(c)
                for c, dtype in SNAPSHOT_SCHEMA.items()
                if c
                not in (
                    "window_start",
                    "window_end",
                    "market_id",
                    "yes_token_id",
                    "snapshot_ts",
                    "quote_ts",
                    "yes_price",
                    "no_price",
                    "source",
                )
            ]
        )
        .select(list(SNAPSHOT_SCHEMA))
        .cast(SNAPSHOT_SCHEMA)
    )  # type: ignore[arg-type]


def build_v4(path: Path, days: int, markets: int) -> datetime:
    """A schema-4 warehouse whose market_snapshots holds ``days`` of windows; returns
    the start of the next window."""
    windows = days * 96
    with duckdb.connect(str(path)) as conn:
        migrate(conn, target=4)
        frame = pl.concat(snapshot_frame(FIRST + i * WINDOW, markets) for i in range(windows))
        conn.register("frame", frame)
        conn.execute("INSERT INTO market_snapshots BY NAME SELECT * FROM frame")
    return FIRST + windows * WINDOW


def median_ms(action: Callable[[int], None], repeat: int) -> float:
    """Median wall time of ``action(i)`` for i in range(repeat), in ms."""
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def write_and_close(path: Path, next_window: datetime, markets: int) -> Callable[[int], None]:
    """Open ``path``, write window ``next_window + i`` (one transaction), close."""

    def action(i: int) -> None:
        start = next_window + i * WINDOW
        conn = duckdb.connect(str(path))
        try:
            write_window(
                conn,
                [TableWrite("market_snapshots", snapshot_frame(start, markets))],
                start,
                start + WINDOW,
            )
        finally:
            conn.close()

    return action


def read_ms(path: Path, next_window: datetime, repeat: int) -> tuple[float, float]:
    """Median ms of the indicators' lookback read ending at ``next_window``, through
    ``sql(q, params=...).pl()`` and through ``execute(q, params).pl()``."""
    params = [next_window - LOOKBACK_WINDOWS * WINDOW, next_window]
    with duckdb.connect(str(path), read_only=True) as conn:
        return (
            median_ms(lambda _: conn.sql(LOOKBACK_SQL, params=params).pl(), repeat),
            median_ms(lambda _: conn.execute(LOOKBACK_SQL, params).pl(), repeat),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="history of the large warehouse")
    parser.add_argument("--markets", type=int, default=160, help="markets per window")
    parser.add_argument("--repeat", type=int, default=9, help="measured writes and reads")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="btc-warehouse-io-"))
    rows, console = [], Console(width=160)
    try:
        for days in sorted({1, args.days}):
            v4, v5 = folder / f"v4-{days}.duckdb", folder / f"v5-{days}.duckdb"
            next_window = build_v4(v4, days, args.markets)
            shutil.copy(v4, v5)
            started = time.perf_counter()
            with duckdb.connect(str(v5)) as conn:
                migrate(conn)
            migrate_s = time.perf_counter() - started
            size_mb = v4.stat().st_size / 1e6, v5.stat().st_size / 1e6
            write_ms = [
                median_ms(write_and_close(p, next_window, args.markets), args.repeat)
                for p in (v4, v5)
            ]
            sql_ms, execute_ms = read_ms(v5, next_window, args.repeat)
            rows.append(
                [
                    f"{days}",
                    f"{days * 96 * args.markets:,}",
                    f"{size_mb[0]:.1f} / {size_mb[1]:.1f}",
                    f"{write_ms[0]:.1f}",
                    f"{write_ms[1]:.1f}",
                    f"{migrate_s:.2f}",
                    f"{sql_ms:.1f}",
                    f"{execute_ms:.1f}",
                ]
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    headers = [
        "days of history",
        "snapshot rows",
        "file MB schema 4 / 5",
        "write + close ms, schema 4 (keys indexed)",
        "write + close ms, schema 5 (keys checked)",
        "migration 4 → 5 s",
        "lookback read ms, sql(params=).pl()",
        "lookback read ms, execute(params).pl()",
    ]
    title = f"Warehouse I/O as history grows ({args.markets} markets per window)"
    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    notes = [
        "write + close: open the file, write_window one new window of market_snapshots "
        "(delete + insert in one transaction), close (DuckDB checkpoints on close), "
        f"median of {args.repeat}; the rest of the warehouse is empty.",
        f"lookback read: {LOOKBACK_WINDOWS} windows of market_snapshots into polars, as "
        f"market_indicators reads them, median of {args.repeat}, on schema 5.",
    ]
    path = write_results("warehouse_io", title, headers, rows, notes)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
