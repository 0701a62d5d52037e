"""Model training and evaluation time: ``walk_forward_evaluate`` and ``train_final`` at
100k and 1M dataset rows.

The dataset is built the pipeline's way (``model.dataset.build_dataset`` over
``market_indicators``, ``market_resolutions`` and market rows) from a synthetic world:
BTC a driftless GBM (σ = 50 %/yr) on the 15-minute grid; events are strike ladders
(``--strikes`` "above" or "below" markets sharing one expiry, strikes at spot ± 6 %),
each market snapshotted every 15 minutes for 100–400 windows before its expiry (3 %
of snapshots missing), expiries spread uniformly over ``--days`` days. The true
probability q is the GBM's N(d₂); the market price is σ((1 − b)·logit q) + 1¢ noise
(``--bias`` b, a favourite–longshot distortion as in the model tests, so the booster
finds something to fit and grows trees). Every FEATURES column is filled: price
features from the prices (momentum from the market's own series), spot features from
the path, the structural probability N(d₂) with a noisy realised volatility;
volatility, RSI and volume spike are plausible random values.

Each measurement runs in its own subprocess on the dataset read from Parquet: wall
time of the call and the process's peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``,
XGBoost's and polars' native memory included), with the RSS once the dataset was
loaded. Defaults of the pipeline throughout: daily test windows, 1 h embargo, 1,000
bootstrap resamples, XGBoost with ``n_jobs=2``.

    .venv/bin/python bench/training.py --rows 100000 1000000 --days 30

Writes the table to bench/results/training.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import xgboost
from bench_report import write_results  # (bench/ is on sys.path)
from rich.console import Console
from rich.table import Table

from btc_tracker_pipeline.features.indicators import INDICATOR_SCHEMA
from btc_tracker_pipeline.model.dataset import FEATURES, MODEL_FEATURES, build_dataset
from btc_tracker_pipeline.model.train import train_final, walk_forward_evaluate

START = datetime(2026, 1, 1)
WINDOW = timedelta(minutes=15)
WINDOWS_PER_YEAR = 365 * 24 * 4
SIGMA = 0.5
LIFE = (100, 400)  # snapshots (15-minute windows) per market before expiry
MISSING = 0.03

HEADERS = [
    "dataset rows",
    "markets",
    "events",
    "rows/market",
    "folds",
    "OMP wait",
    "evaluate s",
    "evaluate CPU s",
    "evaluate rows/s",
    "final s",
    "final CPU s",
    "final rows/s",
    "final trees",
    "peak MB evaluate / final",
]


# --- the synthetic world ---------------------------------------------------------------------


def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF."""
    return 0.5 * np.vectorize(math.erfc)(-x / math.sqrt(2.0))


def _spot_path(n_windows: int, rng: np.random.Generator) -> np.ndarray:
    """BTC at every window boundary: a GBM with E[S_T] = S_t (log drift −σ²/2)."""
    dt = 1.0 / WINDOWS_PER_YEAR
    steps = rng.normal(-0.5 * SIGMA**2 * dt, SIGMA * math.sqrt(dt), n_windows)
    return 90_000.0 * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))


