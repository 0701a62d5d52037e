"""Atomic, idempotent writes per 15-minute window.

``BEGIN; DELETE the window; INSERT ... BY NAME; COMMIT`` — a rerun or a backfill
replaces exactly its windows, a failed write leaves the old rows, columns are
matched by name not position (docs/dagster.md §2 pitfalls 1-3).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
import polars as pl

from btc_tracker_pipeline.warehouse.connect import WarehouseError, storage_problem
from btc_tracker_pipeline.warehouse.schema import WINDOW_KEYS

_names = itertools.count()


class EmptyWindowError(RuntimeError):
    """A write would have replaced a window's rows with nothing."""


class WindowKeyError(ValueError):
    """A window's rows repeat a key, or lie outside the window (a bug upstream: the
    tables have no PRIMARY KEY to refuse them, see schema.WINDOW_KEYS)."""


@dataclass(frozen=True)
class TableWrite:
    """Rows for one table covering [window_start, window_end) on ``window_column``."""

    table: str
    frame: pl.DataFrame
    window_column: str = "window_start"
    # "fail": raise on an empty frame; "keep": leave existing rows; "replace": write nothing.
    on_empty: Literal["fail", "keep", "replace"] = "fail"
    # A run for chosen markets: only these markets' rows of the window are replaced, every
    # other market's rows stay as they are. Empty: the whole window is replaced.
    market_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableAppend:
    """Rows appended to ``table`` in the same transaction as a window's writes (e.g. the
    window's ``collection_runs`` row). ``rows`` is called after those writes, so a row
    that times the work includes them."""

    table: str
    rows: Callable[[], pl.DataFrame]


@dataclass(frozen=True)
class WriteResult:
    table: str
    rows_written: int
    rows_deleted: int
    kept_existing: bool


def write_window(
    conn: duckdb.DuckDBPyConnection,
    writes: Sequence[TableWrite],
    window_start: datetime,
    window_end: datetime,
    appends: Sequence[TableAppend] = (),
) -> list[WriteResult]:
    """Replace the rows of [window_start, window_end) in every table, in ONE transaction,
    and append ``appends`` in that same transaction (one commit per window, not two).

    Either every table gets its new rows or none changes. Raises EmptyWindowError
    (before touching anything) when a table's frame is empty and its policy is "fail".
    A write with ``market_ids`` deletes and inserts only those markets' rows.
    """
    for w in writes:
        if w.frame.is_empty() and w.on_empty == "fail":
            raise EmptyWindowError(
                f"{w.table}: no rows for window {window_start:%Y-%m-%d %H:%M} - "
                f"{window_end:%H:%M}; existing rows were left untouched"
            )
        _check_keys(w, window_start, window_end)
    results: list[WriteResult] = []
    with _transaction(conn):
        for w in writes:
            if w.frame.is_empty() and w.on_empty == "keep":
                results.append(WriteResult(w.table, 0, 0, kept_existing=True))
                continue
            deleted = _delete_window(conn, w, window_start, window_end)
            written = 0
            if not w.frame.is_empty():
                with registered(conn, w.frame) as name:
                    conn.execute(f"INSERT INTO {w.table} BY NAME SELECT * FROM {name}")
                written = w.frame.height
            results.append(WriteResult(w.table, written, deleted, False))
        for a in appends:
            _insert(conn, a.table, a.rows())
    return results


def _delete_window(
    conn: duckdb.DuckDBPyConnection, w: TableWrite, window_start: datetime, window_end: datetime
) -> int:
    """Delete the rows ``w`` replaces (the window's, or only its chosen markets'); the count."""
    sql = f"DELETE FROM {w.table} WHERE {w.window_column} >= ? AND {w.window_column} < ?"
    params: list[object] = [window_start, window_end]
    if w.market_ids:
        sql += " AND list_contains(?, market_id)"
        params.append(list(w.market_ids))
    deleted = conn.execute(sql, params).fetchone()
    return int(deleted[0]) if deleted else 0


def _check_keys(w: TableWrite, window_start: datetime, window_end: datetime) -> None:
    """Raise WindowKeyError if ``w``'s rows would break its table's key: the rows it
    replaces are deleted first, so rows inside the window (and, for a write for chosen
    markets, of those markets) and unique on the key are enough."""
    key = WINDOW_KEYS.get(w.table)
    if key is None or w.frame.is_empty():
        return
    at = pl.col(w.window_column)
    outside = w.frame.filter((at < window_start) | (at >= window_end) | at.is_null()).height
    repeated = w.frame.select(key).is_duplicated().sum()
    foreign = 0
    if w.market_ids:
        foreign = w.frame.filter(~pl.col("market_id").is_in(list(w.market_ids))).height
    if outside or repeated or foreign:
        raise WindowKeyError(
            f"{w.table}: {outside} row(s) outside window {window_start:%Y-%m-%d %H:%M} - "
            f"{window_end:%H:%M}, {repeated} row(s) sharing a key {key} and {foreign} row(s) "
            "of markets this write was not asked to replace; nothing was written"
        )


def _insert(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """``INSERT INTO table BY NAME`` the rows of ``frame`` (inside the caller's transaction)."""
    if not frame.is_empty():
        with registered(conn, frame) as name:
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")


@contextlib.contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT, or ROLLBACK on any exception (KeyboardInterrupt included).

    A write the disk refuses (full, read-only) becomes a WarehouseError saying so; the
    transaction is rolled back, so the window keeps its previous rows.
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException as exc:
        with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended it
            conn.execute("ROLLBACK")
        problem = storage_problem(exc) if isinstance(exc, duckdb.Error) else None
        if problem is not None:
            raise WarehouseError(
                f"cannot write the warehouse: {problem} ({str(exc).splitlines()[0]}); "
                "this window was rolled back and earlier windows are intact. Free space or "
                "make the folder writable, then rerun the window"
            ) from exc
        raise


def transaction(conn: duckdb.DuckDBPyConnection) -> contextlib.AbstractContextManager[None]:
    """BEGIN … COMMIT around a block, ROLLBACK on any exception (as ``write_window`` does)."""
    return _transaction(conn)


@contextlib.contextmanager
def registered(conn: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> Iterator[str]:
    """Expose ``frame`` to SQL under a fresh view name for the duration of the block."""
    name = f"_btc_frame_{next(_names)}"
    conn.register(name, frame.to_arrow())
    try:
        yield name
    finally:
        conn.unregister(name)


def append_rows(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Append ``frame`` to ``table`` by column name in one transaction (e.g. collection_runs)."""
    if frame.is_empty():
        return 0
    with registered(conn, frame) as name, _transaction(conn):
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")
    return frame.height


def upsert_rows(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, key: str) -> int:
    """Insert or replace rows of a keyed dimension table (e.g. ``markets``) by ``key``."""
    if frame.is_empty():
        return 0
    unique = frame.unique(subset=[key], keep="last")
    with registered(conn, unique) as name, _transaction(conn):
        conn.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {name})")
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")
    return frame.height


def replace_table(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Replace every row of ``table`` with ``frame`` in one transaction (tables a daily
    asset rewrites whole, e.g. model_predictions, paper_trades)."""
    with _transaction(conn):
        conn.execute(f"DELETE FROM {table}")
        if not frame.is_empty():
            with registered(conn, frame) as name:
                conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")
    return frame.height
