"""Market indicators: the vectorised ``compute_indicators`` against the seed's per-market loop.

Inputs are ``reference_loop.synthetic_inputs`` worlds (GBM 1m klines, markets of every
family, 3 % missing snapshots, 30 % history rows): ``--markets`` markets × ``--windows``
target windows (+ the 28 lookback windows), so 1,000 and 10,000 markets over 1,000
windows give about 1M and 10M snapshot rows. The tables are sorted by (window_start,
market_id), as the ``market_indicators`` asset reads them; ``--orders`` adds a run on
the generator's market-major order (every table unsorted, so compute_indicators sorts).

Every measurement runs in its own subprocess on inputs read from Parquet: wall time
of the call (median of ``--repeat`` for the vectorised code, one run of the loop) and
the process's peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss`` at its end: polars' Rust
allocations included, unlike tracemalloc), with the RSS once the inputs were loaded.
The loop (``reference_loop.reference_indicators``) runs on every market up to
``--loop-max-rows`` snapshot rows; above, on a random ``--sample`` share of the markets
(their snapshots and tracked rows; all klines and spot rows), and the speed-up is the
ratio of rows per second. Outputs are compared with ``assert_frame_equal`` (relative
tolerance 1e-9, as ``test_vectorized_equals_the_per_market_loop``): the vectorised
rows of the markets the loop ran on against the loop's.

    .venv/bin/python bench/indicators.py --markets 1000 10000 --windows 1000 --repeat 3

Writes the table to bench/results/indicators.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
from bench_report import write_results  # (bench/ is on sys.path)
from polars.testing import assert_frame_equal
from rich.console import Console
from rich.table import Table

from btc_tracker_pipeline.features.indicators import compute_indicators
from btc_tracker_pipeline_tests.features.reference_loop import (
    reference_indicators,
    synthetic_inputs,
)

TABLES = ("snapshots", "tracked", "spot_windows", "klines")
ORDERS = {"warehouse": "sorted input", "market-major": "market-major input"}
REL_TOL, ABS_TOL = 1e-9, 1e-12
TEXT_COLUMNS = ("implementation", "equal to loop")

HEADERS = [
    "implementation",
    "snapshot rows",
    "markets",
    "rows out",
    "wall s",
    "CPU s",
    "rows/s",
    "peak RSS MB",
    "inputs MB",
    "speed-up",
    "CPU speed-up",
    "equal to loop",
]


@dataclass
class Run:
    """One measured call: what ran, on how much, how long, how much memory."""

    size: str
    implementation: str
    order: str
    markets: int
    windows: int
    snapshot_rows: int
    rows_out: int
    seconds: list[float]
    cpu_seconds: list[float]
    peak_mb: float
    inputs_mb: float
    speedup: str = ""
    cpu_speedup: str = ""
    equal: str = ""

    @property
    def wall(self) -> float:
        """Median wall time of the runs."""
        return statistics.median(self.seconds)

    @property
    def cpu(self) -> float:
        """Median CPU time of the runs (all threads of the process)."""
        return statistics.median(self.cpu_seconds)

    @property
    def rate(self) -> float:
        """Output rows per second."""
        return self.rows_out / self.wall


# --- worker side (each in its own process) -------------------------------------------------


def _rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """Peak resident set size of this process so far, MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(data: Path, markets: int, windows: int, seed: int) -> dict:
    """Write the synthetic world's tables to ``data`` (Parquet, sorted as the asset reads
    them) and the target windows to targets.json; return their sizes."""
    world = synthetic_inputs(n_markets=markets, n_targets=windows, seed=seed)
    by_window = ["window_start", "market_id"]
    tables = {
        "snapshots": world.snapshots.sort(by_window),
        "tracked": world.tracked.sort(by_window),
        "spot_windows": world.spot_windows.sort("window_start"),
        "klines": world.klines.sort("open_time"),
    }
    for name, frame in tables.items():
        frame.write_parquet(data / f"{name}.parquet")
    targets = [t.isoformat() for t in world.target_starts]
    (data / "targets.json").write_text(json.dumps(targets))
    return {"snapshot_rows": tables["snapshots"].height, "markets": markets}


def load_inputs(data: Path, order: str, sample: Path | None) -> tuple[pl.DataFrame, ...]:
    """The four tables (market-major order on request; only the sampled markets'
    snapshots and tracked rows when ``sample`` names a file of market ids)."""
    frames = {name: pl.read_parquet(data / f"{name}.parquet") for name in TABLES}
    if sample is not None:
        ids = pl.Series(json.loads(sample.read_text()))
        for name in ("snapshots", "tracked"):
            frames[name] = frames[name].filter(pl.col("market_id").is_in(ids.implode()))
    if order == "market-major":
        for name in ("snapshots", "tracked"):
            frames[name] = frames[name].sort("market_id", "window_start")
    return tuple(frames[name] for name in TABLES)