def _markets(n_markets: int, strikes: int, days: int, rng: np.random.Generator) -> dict:
    """Per market: event, family, life (windows), expiry window, strike offset."""
    n_events = max(1, n_markets // strikes)
    expiry = LIFE[1] + 1 + rng.integers(0, days * 96, n_events)
    life = rng.integers(LIFE[0], LIFE[1] + 1, n_events)
    family = np.where(rng.random(n_events) < 0.7, "above", "below")
    event = np.repeat(np.arange(n_events), strikes)
    return {
        "event": event,
        "family": family[event],
        "life": life[event],
        "expiry": expiry[event],
        "moneyness": np.tile(np.linspace(-0.06, 0.06, strikes), n_events),
    }


def _rows(m: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(market index, window index) of every snapshot: the ``life`` windows ending at
    the market's expiry, 3 % dropped at random."""
    market = np.repeat(np.arange(len(m["life"])), m["life"])
    first = np.cumsum(m["life"]) - m["life"]
    age = np.arange(len(market)) - first[market]  # 0 … life − 1
    window = m["expiry"][market] - m["life"][market] + age
    keep = rng.random(len(market)) >= MISSING
    return market[keep], window[keep]


def _lag(values: np.ndarray, market: np.ndarray, n: int) -> np.ndarray:
    """values n rows earlier in the same market (NaN at a market's first n rows)."""
    out = np.full(len(values), np.nan)
    same = market[n:] == market[:-n]
    out[n:] = np.where(same, values[:-n], np.nan)
    return out


def synthetic_tables(
    n_markets: int, strikes: int, days: int, bias: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(market_indicators, market_resolutions, markets) of the world in the docstring."""
    rng = np.random.default_rng(seed)
    m = _markets(n_markets, strikes, days, rng)
    spot = _spot_path(int(m["expiry"].max()) + 2, rng)
    market, window = _rows(m, rng)
    strike = np.round(spot[m["expiry"] - m["life"]] * np.exp(m["moneyness"]), -2)
    above = m["family"] == "above"
    s_now = spot[window + 1]  # the snapshot is taken at the window's end
    tau = (m["expiry"][market] - window - 1) / WINDOWS_PER_YEAR
    sd = SIGMA * np.sqrt(np.maximum(tau, 1e-12))
    d2 = (np.log(s_now / strike[market]) - 0.5 * SIGMA**2 * tau) / sd
    q = np.where(above[market], _phi(d2), 1.0 - _phi(d2))
    qc = np.clip(q, 1e-4, 1 - 1e-4)
    distorted = 1.0 / (1.0 + np.exp(-(1.0 - bias) * np.log(qc / (1 - qc))))
    price = np.round(np.clip(distorted + rng.normal(0, 0.01, len(q)), 0.001, 0.999), 3)
    vol = SIGMA * np.exp(rng.normal(0, 0.1, len(q)))
    d2_hat = (np.log(s_now / strike[market]) - 0.5 * vol**2 * tau) / (vol * np.sqrt(tau + 1e-12))
    structural = np.where(above[market], _phi(d2_hat), 1.0 - _phi(d2_hat))
    day_ago = spot[np.maximum(window + 1 - 96, 0)]
    volume = rng.uniform(1e3, 1e6, len(m["life"]))[market] + rng.exponential(5e3, len(q))
    ids = np.array([f"m{i:06d}" for i in range(len(m["life"]))])
    starts = np.datetime64(START, "us") + window * np.timedelta64(15, "m")
    indicators = pl.DataFrame(
        {
            "window_start": starts,
            "window_end": starts + np.timedelta64(15, "m"),
            "market_id": ids[market],
            "family": m["family"][market],
            "snapshot_ts": starts + np.timedelta64(15, "m"),
            "source": np.full(len(q), "live"),
            "market_probability": price,
            "volume": volume,
            "liquidity": rng.uniform(1e2, 1e5, len(q)),
            "btc_spot_price": s_now,
            "btc_24h_change_pct": (s_now / day_ago - 1.0) * 100.0,
            "price_momentum_15m": price - _lag(price, market, 1),
            "price_momentum_1h": price - _lag(price, market, 4),
            "volume_spike": rng.lognormal(0.0, 0.3, len(q)) - 1.0,
            "price_volatility": np.abs(rng.normal(0.0, 0.02, len(q))),
            "rsi_14": np.where(
                np.isnan(_lag(price, market, 28)), np.nan, rng.uniform(0, 100, len(q))
            ),
            "market_edge": np.abs(price - 0.5),
            "time_to_expiry_hours": tau * 365 * 24,
            "strike": strike[market],
            "realized_vol": vol,
            "log_moneyness": np.log(s_now / strike[market]),
            "structural_probability": structural,
        },
        nan_to_null=True,
    )
    indicators = indicators.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in INDICATOR_SCHEMA.items()
        if name not in indicators.columns
    ).select([pl.col(name).cast(dtype) for name, dtype in INDICATOR_SCHEMA.items()])
    expiry = np.datetime64(START, "us") + m["expiry"] * np.timedelta64(15, "m")
    s_end = spot[m["expiry"]]
    yes = np.where(above, s_end > strike, s_end < strike)
    resolutions = pl.DataFrame(
        {
            "window_start": expiry,
            "market_id": ids,
            "family": m["family"],
            "expiry": expiry,
            "settled_at": expiry + np.timedelta64(2, "m"),
            "status": np.full(len(ids), "resolved"),
            "yes_won": yes,
            "label_check": np.full(len(ids), "agrees"),
        }
    )
    markets = pl.DataFrame(
        {
            "market_id": ids,
            "event_slug": np.array([f"ev{e:05d}" for e in m["event"]]),
            "start_date": expiry - m["life"] * np.timedelta64(15, "m") - np.timedelta64(1, "h"),
            "expiry": expiry,
        }
    )
    return indicators, resolutions, markets


# --- workers (each in its own process) ---------------------------------------------------------


def _rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """Peak resident set size of this process so far, MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, args: argparse.Namespace) -> dict:
    """Build the dataset for ``args.rows[0]`` rows and write it to ``path``."""
    rows = args.rows[0]
    mean_rows = (LIFE[0] + LIFE[1]) / 2 * (1 - MISSING)
    n_markets = max(args.strikes, round(rows / mean_rows / args.strikes) * args.strikes)
    tables = synthetic_tables(n_markets, args.strikes, args.days, args.bias, args.seed)
    ds = build_dataset(*tables)
    ds.write_parquet(path)
    return {
        "rows": ds.height,
        "markets": ds["market_id"].n_unique(),
        "events": ds["event_id"].n_unique(),
        "mean_y": float(ds["y"].mean()),
    }


def evaluate(path: Path) -> dict:
    """Time walk_forward_evaluate on the dataset at ``path``."""
    ds = pl.read_parquet(path)
    gc.collect()
    loaded = _rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    pred, report = walk_forward_evaluate(ds)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    folds = [f for f in report["folds"] if "skipped" not in f]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": _peak_mb(),
        "loaded_mb": loaded,
        "folds": len(folds),
        "skipped": len(report["folds"]) - len(folds),
        "scored_rows": pred.height,
        "fold_train_markets": [f["n_train_markets"] for f in folds],
        "trees": [f["n_trees"] for f in folds],
        "bss": report["overall"]["bss_vs_market"],
    }


def final(path: Path) -> dict:
    """Time train_final on the dataset at ``path``."""
    ds = pl.read_parquet(path)
    gc.collect()
    loaded = _rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    model = train_final(ds)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": _peak_mb(),
        "loaded_mb": loaded,
        "trees": model.info["n_trees"],
        "train_rows": model.info["n_train_rows"],
        "calib_rows": model.info["n_calib_rows"],
    }


