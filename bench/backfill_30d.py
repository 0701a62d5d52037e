"""A 30-day backfill of every BTC market family, and a live tick on top of it.

Backfills ``--days`` days of 15-minute windows (2,880 for 30 days) through
``runner.run_windows`` — one Dagster run per day, as ``btc-tracker backfill`` does —
against a simulated world (seed 7, all four families, default strikes) on the replay
server, then prints wall time, windows per second and the requests made against two
minimums (``request_minimums.py``; docs/apis.md §2.1, §3.6):

* per run: what one run per day would need if runs shared nothing — one prices-history
  call per YES token per day-run it is tracked in, ceil((24 h lookback + the run's
  minutes) / 1000) kline pages;
* whole range: what the APIs allow — one prices-history call per token per 15 days of
  the history it needs, ceil((24 h + every minute of the range) / 1000) kline pages.
  The design's target (≤ 1.1×) is against this one; runs share fetches through the
  warehouse's backfill caches (collect/history_cache.py, collect/kline_cache.py).

Then the design's flat-cost check (docs/performance.md, "Targets"): a live tick
(``bench/live_tick.py``: warm-up + median of ``--ticks``) on the 30-day warehouse
against the same ticks on an empty warehouse, same world.

    nohup .venv/bin/python bench/backfill_30d.py --days 30 > /tmp/backfill_30d.log 2>&1 &

Writes bench/results/backfill_30d.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

warnings.filterwarnings("ignore", message=".*currently in beta")
import duckdb  # noqa: E402
from bench_report import ResultTable, write_results  # noqa: E402  (bench/ is on sys.path)
from live_tick import ASSETS, SHORT, TickResult, run_live_tick  # noqa: E402
from replay_backend import ServerMode, ServerReport, replay_bench  # noqa: E402
from request_minimums import kline_minimums, token_minimums  # noqa: E402
from rich.console import Console  # noqa: E402

from btc_tracker_pipeline.partitions import WINDOW, key_of  # noqa: E402
from btc_tracker_pipeline.runner import (  # noqa: E402
    ChunkOutcome,
    chunks,
    partition_keys,
    run_windows,
)

TABLES = (
    "tracked_markets",
    "market_snapshots",
    "market_resolutions",
    "market_indicators",
    "btc_spot_prices",
    "edge_report",
)


@dataclass
class Backfill:
    """What the backfill did."""

    keys: list[str]
    outcomes: list[ChunkOutcome]
    wall_s: float
    cpu_s: float
    server: ServerReport
    rows: dict[str, int]
    tokens_per_run: int
    token_requests_needed: int
    warehouse_mb: float


def run_backfill(
    mode: ServerMode, folder: Path, now: datetime, args: argparse.Namespace
) -> Backfill:
    """Backfill ``args.days`` days of windows before ``now`` into ``folder``."""
    log = Console(stderr=True)
    keys = partition_keys(key_of(now - timedelta(days=args.days)), key_of(now - WINDOW))
    with replay_bench(mode, folder, now, seed=args.seed, days=args.world_days) as bench:
        bench.backend.reset()
        started, cpu = time.perf_counter(), time.process_time()

        def progress(outcome: ChunkOutcome) -> None:
            took = time.perf_counter() - started
            state = "ok" if outcome.success else f"FAILED {outcome.error}"
            log.print(f"{outcome.first_key} … {outcome.last_key}: {state} ({took:.0f} s)")

        outcomes = run_windows(keys, instance=bench.instance, on_chunk=progress, log_level="ERROR")
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        server = bench.backend.report()
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        per_run, needed = token_minimums(conn)
    size_mb = (folder / "warehouse.duckdb").stat().st_size / 2**20
    return Backfill(keys, outcomes, wall, cpu, server, rows, per_run, needed, size_mb)


def backfill_table(b: Backfill, args: argparse.Namespace) -> ResultTable:
    """Wall time, throughput and requests against both minimums."""
    runs = chunks(b.keys)
    kline_run, kline_all = kline_minimums(b.keys)
    routes = b.server.routes
    ph = routes.get("/clob/prices-history", 0)
    kl = routes.get("/binance/api/v3/klines", 0)
    gk = routes.get("/gamma/markets/keyset", 0)

    def ratio(n: int, d: int) -> str:
        return f"{n / d:.3f}" if d else ""

    rows = [
        ["runs (one per day)", str(len(b.outcomes)), str(len(runs)), "", "", ""],
        ["runs failed", str(sum(not o.success for o in b.outcomes)), "0", "", "", ""],
        ["wall time (s)", f"{b.wall_s:.0f}", "", "", "", ""],
        ["CPU time of this process (s)", f"{b.cpu_s:.0f}", "", "", "", ""],
        ["windows per second", f"{len(b.keys) / b.wall_s:.2f}", "", "", "", ""],
        ["seconds per simulated day", f"{b.wall_s / args.days:.1f}", "", "", "", ""],
        [
            "CLOB prices-history requests",
            str(ph),
            str(b.tokens_per_run),
            ratio(ph, b.tokens_per_run),
            str(b.token_requests_needed),
            ratio(ph, b.token_requests_needed),
        ],
        [
            "Binance klines requests",
            str(kl),
            str(kline_run),
            ratio(kl, kline_run),
            str(kline_all),
            ratio(kl, kline_all),
        ],
        ["Gamma keyset pages", str(gk), "", "", "", ""],
        ["other requests", str(sum(routes.values()) - ph - kl - gk), "", "", "", ""],
        [
            "peak prices-history per 10 s (limit 1000)",
            str(b.server.peak_10s["/clob/prices-history"]),
            "",
            "",
            "",
            "",
        ],
        [
            "peak Gamma /markets per 10 s (limit 300)",
            str(b.server.peak_10s["/gamma/markets"]),
            "",
            "",
            "",
            "",
        ],
        ["warehouse size (MB)", f"{b.warehouse_mb:.0f}", "", "", "", ""],
    ]
    rows += [[f"rows {t}", f"{n:,}", "", "", "", ""] for t, n in b.rows.items()]
    headers = ["measure", "value", "minimum per run", "ratio", "minimum whole range", "ratio"]
    title = (
        f"Backfill of {len(b.keys):,} windows ({args.days} days), all families, seed {args.seed}"
    )
    return ResultTable(title, headers, rows)


def ticks(
    mode: ServerMode, folder: Path, now: datetime, args: argparse.Namespace
) -> list[TickResult]:
    """A warm-up tick on the window starting at ``now``, then ``args.ticks`` measured ones."""
    with replay_bench(mode, folder, now, seed=args.seed, days=args.world_days) as bench:
        results = [run_live_tick(bench, now + i * WINDOW) for i in range(args.ticks + 1)]
    failed = [r for r in results if not r.success]
    if failed:
        raise SystemExit(f"tick {failed[0].key} failed: {failed[0].error}")
    return results[1:]


def tick_table(empty: list[TickResult], full: list[TickResult], days: int) -> ResultTable:
    """Median live tick on an empty warehouse and on the backfilled one, and their ratio."""

    def medians(results: list[TickResult]) -> list[float]:
        values = [lambda r: r.wall_s, lambda r: r.cpu_s]
        values += [lambda r, a=a: r.steps_s.get(a, 0.0) for a in ASSETS]
        return [statistics.median(value(r) for r in results) for value in values]

    before, after = medians(empty), medians(full)
    rows = [
        [label, f"{results[0].open_markets:,}", *(f"{v:.2f}" for v in values)]
        for label, results, values in (
            ("empty warehouse", empty, before),
            (f"after {days} days", full, after),
        )
    ]
    ratios = [f"{a / b:.2f}" if b else "" for a, b in zip(after, before, strict=True)]
    rows.append(["ratio", "", *ratios])
    headers = ["warehouse", "open markets", "tick wall s", "tick CPU s"]
    headers += [f"{SHORT[a]} s" for a in ASSETS]
    title = f"Live tick, median of {len(empty)} after 1 warm-up (design target: ≤ 1.2× empty)"
    return ResultTable(title, headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of windows to backfill")
    parser.add_argument("--world-days", type=int, default=None, help="simulated history (days + 1)")
    parser.add_argument("--now", default="2026-03-01T00:00:00", help="world clock (UTC)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server", choices=("thread", "process"), default="thread")
    parser.add_argument("--ticks", type=int, default=3, help="measured live ticks (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the backfilled warehouse")
    args = parser.parse_args()
    args.world_days = args.world_days or args.days + 1
    now = datetime.fromisoformat(args.now)
    console = Console(width=160)
    full = Path(tempfile.mkdtemp(prefix="btc-backfill-30d-"))
    backfill = run_backfill(args.server, full, now, args)
    tables = [backfill_table(backfill, args)]
    console.print(tables[0].rich())
    if args.ticks:
        on_history = ticks(args.server, full, now, args)
        with tempfile.TemporaryDirectory(prefix="btc-empty-") as empty:
            on_empty = ticks(args.server, Path(empty), now, args)
        tables.append(tick_table(on_empty, on_history, args.days))
        console.print(tables[1].rich())
    notes = [
        f"Replay server: `{args.server}` (`thread` is `replay_session`'s in-process server, "
        "whose work shares the GIL with the pipeline, as in bench/backfill_requests.py).",
        "Minimum per run: what one Dagster run per day of windows (runner.py, "
        "BackfillPolicy.multi_run(96)) would need if runs shared nothing; minimum whole "
        "range: one prices-history request per YES token per 15 days of the history it "
        "needs and one klines page per 1,000 minutes of the range plus the 24 h lookback "
        "(bench/request_minimums.py). Runs share fetches through the warehouse's backfill "
        "caches, so the target (≤ 1.1×) is against the whole range.",
        f"Warehouse: {full / 'warehouse.duckdb'}"
        + (" (kept)." if args.keep else " (deleted at the end; `--keep` keeps it)."),
        "Ticks: live `collect_job` for the windows after the backfill (clock one minute past "
        "each window end), a warm-up tick then the median of the measured ticks, on the "
        "backfilled warehouse and on a new one; `edge_report` without a model; `tick wall s` "
        "leaves out loading the code location, as in bench/results/tick_latency.md.",
    ]
    for note in notes:
        console.print(f"- {note}", highlight=False)
    first = tables[0]
    path = write_results(
        "backfill_30d", first.title, first.headers, first.rows, notes, more_tables=tables[1:]
    )
    console.print(f"wrote {path}")
    if not args.keep:
        shutil.rmtree(full, ignore_errors=True)
    sys.exit(0 if all(o.success for o in backfill.outcomes) else 1)


if __name__ == "__main__":
    main()
