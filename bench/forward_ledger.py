"""The forward paper ledger after a demo: how often do live ticks open positions, and do
the settled ones earn what the model predicted?

The demo's beatable world (``btc-tracker demo --lag-s 90 --updown-5m --bias 0.5``) is
backfilled for ``--days`` days and trained as the demo trains it; then ``--ticks``
schedule ticks follow, each collecting the window that has just ended 20 s after its
end, on the world's clock (a live window: books, spot, the edge report's live
recommendations, the ledger). The world runs on a test clock, so a day of ticks takes
minutes. Reported: per tick, the edge report's live BUYs, the would-be BUYs PASSed as
no_proven_skill, the positions opened; at the end, the ledger's summary (open,
settled, win rate, mean predicted edge against the mean realised one with its
standard error, P&L) by family.

At a window end the 15- and 5-minute markets are closed or not yet open, so the
window edge report can trade only markets in the middle of their window: the hourly
ones (and, on Polymarket, the 4-hour and daily ones, which the world lacks).

    .venv/bin/python bench/forward_ledger.py                 # 4 days, then 96 ticks (≈ 15 min)
    .venv/bin/python bench/forward_ledger.py --ticks 24 --out bench/results/forward_ledger.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
from rich.console import Console
from rich.table import Table

from btc_tracker_pipeline.cli import DEMO_MIN_MARKETS
from btc_tracker_pipeline.model.ledger import summary
from btc_tracker_pipeline.partitions import key_of
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_job, run_windows
from btc_tracker_pipeline.warehouse.ledger import read_ledger

QUARTER = timedelta(minutes=15)
TICK_DELAY = timedelta(seconds=20)  # a schedule tick runs seconds after the window end
# Trained as the demo trains.
TRAIN_CONFIG = {"ops": {"price_model": {"config": {"min_resolved_markets": DEMO_MIN_MARKETS}}}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=4.0, help="days of history to train on")
    parser.add_argument("--ticks", type=int, default=96, help="live ticks after training")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bias", type=float, default=0.5)
    parser.add_argument("--lag-s", type=float, default=90.0)
    parser.add_argument("--no-updown-5m", action="store_true")
    parser.add_argument(
        "--start", default="2026-11-20T00:00", help="the first live window, UTC (in the past)"
    )
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    return parser.parse_args()


def window_counts(warehouse: Path, start: datetime) -> tuple[int, int, int]:
    """(live BUY rows, would-be BUYs PASSed as no_proven_skill, positions) after a tick."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        buys, gated = conn.execute(
            "SELECT count(*) FILTER (WHERE e.recommendation <> 'PASS'), "
            "count(*) FILTER (WHERE e.flags LIKE '%no_proven_skill%') "
            "FROM edge_report e JOIN market_snapshots s USING (window_start, market_id) "
            "WHERE e.window_start = ? AND s.source = 'live' AND NOT e.in_sample",
            [start],
        ).fetchone()
        positions = conn.execute("SELECT count(*) FROM paper_ledger").fetchone()[0]
    return buys, gated, positions