def measure(kind: str, data: Path, out: Path, order: str, repeat: int, sample: Path | None) -> dict:
    """Load the inputs, time ``repeat`` calls of the vectorised code or the loop, write
    the last output to ``out``; return times, rows and memory."""
    snapshots, tracked, spot, klines = load_inputs(data, order, sample)
    targets = [datetime.fromisoformat(t) for t in json.loads((data / "targets.json").read_text())]
    function = compute_indicators if kind == "vectorised" else reference_indicators
    gc.collect()
    inputs_mb = _rss_mb()
    seconds, cpu_seconds, result = [], [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = function(snapshots, tracked, spot, klines, targets)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    peak_mb = _peak_mb()
    assert result is not None
    result.write_parquet(out)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rows_out": result.height,
        "snapshot_rows": snapshots.height,
        "markets": tracked["market_id"].n_unique(),
        "peak_mb": peak_mb,
        "inputs_mb": inputs_mb,
    }


def worker(args: argparse.Namespace) -> None:
    """The ``--worker`` entry point: print one JSON line with the result."""
    data = Path(args.data)
    if args.worker == "generate":
        result = generate(data, args.markets[0], args.windows, args.seed)
    else:
        sample = Path(args.sample_file) if args.sample_file else None
        result = measure(args.worker, data, Path(args.out), args.order, args.repeat, sample)
    print(json.dumps(result))


# --- parent side ---------------------------------------------------------------------------


