"""Collection health from the warehouse: uptime, data quality, tick latency, coverage.

* **Uptime**: the scheduled windows of a period are every 15-minute window from the
  period's start (never before the first collected window) to the newest finished one;
  a window counts as collected when ``market_snapshots`` has rows for it — the rule
  ``btc-tracker stats`` uses for its gaps — whether it was collected live or backfilled
  later (the detail says how many were live).
* **Quality**: the share of ``market_indicators`` rows scoring at least 0.8, live rows
  and history rows apart (``features.quality``: history rows score at most 0.4).
* **Latency**: per live tick (a run of one window that collected ``tracked_markets`` and
  started at most ``collect.runs.LIVE_MAX_LAG`` after the window ended, the rule that
  makes its quotes live; an edge refresh is not a tick), the seconds from its first
  asset's start to its last asset's commit, as the ``collection_runs`` rows record them.
  Dagster's own launch of the run is not included.
* **Coverage**: per window, markets quoted (``market_snapshots``) / markets tracked
  (``tracked_markets``), averaged over the windows of the last 7 days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np

from btc_tracker_pipeline.collect.runs import LIVE_MAX_LAG
from btc_tracker_pipeline.health.targets import Metric, metric
from btc_tracker_pipeline.partitions import WINDOW, floor_to_window, key_of
from btc_tracker_pipeline.queries import GOOD_QUALITY

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
_EPS = 1e-9
HISTORY_NOTE = (
    "History rows (backfilled from CLOB prices-history) score at most 0.4: the history "
    "has no book, volume or liquidity, so only freshness and spot can score; the quality "
    "target is for live snapshots."
)


def newest_finished_window(now: datetime) -> datetime:
    """The start of the newest window that had ended at ``now`` (the one a tick collects)."""
    return floor_to_window(now) - WINDOW


def uptime(
    conn: duckdb.DuckDBPyConnection, key: str, now: datetime, span: timedelta | None
) -> Metric:
    """Uptime over the last ``span`` before ``now`` (None: since the first collected
    window), as the metric ``key``."""
    first = conn.execute("SELECT min(window_start) FROM market_snapshots").fetchone()[0]
    last = newest_finished_window(now)
    if first is None or first > last:
        return metric(key, None, 0, "no window collected yet")
    start = first if span is None else max(first, floor_to_window(now) - span)
    scheduled = int((last - start) / WINDOW) + 1
    collected, live = conn.execute(
        "SELECT count(DISTINCT window_start), "
        "count(DISTINCT window_start) FILTER (WHERE source = 'live') "
        "FROM market_snapshots WHERE window_start >= ? AND window_start <= ?",
        [start, last],
    ).fetchone()
    detail = (
        f"{collected:,} of {scheduled:,} windows {key_of(start)} … {key_of(last)} "
        f"({live:,} collected live)"
    )
    return metric(key, collected / scheduled, scheduled, detail)


def quality(conn: duckdb.DuckDBPyConnection) -> list[Metric]:
    """The share of live snapshots with quality ≥ 0.8, and of history snapshots apart."""
    rows = dict(
        (
            (source, (int(n), int(good)))
            for source, n, good in conn.execute(
                "SELECT source, count(*), count(*) FILTER (WHERE quality_score >= ?) "
                "FROM market_indicators GROUP BY source",
                [GOOD_QUALITY - _EPS],
            ).fetchall()
        )
    )
    found = []
    for key, source in (("quality_live", "live"), ("quality_history", "history")):
        n, good = rows.get(source, (0, 0))
        detail = f"{good:,} of {n:,} {source} snapshots" if n else f"no {source} snapshots yet"
        if source == "history" and n:
            detail += "; at most 0.4 by construction (no book, volume or liquidity)"
        found.append(metric(key, good / n if n else None, n, detail))
    return found


_TICKS_SQL = """
WITH runs AS (
    SELECT dagster_run_id, count(DISTINCT window_start) AS windows, min(window_end) AS ended,
           min(started_at) AS began, max(finished_at) AS done
    FROM collection_runs WHERE dagster_run_id IS NOT NULL GROUP BY dagster_run_id
    -- a tick collects; an edge refresh or a single asset rerun from the UI does not
    HAVING bool_or(asset = 'tracked_markets')
)
SELECT epoch(done - began) FROM runs
WHERE windows = 1 AND began >= ended AND began <= ended + ?
ORDER BY began
"""


def tick_seconds(conn: duckdb.DuckDBPyConnection) -> list[float]:
    """Seconds of every live tick, oldest first (see the module docstring)."""
    return [float(s) for (s,) in conn.execute(_TICKS_SQL, [LIVE_MAX_LAG]).fetchall()]


def latency(conn: duckdb.DuckDBPyConnection) -> list[Metric]:
    """Tick latency p50 and p95 over every live tick."""
    seconds = tick_seconds(conn)
    if not seconds:
        why = "no live tick yet (backfilled windows are not ticks)"
        return [metric("latency_p50", None, 0, why), metric("latency_p95", None, 0, why)]
    p50, p95 = np.percentile(seconds, [50, 95])
    ticks = "1 live tick" if len(seconds) == 1 else f"{len(seconds):,} live ticks"
    detail = f"{ticks}, slowest {max(seconds):.2f} s"
    return [
        metric("latency_p50", float(p50), len(seconds), detail),
        metric("latency_p95", float(p95), len(seconds), detail),
    ]


def coverage(conn: duckdb.DuckDBPyConnection, now: datetime) -> Metric:
    """Mean share of tracked markets quoted per window over the last 7 days."""
    last = newest_finished_window(now)
    rows = conn.execute(
        """
        WITH tracked AS (
            SELECT window_start, count(*) AS n FROM tracked_markets
            WHERE window_start > ? AND window_start <= ? GROUP BY 1
        ), quoted AS (
            SELECT window_start, count(*) AS n FROM market_snapshots
            WHERE window_start > ? AND window_start <= ? GROUP BY 1
        )
        SELECT t.window_start, t.n, coalesce(q.n, 0) FROM tracked AS t
        LEFT JOIN quoted AS q USING (window_start) ORDER BY t.window_start
        """,
        [last - WEEK, last, last - WEEK, last],
    ).fetchall()
    if not rows:
        return metric("coverage", None, 0, "no tracked window in the last 7 days")
    shares = [min(q / t, 1.0) for _, t, q in rows]
    worst = min(range(len(rows)), key=lambda i: (shares[i], rows[i][0]))
    ws, tracked, quoted = rows[worst]
    full = sum(s >= 1.0 for s in shares)
    detail = (
        f"{full:,} of {len(rows):,} windows fully quoted; worst {key_of(ws)}: "
        f"{quoted:,} of {tracked:,}"
    )
    return metric("coverage", float(np.mean(shares)), len(rows), detail)


def collection_health(conn: duckdb.DuckDBPyConnection, now: datetime) -> list[Metric]:
    """Every collection metric, in the order of ``targets.SPECS``."""
    return [
        uptime(conn, "uptime_24h", now, DAY),
        uptime(conn, "uptime_7d", now, WEEK),
        uptime(conn, "uptime_all", now, None),
        *quality(conn),
        *latency(conn),
        coverage(conn, now),
    ]
