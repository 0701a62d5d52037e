"""Open the DuckDB warehouse: one writer, many readers, retry on the file lock."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from btc_tracker_pipeline.warehouse.schema import VERSION_TABLE, migrate, table_names

# DuckDB allows one process to hold a file read-write; others get an IOException
# "Could not set lock on file" (docs/dagster.md §2 pitfall 5).
LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


# DuckDB installs and loads a known extension when a file or query needs one: meeting a
# SQLite file it downloads sqlite_scanner, which hangs or fails obscurely offline. The
# warehouse needs none (parquet, json and icu are built in).
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
SQLITE_HEADER = b"SQLite format 3\x00"
# How many of a foreign file's tables an error names.
NAMED_TABLES = 5
ELSEWHERE = "point BTC_TRACKER_WAREHOUSE at another file"


# OS errors DuckDB passes through when the disk or folder will not take a write.
_STORAGE_PROBLEMS = {
    "No space left on device": "the disk is full",
    "File too large": "the file size limit is reached",
    "Disk quota exceeded": "the disk quota is exceeded",
    "Read-only file system": "the folder is on a read-only file system",
    "Permission denied": "the folder is not writable by this user",
}


def storage_problem(exc: BaseException) -> str | None:
    """What stops DuckDB from writing (disk full, read-only folder), or None."""
    text = str(exc)
    return next((why for marker, why in _STORAGE_PROBLEMS.items() if marker in text), None)


class WarehouseError(RuntimeError):
    """The warehouse file cannot be used; the message says what to do."""


class WarehouseBusyError(WarehouseError):
    """Another process holds the write lock for longer than we were willing to wait."""


def _is_lock_error(exc: BaseException) -> bool:
    return any(marker in str(exc) for marker in LOCK_MARKERS)


def open_warehouse(
    path: str | Path,
    *,
    read_only: bool = False,
    wait_s: float = 60.0,
    poll_s: float = 0.2,
) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse at ``path``, migrating it when opened read-write.

    Waits up to ``wait_s`` for another process's lock, then raises
    WarehouseBusyError. Raises WarehouseError, one line naming the path, for a
    file that is not ours (a SQLite database, another program's DuckDB tables, a
    damaged file), a new warehouse where nothing can be written, and a read-only
    open of a missing file (nothing has been collected yet); the file is left as
    it was.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(
            f"no warehouse at {path}: run a collection first (btc-tracker demo) "
            "or set BTC_TRACKER_WAREHOUSE"
        )
    if _is_sqlite(path):
        raise WarehouseError(f"{path} is a SQLite database, not a DuckDB warehouse; {ELSEWHERE}")
    new = not path.exists()
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _cannot_create(path, exc) from exc
    conn = _connect(path, read_only=read_only, new=new, wait_s=wait_s, poll_s=poll_s)
    try:
        _check_ours(conn, path)
        if not read_only:
            migrate(conn)
    except Exception:
        conn.close()
        raise
    return conn


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False  # missing, a folder, unreadable: DuckDB says what is wrong


def _connect(
    path: Path, *, read_only: bool, new: bool, wait_s: float, poll_s: float
) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried while another process holds the lock; errors as WarehouseError."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=CONFIG)
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise _open_failure(path, exc, new=new) from exc
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"the warehouse {path} is locked by another process (a running "
                    f"collection or backfill) and stayed locked for {wait_s:.0f} s; "
                    "try again when it finishes"
                ) from exc
            time.sleep(poll_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _cannot_create(path: Path, exc: BaseException) -> WarehouseError:
    """A new warehouse whose folder cannot be made or written."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        why = f"a file is in the way of its folder {path.parent}"
    else:
        why = storage_problem(exc) or f"the folder is not writable ({_first_line(exc)})"
    return WarehouseError(
        f"cannot create the warehouse {path}: {why}; "
        "set BTC_TRACKER_WAREHOUSE to a file in a writable folder"
    )


def _open_failure(path: Path, exc: duckdb.Error, *, new: bool) -> WarehouseError:
    """Why DuckDB would not open ``path``, as one line."""
    problem = storage_problem(exc)
    if problem is not None and new:
        return _cannot_create(path, exc)
    if problem is not None:
        return WarehouseError(
            f"cannot open the warehouse {path} for writing: {problem} "
            f"({_first_line(exc)}); earlier data is untouched. Free space or "
            "make the folder writable, or set BTC_TRACKER_WAREHOUSE elsewhere"
        )
    return WarehouseError(
        f"cannot open {path} as a DuckDB warehouse: the file is damaged or not a DuckDB "
        f"database ({exc.__class__.__name__}: {_first_line(exc)}); move the file away or "
        "set BTC_TRACKER_WAREHOUSE"
    )


def _check_ours(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a DuckDB file another program made: it holds tables we do not create and no
    schema version of ours. A new or empty file, a warehouse with our version table (even
    with tables a user added) and a file holding only our tables are ours."""
    try:
        names = _table_names(conn)
        if not names or _has_our_version_table(conn):
            return
    except duckdb.Error as exc:
        raise _open_failure(path, exc, new=False) from exc
    theirs = sorted(names - table_names())
    if not theirs:
        return
    shown = ", ".join(theirs[:NAMED_TABLES]) + (", …" if len(theirs) > NAMED_TABLES else "")
    raise WarehouseError(
        f"{path} is not a btc-tracker warehouse: it holds {len(theirs)} "
        f"table{'s' if len(theirs) > 1 else ''} we did not create ({shown}) and no schema "
        f"version; {ELSEWHERE}"
    )


def _table_names(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views of the file, outside ``main`` named with their schema."""
    rows = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database()"
    ).fetchall()
    return {name if schema == "main" else f"{schema}.{name}" for schema, name in rows}


def _has_our_version_table(conn: duckdb.DuckDBPyConnection) -> bool:
    row = conn.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_catalog = "
        "current_database() AND table_schema = 'main' AND table_name = ? AND column_name = "
        "'version'",
        [VERSION_TABLE],
    ).fetchone()
    return row == ("INTEGER",)


@contextlib.contextmanager
def warehouse(
    path: str | Path, *, read_only: bool = False, wait_s: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Context manager around ``open_warehouse`` that always closes the connection."""
    conn = open_warehouse(path, read_only=read_only, wait_s=wait_s)
    try:
        yield conn
    finally:
        conn.close()
