"""One live 15-minute collection tick against the replay server, measured.

Used by ``bench/tick_latency.py`` (ticks at 10 … 5,000 open markets) and
``bench/backfill_30d.py`` (a tick on top of 30 days of history). Not run directly.

A *live* tick is what the 15-minute schedule runs: ``collect_job`` for the window that
just ended, with the clock one minute past the window end, so ``is_live`` holds and
quotes come from Gamma's live fields and the Binance 24 h ticker. The simulated world
and the assets read the same clock (the assets' ``utcnow`` is pointed at it for the
run, as the tests in btc_tracker_pipeline_tests/defs do).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import httpx
from replay_backend import RATE_LIMITED, Bench, ServerReport

from btc_tracker_pipeline import definitions
from btc_tracker_pipeline.defs.schedules import COLLECT_ASSET_NAMES
from btc_tracker_pipeline.partitions import WINDOW, key_of
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.runner import run_windows
from btc_tracker_pipeline.warehouse.schema import WINDOW_KEYS

# The schedule fires on the quarter hour; give the tick a minute past the window end.
TICK_DELAY = timedelta(minutes=1)
# collect_job's assets in dependency order.
ASSETS = COLLECT_ASSET_NAMES
# Short column names for tables.
SHORT = {
    "tracked_markets": "tracked",
    "market_snapshots": "snaps",
    "btc_spot_prices": "spot",
    "market_paths": "paths",
    "market_resolutions": "labels",
    "market_indicators": "indic",
    "edge_report": "edge",
    "paper_ledger": "ledger",
}
WINDOW_TABLES = tuple(WINDOW_KEYS)


@dataclass(frozen=True)
class WorldSize:
    """SimulatedWorld arguments that give about ``target`` open markets in a window."""

    target: int
    updown_lead: timedelta
    strikes_per_ladder: int


# Measured on seed 7 at 2026-03-01 00:00 UTC (tracked_markets rows of the live window):
# 11, 100, 1,002 and 5,002 open markets. Up/down markets are listed `updown_lead` ahead
# (97 + 25 open with the default 24 h); the rest are two "above" ladders and two weekly
# reach/dip events of `strikes_per_ladder` markets each.
SIZES: dict[int, WorldSize] = {
    10: WorldSize(10, timedelta(hours=1), 1),
    100: WorldSize(100, timedelta(hours=18), 2),
    1000: WorldSize(1000, timedelta(hours=24), 220),
    5000: WorldSize(5000, timedelta(hours=24), 1220),
}


@contextlib.contextmanager
def timed_code_location() -> Iterator[list[tuple[float, float]]]:
    """Time every load of the code location (``definitions.defs()``, which
    ``run_windows`` calls on each call) as (wall s, CPU s) pairs."""
    original = definitions.defs
    spent: list[tuple[float, float]] = []

    def timed() -> dg.Definitions:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return original()
        finally:
            spent.append((time.perf_counter() - started, time.process_time() - cpu))

    definitions.defs = timed  # type: ignore[assignment]
    try:
        yield spent
    finally:
        definitions.defs = original


@dataclass
class TickResult:
    """What one measured tick did and how long it took."""

    key: str
    success: bool
    wall_s: float  # the run, without loading the code location
    cpu_s: float
    load_s: float  # loading the code location (run_windows does it on every call)
    steps_s: dict[str, float]
    rows: dict[str, int]
    server: ServerReport
    error: str | None = None

    @property
    def open_markets(self) -> int:
        """Markets tracked in the window (tracked_markets rows)."""
        return self.rows.get("tracked_markets", 0)

    def requests(self, api: str) -> int:
        """Requests to one API (``gamma``, ``clob`` or ``binance``)."""
        return sum(n for route, n in self.server.routes.items() if route.startswith(f"/{api}/"))

    def rate_note(self) -> str:
        """The documented limits per 10 s of the rate-limited routes."""
        return ", ".join(f"`{prefix}` {limit} per 10 s" for prefix, limit in RATE_LIMITED.items())


def count_rows(warehouse: Path, window_start: datetime, run_id: str) -> dict[str, int]:
    """Rows the tick left in each window table for ``window_start``, and its
    ``collection_runs`` rows."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = {
            t: conn.execute(
                f"SELECT count(*) FROM {t} WHERE window_start = ?", [window_start]
            ).fetchone()[0]
            for t in WINDOW_TABLES
        }
        rows["collection_runs"] = conn.execute(
            "SELECT count(*) FROM collection_runs WHERE dagster_run_id = ?", [run_id]
        ).fetchone()[0]
    return rows


def run_live_tick(bench: Bench, window_start: datetime) -> TickResult:
    """Run ``collect_job`` live for the window starting at ``window_start`` and measure it.

    The clock is set to one minute past the window end. Before the timer starts, one
    request warms the simulated world's per-minute cache (the fake server's cost of
    rebuilding its world is not the pipeline's); then the server's counters are zeroed.
    """
    now = window_start + WINDOW + TICK_DELAY
    bench.backend.set_now(now)
    httpx.get(f"{bench.backend.url}/gamma/markets/keyset", params={"limit": 1}, timeout=300)
    bench.backend.reset()
    key = key_of(window_start)
    with assets_clock(now), timed_code_location() as loads:
        started, cpu = time.perf_counter(), time.process_time()
        [outcome] = run_windows([key], instance=bench.instance, log_level="ERROR")
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    load_wall, load_cpu = (sum(x) for x in zip(*loads, strict=True)) if loads else (0.0, 0.0)
    steps = {
        s.step_key: (s.end_time or 0.0) - (s.start_time or 0.0)
        for s in bench.instance.get_run_step_stats(outcome.run_id)
    }
    return TickResult(
        key=key,
        success=outcome.success,
        wall_s=wall - load_wall,
        cpu_s=cpu - load_cpu,
        load_s=load_wall,
        steps_s=steps,
        rows=count_rows(bench.warehouse, window_start, outcome.run_id),
        server=bench.backend.report(),
        error=outcome.error,
    )
