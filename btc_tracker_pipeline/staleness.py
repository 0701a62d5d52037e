"""Missed windows: how far the newest collected window lags the clock, and when that is
a new incident to alert on (once per incident, not at every evaluation).

Pure: the stale-data sensor (``defs/maintenance/alerts.py``) reads the newest window from
the warehouse, keeps the open incident in its cursor and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from btc_tracker_pipeline.partitions import WINDOW, floor_to_window, key_of

# A window counts as missed only this long after it ended: the time its tick needs to
# collect it (a tick at 10:15 writes window 10:00 within a minute or two).
GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class Lag:
    """The newest collected window (naive UTC start) against the newest window that should
    be collected by now, and the windows missing in between."""

    newest: datetime
    due: datetime
    missed: int

    def describe(self) -> str:
        """``newest window 2026-03-01-09:00, 3 windows missed (due: 2026-03-01-09:45)``."""
        return (
            f"newest window {key_of(self.newest)}, {self.missed} window(s) missed "
            f"(due: {key_of(self.due)})"
        )


def lag(newest: datetime, now: datetime) -> Lag:
    """How many 15-minute windows that ended at least ``GRACE`` before ``now`` (naive UTC)
    come after ``newest``, the start of the newest collected window."""
    due = floor_to_window(now - GRACE) - WINDOW
    missed = max(0, int((due - floor_to_window(newest)) / WINDOW))
    return Lag(newest, due, missed)


@dataclass(frozen=True)
class Verdict:
    """What the sensor does now: ``alert`` a new incident or not, and the cursor to keep
    (the newest window's key while an incident is open, ``""`` when data is fresh)."""

    alert: bool
    recovered: bool
    cursor: str


def judge(current: Lag, limit: int, cursor: str | None) -> Verdict:
    """An incident opens when ``limit`` or more windows are missed: alert once, and keep it
    open (no alert) while it lasts; it closes when fewer are missed, so the next stall is
    a new incident."""
    open_incident = bool(cursor)
    if current.missed >= limit:
        return Verdict(alert=not open_incident, recovered=False, cursor=key_of(current.newest))
    return Verdict(alert=False, recovered=open_incident, cursor="")


def newest_collected(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The start of the newest window with market snapshots (naive UTC); None when empty."""
    return conn.execute("SELECT max(window_start) FROM market_snapshots").fetchone()[0]
