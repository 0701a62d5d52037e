"""Can the evaluation fool us? An efficient and a distorted simulated world, end to end.

For each world (replay server, `--bias B`, `--noise N`), backfills the windows through the same
runner as `btc-tracker backfill`, runs `train_job` (price_model walk-forward +
paper_trades) and prints one table: walk-forward Brier skill against the market
with its 95 % cluster-bootstrap interval, and paper-trading ROI after fees with its
interval. An efficient world (bias 0, noise 0) must show no skill and no significant
profit; a distorted one (favourite-longshot bias, or logit noise) must show both.

    .venv/bin/python bench/model_worlds.py --days 4 --biases 0 0.5
    .venv/bin/python bench/model_worlds.py --days 4 --biases 0 --noise 0.12
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from btc_tracker_pipeline.partitions import key_of
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_job, run_windows


def run_world(
    bias: float, days: int, seed: int, now: datetime, min_markets: int, noise: float = 0.0
) -> dict:
    """Backfill, train and paper-trade one world; return its headline numbers."""
    tmp = Path(tempfile.mkdtemp(prefix=f"btc-bias{bias}-noise{noise}-"))
    world = SimulatedWorld(seed=seed, days=days + 1, now=now, bias=bias, noise=noise)
    keys = partition_keys(key_of(now - timedelta(days=days)), key_of(now - timedelta(minutes=15)))
    with replay_session(world, tmp) as session:
        started = time.perf_counter()
        outcomes = run_windows(keys, instance=session.instance)
        collected = time.perf_counter() - started
        assert all(o.success for o in outcomes), [o.error for o in outcomes]
        started = time.perf_counter()
        config = {"ops": {"price_model": {"config": {"min_resolved_markets": min_markets}}}}
        train = run_job("train_job", instance=session.instance, run_config=config)
        assert train.success, "train_job failed"
        trained = time.perf_counter() - started
    meta = {}
    for event in train.get_asset_materialization_events():
        meta[event.asset_key.to_user_string()] = event.materialization.metadata
    report = meta["price_model"]["report"].value["overall"]
    paper = meta["paper_trades"]["paper_metrics"].value
    return {
        "bias": bias,
        "noise": noise,
        "markets": report["n_markets"],
        "bss": report["bss_vs_market"],
        "bss_ci": report["bss_vs_market_ci"],
        "ece": report["ece_model"],
        "trades": paper["n_trades"],
        "roi": paper["roi_per_dollar"],
        "roi_ci": (paper["roi_ci_low"], paper["roi_ci_high"]),
        "collect_s": collected,
        "train_s": trained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--biases", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="logit noise of every world's mid (0 = none; 0.12 = the old default world)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--now", default="2026-03-01T00:00:00")
    parser.add_argument(
        "--min-markets", type=int, default=200, help="price_model's min_resolved_markets"
    )
    args = parser.parse_args()
    now = datetime.fromisoformat(args.now)
    rows = [
        run_world(b, args.days, args.seed, now, args.min_markets, args.noise) for b in args.biases
    ]
    table = Table(title=f"Walk-forward evaluation, {args.days} days per world, seed {args.seed}")
    for col in (
        "bias",
        "noise",
        "test markets",
        "BSS vs market [95 % CI]",
        "ECE",
        "paper trades",
        "ROI per $ after fees [95 % CI]",
        "collect s",
        "train s",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['bias']:.2f}",
            f"{r['noise']:.2f}",
            str(r["markets"]),
            f"{r['bss']:+.3f} [{r['bss_ci'][0]:+.3f}, {r['bss_ci'][1]:+.3f}]",
            f"{r['ece']:.3f}",
            str(int(r["trades"])),
            f"{r['roi']:+.3f} [{r['roi_ci'][0]:+.3f}, {r['roi_ci'][1]:+.3f}]",
            f"{r['collect_s']:.0f}",
            f"{r['train_s']:.0f}",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
