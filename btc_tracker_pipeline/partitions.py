"""THE 15-minute partition definition: every partitioned asset, check and job imports it.

Keys look like ``2026-03-01-10:15``; the window of a key is [start, start + 15 min) in UTC.
``end_offset=0``: the newest key is the newest *completed* window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

PARTITION_START = "2025-01-01-00:00"
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"
WINDOW = timedelta(minutes=15)
# One backfill run covers a day of windows (docs/dagster.md §2: multi_run(96)).
WINDOWS_PER_RUN = 96

fifteen_minute_partitions = dg.TimeWindowPartitionsDefinition(
    start=PARTITION_START,
    fmt=PARTITION_FORMAT,
    cron_schedule="*/15 * * * *",
    timezone="UTC",
    end_offset=0,
)


def window_of(key: str) -> tuple[datetime, datetime]:
    """Return the naive-UTC [start, end) window of a partition key; ValueError if malformed."""
    try:
        start = datetime.strptime(key, PARTITION_FORMAT)
    except ValueError as exc:
        raise ValueError(
            f"partition key {key!r} is not of the form YYYY-MM-DD-HH:MM (e.g. 2026-03-01-10:15)"
        ) from exc
    if start.minute % 15:
        raise ValueError(f"partition key {key!r} does not start on a 15-minute boundary")
    return start, start + WINDOW


def key_of(start: datetime) -> str:
    """Partition key of the window starting at ``start`` (naive or aware UTC)."""
    if start.tzinfo is not None:
        start = start.astimezone(UTC).replace(tzinfo=None)
    return start.strftime(PARTITION_FORMAT)


def floor_to_window(ts: datetime) -> datetime:
    """The start of the 15-minute window containing ``ts`` (naive UTC result)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)


def windows_between(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Every 15-minute window in [start, end), start aligned down to a window."""
    out: list[tuple[datetime, datetime]] = []
    cur = floor_to_window(start)
    while cur < end:
        out.append((cur, cur + WINDOW))
        cur += WINDOW
    return out
