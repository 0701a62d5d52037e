"""Backfill cost against the replay server: wall time and requests versus the minimum.

Runs the same code path as `btc-tracker backfill` (runner.run_windows, one Dagster run
per day of windows) over a simulated world, then prints one table.

    .venv/bin/python bench/backfill_requests.py --days 4 --world-days 5

Minimum requests (docs/apis.md §2.1, §3.6; ``request_minimums.py``), two ways:
- per run: one prices-history call per YES token per day-run it is tracked in,
  ceil((24 h lookback + the run's minutes) / 1000) kline pages per run — what runs that
  share nothing would need;
- whole range: one prices-history call per token per 15 days of the history it needs,
  ceil((24 h + every minute of the range) / 1000) kline pages — what the APIs allow, and
  what the design's target (≤ 1.1×) is measured against. Runs share fetches through the
  warehouse's backfill caches (collect/history_cache.py, collect/kline_cache.py).

Minute paths (``market_paths``) read the up/down tokens ``market_snapshots`` fetched
from the history cache: the prices-history minimum is the same with them, and the table
shows what ``market_paths`` asked for itself against what it would need alone (one
prices-history request per up/down token per day-run). The world lists 5-minute
up/down markets unless ``--no-updown-5m``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from request_minimums import kline_minimums, token_minimums  # bench/ is on sys.path
from rich.console import Console
from rich.table import Table

from btc_tracker_pipeline.partitions import key_of
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import chunks, partition_keys, run_windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4, help="days of windows to backfill")
    parser.add_argument("--world-days", type=int, default=5, help="days of simulated history")
    parser.add_argument("--now", default="2026-03-01T00:00:00", help="world clock (UTC)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--updown-5m",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="list the 5-minute up/down markets too (288 a day)",
    )
    args = parser.parse_args()

    now = datetime.fromisoformat(args.now)
    first = now - timedelta(days=args.days)
    keys = partition_keys(key_of(first), key_of(now - timedelta(minutes=15)))
    tmp = Path(tempfile.mkdtemp(prefix="btc-bench-"))
    world = SimulatedWorld(seed=args.seed, days=args.world_days, now=now, updown_5m=args.updown_5m)
    with replay_session(world, tmp) as session:
        started = time.perf_counter()
        outcomes = run_windows(keys, instance=session.instance)
        elapsed = time.perf_counter() - started
        stats = session.server.stats()["routes"]

    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as conn:
        tokens_per_run, tokens_whole = token_minimums(conn)
        rows = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in (
                "tracked_markets",
                "market_snapshots",
                "market_paths",
                "market_resolutions",
                "market_indicators",
                "btc_spot_prices",
            )
        }
        path_runs = conn.execute(
            "SELECT count(*), sum(requests) FROM collection_runs WHERE asset = 'market_paths' "
            "AND requests > 0"
        ).fetchone()
        path_tokens_per_run = conn.execute(
            "SELECT sum(n) FROM (SELECT count(DISTINCT yes_token_id) AS n FROM market_paths "
            "GROUP BY date_trunc('day', window_start))"
        ).fetchone()[0]
    n_chunks = len(chunks(keys))
    kline_run, kline_whole = kline_minimums(keys)

    console = Console(width=160)
    table = Table(title=f"Backfill of {len(keys)} windows ({args.days} days), seed {args.seed}")
    headers = ("measure", "value", "minimum per run", "ratio", "minimum whole range", "ratio")
    for col in headers:
        table.add_column(col, justify="right" if col != "measure" else "left")
    table.add_row("runs (one per day)", str(len(outcomes)), str(n_chunks), "", "", "")
    table.add_row("runs failed", str(sum(not o.success for o in outcomes)), "0", "", "", "")
    table.add_row("wall time (s)", f"{elapsed:.1f}", "", "", "", "")
    table.add_row("windows per second", f"{len(keys) / elapsed:.2f}", "", "", "", "")
    ph = stats.get("/clob/prices-history", 0)
    table.add_row(
        "CLOB prices-history requests",
        str(ph),
        str(tokens_per_run),
        f"{ph / tokens_per_run:.3f}",
        str(tokens_whole),
        f"{ph / tokens_whole:.3f}",
    )
    kl = stats.get("/binance/api/v3/klines", 0)
    table.add_row(
        "Binance klines requests",
        str(kl),
        str(kline_run),
        f"{kl / kline_run:.3f}",
        str(kline_whole),
        f"{kl / kline_whole:.3f}",
    )
    path_requests = int(path_runs[1] or 0)
    table.add_row(
        "requests by market_paths (1 /clob/time per run incl.)",
        str(path_requests),
        str(path_tokens_per_run),
        f"{path_requests / path_tokens_per_run:.3f}" if path_tokens_per_run else "",
        "",
        "",
    )
    gk = stats.get("/gamma/markets/keyset", 0)
    table.add_row("Gamma keyset pages", str(gk), "", "", "", "")
    for name, count in rows.items():
        table.add_row(f"rows {name}", str(count), "", "", "", "")
    console.print(table)


if __name__ == "__main__":
    main()
