"""THE 15-minute partition definition: every partitioned asset, check and job imports it.

Keys look like ``2026-03-01-10:15``; the window of a key is [start, start + 15 min) in UTC.
``end_offset=0``: the newest key is the newest *completed* window.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"
WINDOW = timedelta(minutes=15)
# The first window the UI lists: BTC_TRACKER_FIRST_PARTITION (a key or a date), read when
# the code location loads; every process of one deployment must see the same value.
ENV_FIRST_PARTITION = "BTC_TRACKER_FIRST_PARTITION"
DEFAULT_FIRST_PARTITION = "2025-01-01-00:00"
# One backfill run covers a day of windows (docs/dagster.md §2: multi_run(96)).
WINDOWS_PER_RUN = 96


def first_partition_key(value: str | None) -> str:
    """The partition key a BTC_TRACKER_FIRST_PARTITION value names: ``YYYY-MM-DD`` (that
    day's first window) or a key ``YYYY-MM-DD-HH:MM`` on a 15-minute boundary; unset or
    blank gives the default, 2025-01-01-00:00. ValueError in one line otherwise."""
    if value is None or not value.strip():
        return DEFAULT_FIRST_PARTITION
    text = value.strip()
    try:
        start = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        try:
            start = window_of(text)[0]
        except ValueError:
            raise ValueError(
                f"{ENV_FIRST_PARTITION}={value!r}: expected a date YYYY-MM-DD or a window "
                "key YYYY-MM-DD-HH:MM on a 15-minute boundary, e.g. 2026-03-01"
            ) from None
    return key_of(start)


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


def _configured_first_partition() -> str:
    # A bad value is refused in one line by environment.check_configuration (the CLI and
    # the code location's resources call it); importing this module never raises.
    try:
        return first_partition_key(os.environ.get(ENV_FIRST_PARTITION))
    except ValueError:
        return DEFAULT_FIRST_PARTITION


PARTITION_START = _configured_first_partition()

fifteen_minute_partitions = dg.TimeWindowPartitionsDefinition(
    start=PARTITION_START,
    fmt=PARTITION_FORMAT,
    cron_schedule="*/15 * * * *",
    timezone="UTC",
    end_offset=0,
)
