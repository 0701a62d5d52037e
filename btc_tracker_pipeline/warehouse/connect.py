"""Open the DuckDB warehouse: one writer, many readers, retry on the file lock."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from btc_tracker_pipeline.warehouse.schema import migrate

# DuckDB allows one process to hold a file read-write; others get an IOException
# "Could not set lock on file" (docs/dagster.md §2 pitfall 5).
LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


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
    WarehouseBusyError. A file that is not a DuckDB database (or is damaged)
    raises WarehouseError naming the path. A read-only open of a missing file
    raises WarehouseError too (nothing has been collected yet).
    """
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(
            f"no warehouse at {path}: run a collection first (btc-tracker demo) "
            "or set BTC_TRACKER_WAREHOUSE"
        )
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"cannot create the folder of {path}: {exc}") from exc
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            if _is_lock_error(exc):
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"the warehouse {path} is locked by another process (a running "
                        f"collection or backfill) and stayed locked for {wait_s:.0f} s; "
                        "try again when it finishes"
                    ) from exc
                time.sleep(poll_s)
                continue
            problem = storage_problem(exc)
            if problem is not None:
                raise WarehouseError(
                    f"cannot open the warehouse {path} for writing: {problem} "
                    f"({str(exc).splitlines()[0]}); earlier data is untouched. Free space or "
                    "make the folder writable, or set BTC_TRACKER_WAREHOUSE elsewhere"
                ) from exc
            raise WarehouseError(
                f"cannot open {path} as a DuckDB warehouse ({exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0]}); move the file away or set BTC_TRACKER_WAREHOUSE"
            ) from exc
    if not read_only:
        try:
            migrate(conn)
        except Exception:
            conn.close()
            raise
    return conn


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