def spawn(*worker_args: str) -> dict:
    """Run this script as a worker in a fresh process and return its JSON line."""
    command = [sys.executable, __file__, "--worker", *worker_args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {worker_args} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def label(rows: int) -> str:
    """1M-style label of a row count."""
    return f"{rows / 1e6:.0f}M" if rows >= 1e6 else f"{rows / 1e3:.0f}k"


def sample_markets(data: Path, share: float, seed: int) -> list[str]:
    """A random ``share`` of the tracked markets (at least one), sorted."""
    ids = pl.scan_parquet(data / "tracked.parquet").select("market_id").unique().collect()
    ids = ids["market_id"].sort().to_list()
    rng = np.random.default_rng(seed)
    count = max(1, round(share * len(ids)))
    return sorted(rng.choice(ids, size=count, replace=False).tolist())


def compare(fast_file: Path, loop_file: Path, markets: list[str] | None) -> str:
    """assert_frame_equal of the vectorised rows (of ``markets`` only, if given) and
    the loop's; the verdict as a table cell."""
    fast = pl.scan_parquet(fast_file)
    if markets is not None:
        fast = fast.filter(pl.col("market_id").is_in(markets))
    fast_rows, loop_rows = fast.collect(), pl.read_parquet(loop_file)
    try:
        assert_frame_equal(fast_rows, loop_rows, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    except AssertionError as error:
        first = str(error).splitlines()[0]
        return f"NO: {first}"
    scope = "all" if markets is None else f"{len(markets):,} sampled markets,"
    return f"yes: {scope} {loop_rows.height:,} rows"


def run_size(markets: int, args: argparse.Namespace, work: Path) -> list[Run]:
    """Generate one world, measure the vectorised code (each order) and the loop."""
    data = work / f"m{markets}"
    data.mkdir()
    info = spawn("generate", "--data", str(data), "--markets", str(markets), *_common(args))
    size = label(info["snapshot_rows"])
    runs, fast_files = [], {}
    for order in args.orders:
        fast_files[order] = data / f"vectorised-{order}.parquet"
        result = spawn(
            "vectorised",
            "--data",
            str(data),
            "--out",
            str(fast_files[order]),
            "--order",
            order,
            "--repeat",
            str(args.repeat),
            *_common(args),
        )
        runs.append(_run(size, "vectorised", order, args, result))
        print(f"{size} vectorised {order}: {runs[-1].seconds}", file=sys.stderr)
    sampled = None
    loop_args = ["--data", str(data), "--out", str(data / "loop.parquet"), "--repeat", "1"]
    if info["snapshot_rows"] > args.loop_max_rows:
        sampled = sample_markets(data, args.sample, args.seed)
        (data / "sample.json").write_text(json.dumps(sampled))
        loop_args += ["--sample-file", str(data / "sample.json")]
    result = spawn("loop", *loop_args, "--order", "warehouse", *_common(args))
    name = "Python loop" + ("" if sampled is None else f", {args.sample:.0%} of markets")
    loop = _run(size, name, "", args, result)
    print(f"{size} loop: {loop.seconds}", file=sys.stderr)
    equal = compare(fast_files[args.orders[0]], data / "loop.parquet", sampled)
    for run in runs:
        run.speedup = f"{run.rate / loop.rate:.0f}×"
        cpu_rate, loop_cpu_rate = run.rows_out / run.cpu, loop.rows_out / loop.cpu
        run.cpu_speedup = f"{cpu_rate / loop_cpu_rate:.0f}×"
        run.equal = equal if run.order == args.orders[0] else ""
    loop.speedup, loop.cpu_speedup, loop.equal = "1×", "1×", "(reference)"
    return [*runs, loop]


def _common(args: argparse.Namespace) -> list[str]:
    return ["--windows", str(args.windows), "--seed", str(args.seed)]


def _run(size: str, implementation: str, order: str, args: argparse.Namespace, r: dict) -> Run:
    return Run(
        size=size,
        implementation=implementation,
        order=order,
        markets=r["markets"],
        windows=args.windows,
        snapshot_rows=r["snapshot_rows"],
        rows_out=r["rows_out"],
        seconds=r["seconds"],
        cpu_seconds=r["cpu_seconds"],
        peak_mb=r["peak_mb"],
        inputs_mb=r["inputs_mb"],
    )


def cells(run: Run) -> list[str]:
    """One table row."""
    return [
        ", ".join(filter(None, [run.implementation, ORDERS.get(run.order, "")])),
        f"{run.snapshot_rows:,}",
        f"{run.markets:,}",
        f"{run.rows_out:,}",
        f"{run.wall:.2f}",
        f"{run.cpu:.2f}",
        f"{run.rate:,.0f}",
        f"{run.peak_mb:,.0f}",
        f"{run.inputs_mb:,.0f}",
        run.speedup,
        run.cpu_speedup,
        run.equal,
    ]


def show(runs: list[Run], title: str) -> None:
    """Print the rich table."""
    table = Table(title=title)
    for header in HEADERS:
        table.add_column(header, justify="left" if header in TEXT_COLUMNS else "right")
    for run in runs:
        table.add_row(*cells(run))
    Console(width=160).print(table)


def notes(args: argparse.Namespace) -> list[str]:
    """The notes under the Markdown table."""
    import xgboost

    return [
        f"polars {pl.__version__}, numpy {np.__version__}, xgboost {xgboost.__version__}; "
        f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'default (nproc)')}.",
        "Inputs: `synthetic_inputs(n_markets, n_targets=windows, seed)` of "
        "btc_tracker_pipeline_tests/features/reference_loop.py, written to Parquet; every "
        "call reads them from there in a fresh process.",
        "`sorted input`: snapshots and tracked rows ordered by (window_start, market_id), as "
        "the market_indicators asset reads them; `market-major input`: ordered by "
        "(market_id, window_start), so compute_indicators sorts them first.",
        f"`wall s`: median of {args.repeat} calls for the vectorised code, one call for the "
        "loop; rows/s = output rows / wall s; `speed-up` = vectorised rows/s ÷ loop rows/s "
        "of the same world (the time ratio when the loop ran on every market). `CPU s`: "
        "process CPU time of the call, all threads (polars uses both cores; numpy and the "
        "loop one); `CPU speed-up` is the same ratio in CPU time, which other work on the "
        "shared machine disturbs less than wall time.",
        "`peak RSS MB`: the measuring process's ru_maxrss (inputs, the call, its output); "
        "`inputs MB`: its RSS once the inputs were loaded, before the first call (Python, "
        "the imports and polars take about 180 MB of it). The loop ran on sorted input.",
        f"Above {args.loop_max_rows:,} snapshot rows the loop runs on a random "
        f"{args.sample:.0%} of the markets (seed {args.seed}); the vectorised rows of "
        "those markets (from the full run) are compared with the loop's.",
        "`equal to loop`: polars `assert_frame_equal(rel_tol=1e-9, abs_tol=1e-12)` on "
        "every column (the loop uses the Wilder recursion and math.erfc, so the last "
        "bits differ).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--windows", type=int, default=1000, help="target windows")
    parser.add_argument("--repeat", type=int, default=3, help="vectorised calls per size")
    parser.add_argument(
        "--orders", nargs="+", choices=list(ORDERS), default=["warehouse", "market-major"]
    )
    parser.add_argument("--loop-max-rows", type=int, default=2_000_000)
    parser.add_argument("--sample", type=float, default=0.1, help="share of markets")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--worker", choices=["generate", "vectorised", "loop"], help=argparse.SUPPRESS
    )
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--order", default="warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--sample-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="btc-bench-indicators-") as tmp:
        runs = [run for markets in args.markets for run in run_size(markets, args, Path(tmp))]
    title = (
        f"Market indicators: vectorised compute_indicators vs the per-market Python loop, "
        f"{args.windows:,} target windows"
    )
    show(runs, title)
    path = write_results("indicators", title, HEADERS, [cells(r) for r in runs], notes(args))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
