"""Tick latency: one live 15-minute collection at 10, 100, 1,000 and 5,000 open markets.

For each size, a simulated world (seed 7; the last window ends 2026-03-01 00:00 UTC, the
clock stands one minute later) is served by the replay server and ``collect_job`` runs
live in this process through ``runner.run_windows``, as the schedule's tick would:
tracked_markets, market_snapshots, btc_spot_prices, market_paths, market_resolutions,
market_indicators and edge_report for the window that just ended. The worlds list
Polymarket's 5-minute up/down markets too (``--no-updown-5m``: without them), so the
tick takes the minute paths of three 5-minute markets, one 15-minute and one hourly
market per window. Each size first runs
one warm-up tick (the window before), then ``--ticks`` measured ticks on the following
windows; the table shows the median tick. Python start-up and imports are in no tick
(printed once); ``first tick s`` is the warm-up tick.

``--server thread`` is ``replay_session``'s in-process server (its Python work shares
the GIL with the pipeline); ``--server process`` serves the same world from a child
process, like a remote API. Both by default (``--server thread process``), one row each.

    .venv/bin/python bench/tick_latency.py --markets 10 100 1000 5000 --ticks 3

Writes the table to bench/results/tick_latency.md (``--results NAME``: to NAME instead).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

_started = time.perf_counter()
warnings.filterwarnings("ignore", message=".*currently in beta")
from bench_report import ResultTable, write_results  # noqa: E402  (bench/ is on sys.path)
from live_tick import ASSETS, SHORT, SIZES, TickResult, run_live_tick  # noqa: E402
from replay_backend import ServerMode, replay_bench  # noqa: E402
from rich.console import Console  # noqa: E402

from btc_tracker_pipeline.definitions import defs  # noqa: E402
from btc_tracker_pipeline.partitions import WINDOW  # noqa: E402

IMPORT_S = time.perf_counter() - _started
_started = time.perf_counter()
defs().resolve_job_def("collect_job")
LOAD_S = time.perf_counter() - _started

PER_ASSET = "per asset s:\n" + " ".join(SHORT[a] for a in ASSETS)
HEADERS = [
    "open markets",
    "server",
    "tick wall s",
    "tick CPU s",
    "first tick s",
    PER_ASSET,
    "Dagster s",
    "replay busy s",
    "requests\ngamma\n/clob\n/binance",
    "rows written",
    "s per 1,000 markets",
    "marginal s per 1,000 (vs the size above)",
]


def measure_size(
    target: int, now: datetime, ticks: int, seed: int, mode: ServerMode, updown_5m: bool
) -> tuple[float, TickResult]:
    """Warm-up tick, then ``ticks`` measured ticks; (warm-up seconds, median tick)."""
    size = SIZES[target]
    first_start = now - WINDOW - ticks * WINDOW
    with (
        tempfile.TemporaryDirectory(prefix=f"btc-tick-{target}-") as folder,
        replay_bench(
            mode,
            Path(folder),
            first_start + WINDOW,
            seed=seed,
            strikes_per_ladder=size.strikes_per_ladder,
            updown_lead=size.updown_lead,
            updown_5m=updown_5m,
        ) as bench,
    ):
        warm = run_live_tick(bench, first_start)
        if not warm.success:
            raise SystemExit(f"warm-up tick failed: {warm.error}")
        results = []
        for i in range(1, ticks + 1):
            result = run_live_tick(bench, first_start + i * WINDOW)
            if not result.success:
                raise SystemExit(f"tick {result.key} failed: {result.error}")
            results.append(result)
    return warm.wall_s, _median(results)


def _median(results: list[TickResult]) -> TickResult:
    """The tick of median wall time, its per-step times replaced by per-step medians."""
    chosen = sorted(results, key=lambda r: r.wall_s)[len(results) // 2]
    chosen.steps_s = {
        step: statistics.median(r.steps_s.get(step, 0.0) for r in results)
        for step in chosen.steps_s
    }
    return chosen


def table_rows(measured: list[tuple[ServerMode, float, TickResult]]) -> list[list[str]]:
    """One row of cells per (size, server); the marginal cost is against the next smaller
    size measured with the same server."""
    previous: dict[str, TickResult] = {}
    rows = []
    for mode, warm_s, r in measured:
        before = previous.get(mode)
        previous[mode] = r
        n = r.open_markets
        extra = n - before.open_markets if before else 0
        marginal = (r.wall_s - before.wall_s) / extra * 1000 if before and extra > 0 else None
        steps = [r.steps_s.get(a, 0.0) for a in ASSETS]
        rows.append(
            [
                f"{n:,}",
                mode,
                f"{r.wall_s:.2f}",
                f"{r.cpu_s:.2f}",
                f"{warm_s:.2f}",
                " ".join(f"{s:.2f}" for s in steps),
                f"{r.wall_s - sum(steps):.2f}",
                f"{r.server.busy_s:.2f}",
                f"{r.requests('gamma')}/{r.requests('clob')}/{r.requests('binance')}",
                f"{sum(r.rows.values()):,}",
                f"{r.wall_s / n * 1000:.2f}",
                "" if marginal is None else f"{marginal:.2f}",
            ]
        )
    return rows


def notes(measured: list[tuple[ServerMode, float, TickResult]]) -> list[str]:
    """What the columns mean, what the numbers leave out, and per-size details."""
    largest = max(measured, key=lambda m: m[2].open_markets)[2]
    details = "; ".join(
        f"{r.open_markets:,} ({mode}): code load {r.load_s:.2f} s, "
        f"{r.server.peak_10s['/gamma/markets']} Gamma /markets requests, "
        f"{r.server.peak_in_flight} in flight"
        for mode, _, r in measured
    )
    return [
        f"Not in any tick: Python start-up and imports ({IMPORT_S:.1f} s here, once) and "
        "loading the code location (`definitions.defs()`, "
        f"{LOAD_S:.1f} s the first time). `run_windows` reloads the code location on every "
        "call, so that load is timed inside each tick and subtracted (listed below as "
        "`code load`). Under the Dagster daemon every run is a fresh process and pays "
        "both (docs/dagster.md §3).",
        "`first tick s` is the warm-up tick (the window before, same world, new warehouse); "
        "`tick wall s` is the median of the measured ticks: `run_windows([key])` from call "
        "to return. Per-asset times are Dagster step durations (step start to step success "
        "in the run's event log, asset checks included: " + ", ".join(ASSETS) + "); `Dagster s` "
        "is the rest of the tick (run start and end events, resources, orchestration).",
        "`tick CPU s`: CPU time of this process during the tick (all its threads, so with "
        "`thread` the replay server's too); less sensitive than wall time to the other "
        "work on this shared machine.",
        "`replay busy s`: time the replay server spent answering, summed over its threads. "
        "With `thread` it shares the GIL (and the 2 cores) with the pipeline, so it is "
        "inside the tick wall time; with `process` it runs beside it. The world's "
        "per-minute cache is warmed before each tick (the fake's own cost).",
        "Rate limits (docs/apis.md §1.1, §2): peak requests begun in any 10 s and most "
        f"requests in flight at once, per size: {details}. Limits: {largest.rate_note()}. "
        f"Requests at {largest.open_markets:,} markets by route: "
        + ", ".join(f"`{route}` {n}" for route, n in largest.server.routes.items())
        + ".",
        "`edge_report` runs without a trained model (every row PASS, `no_model`).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, nargs="+", default=sorted(SIZES), choices=SIZES)
    parser.add_argument("--ticks", type=int, default=3, help="measured ticks per size (median)")
    parser.add_argument(
        "--server", nargs="+", choices=("thread", "process"), default=["thread", "process"]
    )
    parser.add_argument("--now", default="2026-03-01T00:00:00", help="end of the last window")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--updown-5m",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="list the 5-minute up/down markets too (288 a day)",
    )
    parser.add_argument("--results", default="tick_latency", help="write bench/results/<this>.md")
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now)
    console = Console(width=160)
    progress = Console(stderr=True)
    measured = []
    for target in sorted(args.markets):
        for mode in args.server:
            started = time.perf_counter()
            warm_s, result = measure_size(target, now, args.ticks, args.seed, mode, args.updown_5m)
            measured.append((mode, warm_s, result))
            took = time.perf_counter() - started
            progress.print(f"[dim]{target:>5} markets, {mode} server: {took:.0f} s[/]")
    measured.sort(key=lambda m: (m[0] != args.server[0], m[2].open_markets))
    table = ResultTable(
        f"Live 15-minute tick (collect_job), median of {args.ticks} after 1 warm-up",
        HEADERS,
        table_rows(measured),
        left=2,
        no_wrap=[HEADERS.index(PER_ASSET)],
    )
    console.print(table.rich())
    for note in notes(measured):
        console.print(f"- {note}", highlight=False)
    path = write_results(args.results, table.title, HEADERS, table.rows, notes(measured))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