def worker(args: argparse.Namespace) -> None:
    """The ``--worker`` entry point: print one JSON line with the result."""
    path = Path(args.data)
    jobs = {"generate": lambda: generate(path, args), "evaluate": lambda: evaluate(path)}
    jobs["final"] = lambda: final(path)
    print(json.dumps(jobs[args.worker]()))


# --- parent side -------------------------------------------------------------------------------


@dataclass
class Result:
    """One dataset size under one OpenMP wait policy: the dataset and the two measurements."""

    data: dict
    wait_policy: str
    evaluation: dict
    final: dict


def spawn(*worker_args: str, wait_policy: str = "") -> dict:
    """Run this script as a worker in a fresh process (with OMP_WAIT_POLICY set to
    ``wait_policy`` if given, else the inherited environment) and return its JSON line."""
    command = [sys.executable, __file__, "--worker", *worker_args]
    env = {**os.environ, **({"OMP_WAIT_POLICY": wait_policy} if wait_policy else {})}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"worker {worker_args} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_size(rows: int, args: argparse.Namespace, work: Path) -> list[Result]:
    """Generate one dataset, then time evaluation and final training on it, once per
    OpenMP wait policy."""
    path = work / f"dataset-{rows}.parquet"
    common = ["--data", str(path), *_world_args(args)]
    data = spawn("generate", "--rows", str(rows), *common)
    results = []
    for policy in args.omp_wait_policy:
        wait = "" if policy == "inherit" else policy
        evaluation = spawn("evaluate", *common, wait_policy=wait)
        trained = spawn("final", *common, wait_policy=wait)
        print(
            f"{rows} {policy}: evaluate {evaluation['seconds']:.1f} s, "
            f"final {trained['seconds']:.1f} s",
            file=sys.stderr,
        )
        results.append(Result(data, _policy_label(policy), evaluation, trained))
    return results


def _policy_label(policy: str) -> str:
    if policy != "inherit":
        return policy
    return os.environ.get("OMP_WAIT_POLICY", "default")


def _world_args(args: argparse.Namespace) -> list[str]:
    return [
        "--days", str(args.days), "--strikes", str(args.strikes),
        "--bias", str(args.bias), "--seed", str(args.seed),
    ]  # fmt: skip


def cells(r: Result) -> list[str]:
    """One table row."""
    rows, evaluation, trained = r.data["rows"], r.evaluation, r.final
    return [
        f"{rows:,}",
        f"{r.data['markets']:,}",
        f"{r.data['events']:,}",
        f"{rows / r.data['markets']:.0f}",
        f"{evaluation['folds']}",
        r.wait_policy,
        f"{evaluation['seconds']:.1f}",
        f"{evaluation['cpu_seconds']:.1f}",
        f"{rows / evaluation['seconds']:,.0f}",
        f"{trained['seconds']:.1f}",
        f"{trained['cpu_seconds']:.1f}",
        f"{rows / trained['seconds']:,.0f}",
        f"{trained['trees']}",
        f"{evaluation['peak_mb']:,.0f} / {trained['peak_mb']:,.0f}",
    ]


