"""Atomic, idempotent writes of a run's 15-minute windows.

``BEGIN; DELETE the run's windows; INSERT ... BY NAME; COMMIT`` — a rerun or a backfill
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
class TableUpsert:
    """Rows inserted or replaced by ``key`` in a keyed table (e.g. ``markets``) in the
    same transaction as a run's window writes."""

    table: str
    frame: pl.DataFrame
    key: str


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
    """Replace the rows of one window [window_start, window_end) in every table, in ONE
    transaction, with ``appends`` in that same transaction (``write_windows`` for one
    window)."""
    return write_windows(conn, writes, [(window_start, window_end)], appends)


def write_windows(
    conn: duckdb.DuckDBPyConnection,
    writes: Sequence[TableWrite],
    windows: Sequence[tuple[datetime, datetime]],
    appends: Sequence[TableAppend] = (),
    upserts: Sequence[TableUpsert] = (),
) -> list[WriteResult]:
    """Replace the rows of every window of a run in every table, in ONE transaction, with
    ``appends`` and ``upserts`` in that same transaction (one commit per run).

    ``writes`` hold the rows of the whole run (every window's rows in one frame). Per
    table and window the ``on_empty`` policy decides: "keep" leaves a window that got no
    rows as it was, "replace" empties it, "fail" raises EmptyWindowError before touching
    anything. A write with ``market_ids`` deletes and inserts only those markets' rows.
    Either every window of every table gets its new rows or nothing changes.
    """
    if not windows:
        return []
    starts = [ws for ws, _ in windows]
    range_start, range_end = windows[0][0], windows[-1][1]
    for w in writes:
        _check_keys(w, range_start, range_end)
        if w.on_empty == "fail":
            missing = windows_without_rows(w.frame, starts, w.window_column)
            if missing:
                raise EmptyWindowError(
                    f"{w.table}: no rows for window {missing[0]:%Y-%m-%d %H:%M}"
                    f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}; "
                    "existing rows were left untouched"
                )
    results: list[WriteResult] = []
    with _transaction(conn):
        for u in upserts:
            _upsert(conn, u.table, u.frame, u.key)
        for w in writes:
            replaced = starts
            if w.on_empty != "replace":
                without = set(windows_without_rows(w.frame, starts, w.window_column))
                replaced = [ws for ws in starts if ws not in without]
            if not replaced:
                results.append(WriteResult(w.table, 0, 0, kept_existing=True))
                continue
            deleted = _delete_windows(conn, w, replaced, len(replaced) == len(starts), windows)
            _insert(conn, w.table, w.frame)
            kept = len(replaced) < len(starts)
            results.append(WriteResult(w.table, w.frame.height, deleted, kept))
        for a in appends:
            _insert(conn, a.table, a.rows())
    return results


def windows_without_rows(
    frame: pl.DataFrame, starts: Sequence[datetime], column: str = "window_start"
) -> list[datetime]:
    """The window ``starts`` that ``frame`` has no row for (by its ``column``)."""
    present = set(frame[column].unique().to_list()) if frame.height else set()
    return [ws for ws in starts if ws not in present]


def _delete_windows(
    conn: duckdb.DuckDBPyConnection,
    w: TableWrite,
    replaced: Sequence[datetime],
    whole_range: bool,
    windows: Sequence[tuple[datetime, datetime]],
) -> int:
    """Delete the rows ``w`` replaces in ``replaced`` windows (only its chosen markets'
    when it has ``market_ids``); the count."""
    sql = f"DELETE FROM {w.table} WHERE {w.window_column} >= ? AND {w.window_column} < ?"
    params: list[object] = [windows[0][0], windows[-1][1]]
    if not whole_range:
        sql += f" AND list_contains(?::TIMESTAMP[], {w.window_column})"
        params.append(list(replaced))
    if w.market_ids:
        sql += " AND list_contains(?, market_id)"
        params.append(list(w.market_ids))
    deleted = conn.execute(sql, params).fetchone()
    return int(deleted[0]) if deleted else 0


def _check_keys(w: TableWrite, range_start: datetime, range_end: datetime) -> None:
    """Raise WindowKeyError if ``w``'s rows would break its table's key: the rows it
    replaces are deleted first, so rows inside the run's windows (and, for a write for
    chosen markets, of those markets) and unique on the key are enough."""
    key = WINDOW_KEYS.get(w.table)
    if key is None or w.frame.is_empty():
        return
    at = pl.col(w.window_column)
    outside = w.frame.filter((at < range_start) | (at >= range_end) | at.is_null()).height
    repeated = w.frame.select(key).is_duplicated().sum()
    foreign = 0
    if w.market_ids:
        foreign = w.frame.filter(~pl.col("market_id").is_in(list(w.market_ids))).height
    if outside or repeated or foreign:
        raise WindowKeyError(
            f"{w.table}: {outside} row(s) outside window {range_start:%Y-%m-%d %H:%M} - "
            f"{range_end:%H:%M}, {repeated} row(s) sharing a key {key} and {foreign} row(s) "
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
                "this run's windows were rolled back and earlier windows are intact. Free "
                "space or make the folder writable, then rerun them"
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
    with _transaction(conn):
        _upsert(conn, table, frame, key)
    return frame.height


def _upsert(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, key: str) -> None:
    """``upsert_rows`` inside the caller's transaction."""
    if frame.is_empty():
        return
    unique = frame.unique(subset=[key], keep="last")
    with registered(conn, unique) as name:
        conn.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {name})")
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")


def replace_table(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Replace every row of ``table`` with ``frame`` in one transaction (tables a daily
    asset rewrites whole, e.g. model_predictions, paper_trades)."""
    with _transaction(conn):
        conn.execute(f"DELETE FROM {table}")
        if not frame.is_empty():
            with registered(conn, frame) as name:
                conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")
    return frame.height