def family_rows(ledger: pl.DataFrame) -> list[tuple[str, dict]]:
    """The ledger's summary over all positions, then per family."""
    rows = [("all", summary(ledger))]
    for family in sorted(ledger["family"].unique().to_list()):
        rows.append((family, summary(ledger.filter(pl.col("family") == family))))
    return rows


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def main() -> None:
    args = parse_args()
    first_live = datetime.fromisoformat(args.start)
    clock = [first_live]
    world = SimulatedWorld(
        seed=args.seed,
        days=args.days + 2,
        clock=lambda: clock[0],
        bias=args.bias,
        lag_s=args.lag_s,
        updown_5m=not args.no_updown_5m,
    )
    console = Console(width=160)
    lines: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, replay_session(world, Path(tmp)) as session:
        history = partition_keys(
            key_of(first_live - timedelta(days=args.days)), key_of(first_live - QUARTER)
        )
        with assets_clock(first_live):
            outcomes = run_windows(history, instance=session.instance, log_level="ERROR")
        failed = sum(not o.success for o in outcomes)
        collected = time.monotonic() - started
        train = run_job("train_job", instance=session.instance, run_config=TRAIN_CONFIG)
        meta = {
            e.asset_key.to_user_string(): e.materialization.metadata
            for e in train.get_asset_materialization_events()
        }
        card = meta["price_model"]["report"].value if train.success else {}
        proven = [f for f, b in sorted(card.get("by_family", {}).items()) if b.get("skill_proven")]
        trained = time.monotonic() - started - collected

        per_tick: list[tuple[str, int, int, int, float]] = []
        for i in range(args.ticks):
            start = first_live + i * QUARTER
            clock[0] = start + QUARTER + TICK_DELAY
            t0 = time.monotonic()
            with assets_clock(clock[0]):
                ok = all(
                    o.success
                    for o in run_windows(
                        [key_of(start)], instance=session.instance, log_level="ERROR"
                    )
                )
            seconds = time.monotonic() - t0
            buys, gated, positions = window_counts(session.warehouse, start)
            per_tick.append((key_of(start), buys, gated, positions, seconds))
            console.print(
                f"tick {i + 1}/{args.ticks} {key_of(start)} {'ok' if ok else 'FAILED'}: "
                f"{buys} live BUY, {gated} gated, ledger {positions} ({seconds:.1f} s)"
            )
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            ledger = read_ledger(conn)

    total = time.monotonic() - started
    opened_ticks = sum(1 for i, t in enumerate(per_tick) if t[3] > (per_tick[i - 1][3] if i else 0))
    head = (
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; world seed "
        f"{args.seed}, bias {args.bias}, lag {args.lag_s:g} s, 5-minute markets "
        f"{'off' if args.no_updown_5m else 'on'}; {len(history)} history windows "
        f"({failed} failed) in {collected:.0f} s, training {trained:.0f} s, "
        f"{args.ticks} live ticks from {key_of(first_live)}; {total:.0f} s in all"
    )
    trained_line = f"skill proven in: {', '.join(proven) or 'none'}"
    lines += [head, trained_line if card else "training failed: no model, every row is PASS"]
    seconds = sorted(t[4] for t in per_tick)
    lines.append(
        f"ticks: {sum(t[1] for t in per_tick)} live BUY rows, "
        f"{sum(t[2] for t in per_tick)} would-be BUYs PASSed as no_proven_skill; "
        f"{opened_ticks} of {len(per_tick)} ticks opened a position; tick time median "
        f"{statistics.median(seconds):.1f} s, max {seconds[-1]:.1f} s"
        if per_tick
        else "no tick"
    )
    table = Table(title="forward paper ledger after the ticks")
    for name in (
        "family",
        "positions",
        "open",
        "settled",
        "win rate",
        "mean predicted edge",
        "mean realised edge ± se",
        "realised P&L",
        "return per $ predicted / realised",
    ):
        table.add_column(name, justify="right")
    for family, s in family_rows(ledger) if ledger.height else []:
        c = s["predicted_vs_realised"]
        table.add_row(
            family,
            str(s["open"] + s["settled"] + s["void"]),
            str(s["open"]),
            str(s["settled"]),
            _num(s["win_rate"] and 100 * s["win_rate"], ".1f") + " %",
            _num(c["mean_predicted_edge"], "+.3f"),
            f"{_num(c['mean_realised_edge'], '+.3f')} ± {_num(c['realised_edge_se'], '.3f')}",
            f"{s['realised_pnl']:+,.2f}",
            f"{_num(c['predicted_return_per_dollar'], '+.3f')} / "
            f"{_num(c['realised_return_per_dollar'], '+.3f')}",
        )
    for line in lines:
        console.print(line, markup=False, highlight=False)
    console.print(table)
    if args.out:
        with console.capture() as capture:
            console.print(table)
        args.out.write_text(
            "# bench/forward_ledger.py\n\n```\n" + "\n".join(lines) + "\n" + capture.get() + "```\n"
        )


if __name__ == "__main__":
    main()