def show(results: list[Result], title: str) -> None:
    """Print the rich table."""
    table = Table(title=title)
    for header in HEADERS:
        table.add_column(header, justify="right")
    for result in results:
        table.add_row(*cells(result))
    Console(width=160).print(table)


def notes(args: argparse.Namespace, results: list[Result]) -> list[str]:
    """The notes under the Markdown table."""
    lines = [
        f"polars {pl.__version__}, numpy {np.__version__}, xgboost {xgboost.__version__} "
        f"(n_jobs=2); {len(MODEL_FEATURES)} of the {len(FEATURES)} dataset features.",
        f"World: {args.days} days of expiries, ladders of {args.strikes} strikes, "
        f"bias b = {args.bias}, seed {args.seed}; rows per market "
        f"{LIFE[0]}–{LIFE[1]} snapshots less {MISSING:.0%} missing (build_dataset drops "
        "the one taken at expiry).",
        "`evaluate s`: walk_forward_evaluate(ds) with the pipeline defaults (daily test "
        "windows from the first day with ≥ 200 resolved markets before it, 1 h embargo, a "
        "booster per fold with early stopping and Platt calibration, then "
        "evaluation_report with 1,000 cluster-bootstrap resamples); `final s`: "
        "train_final(ds). rows/s = dataset rows / wall s.",
        "`CPU s`: process CPU time, all threads (XGBoost runs 2 OpenMP threads). "
        "`OMP wait`: OMP_WAIT_POLICY of the measuring process. `default` = unset, as the "
        "pipeline runs today: libgomp's idle threads spin before sleeping, which on a busy "
        "2-core machine takes the core the other thread needs; `passive` makes them sleep.",
        "`peak MB`: the measuring process's ru_maxrss (XGBoost's and polars' native memory "
        "included); with the dataset just loaded the process held "
        + ", ".join(
            f"{r.evaluation['loaded_mb']:,.0f} MB" for r in results[:: len(args.omp_wait_policy)]
        )
        + " (Python, imports and the frame).",
    ]
    for rows in dict.fromkeys(r.data["rows"] for r in results):
        lines.append(_size_note([r for r in results if r.data["rows"] == rows]))
    return lines


def _size_note(same_data: list[Result]) -> str:
    """Folds, trees, skill and the final model's split of one dataset (and whether the
    wait policies changed any of it)."""
    first = same_data[0]
    e, trees = first.evaluation, first.evaluation["trees"]
    markets = e["fold_train_markets"]
    identical = all(
        r.evaluation["trees"] == trees and r.evaluation["bss"] == e["bss"] for r in same_data
    )
    return (
        f"{first.data['rows']:,} rows: folds {e['folds']} ({e['skipped']} skipped), training "
        f"markets per fold {min(markets):,}–{max(markets):,}, trees per fold "
        f"{min(trees)}–{max(trees)} (median {int(np.median(trees))}), {e['scored_rows']:,} "
        f"rows scored, walk-forward BSS vs market {e['bss']:+.3f}; final model fitted on "
        f"{first.final['train_rows']:,} rows ({first.final['trees']} trees), calibrated on "
        f"{first.final['calib_rows']:,}"
        + (
            "; the same trees and BSS under every wait policy."
            if identical
            else "; NOT the same trees/BSS under every wait policy."
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--days", type=int, default=30, help="days over which events expire")
    parser.add_argument("--strikes", type=int, default=5, help="markets per event")
    parser.add_argument("--bias", type=float, default=0.5, help="favourite-longshot b")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--omp-wait-policy",
        nargs="+",
        choices=["inherit", "passive", "active"],
        default=["inherit", "passive"],
        help="XGBoost's OpenMP wait policy per run: inherit = this environment's",
    )
    parser.add_argument(
        "--worker", choices=["generate", "evaluate", "final"], help=argparse.SUPPRESS
    )
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="btc-bench-training-") as tmp:
        results = [r for rows in args.rows for r in run_size(rows, args, Path(tmp))]
    title = "Model training and walk-forward evaluation (XGBoost, 2 threads)"
    show(results, title)
    path = write_results(
        "training", title, HEADERS, [cells(r) for r in results], notes(args, results)
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
