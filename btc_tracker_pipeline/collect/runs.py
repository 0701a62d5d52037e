"""``collection_runs``: one row per asset per window per run — what was tried, what failed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from btc_tracker_pipeline.warehouse.tables import polars_schema

RUNS_SCHEMA: dict[str, pl.DataType] = polars_schema("collection_runs")

# How long after a window ends its live quotes still stand for it.
LIVE_MAX_LAG = timedelta(minutes=10)


# A simulated "now" for replaying live ticks faster than real time (replay.clock).
_simulated_now: list[datetime] = []


def utcnow() -> datetime:
    """Current time as naive UTC (the warehouse convention), or the simulated time
    ``replay.clock.assets_clock`` set."""
    if _simulated_now:
        return _simulated_now[-1]
    return datetime.now(UTC).replace(tzinfo=None)


def is_live(window_end: datetime, now: datetime, max_lag: timedelta = LIVE_MAX_LAG) -> bool:
    """A window is collected live when it ended at most ``max_lag`` ago; older → history."""
    return timedelta(0) <= now - window_end <= max_lag


@dataclass
class RunRecord:
    """Accumulates one ``collection_runs`` row while an asset works on a window."""

    asset: str
    window_start: datetime
    window_end: datetime
    dagster_run_id: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    markets_tried: int = 0
    markets_ok: int = 0
    requests: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``ok``, ``partial`` (something failed, something landed) or ``failed``."""
        if not self.errors and self.markets_ok >= self.markets_tried:
            return "ok"
        if self.markets_ok > 0 or (self.markets_tried == 0 and not self.errors):
            return "partial"
        return "failed" if self.errors else "partial"

    def row(self, finished_at: datetime) -> dict[str, object]:
        """The ``collection_runs`` row as a dict (a run of many windows builds one frame
        from the rows of its windows)."""
        return {
            "run_id": uuid.uuid4().hex,
            "dagster_run_id": self.dagster_run_id,
            "asset": self.asset,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "started_at": self.started_at,
            "finished_at": finished_at,
            "duration_s": (finished_at - self.started_at).total_seconds(),
            "markets_tried": self.markets_tried,
            "markets_ok": self.markets_ok,
            "requests": self.requests,
            "retries": self.retries,
            "status": self.status,
            "errors": json.dumps(self.errors[:200]),
        }

    def frame(self, finished_at: datetime | None = None) -> pl.DataFrame:
        """The row, ready for ``warehouse.append_rows``."""
        return pl.DataFrame([self.row(finished_at or utcnow())], schema=RUNS_SCHEMA)
