"""Can the evaluation fool us? Simulated worlds whose truth we know, end to end.

Each world is served by the replay server, backfilled through the same runner as
`btc-tracker backfill`, then `train_job` runs (price_model's walk-forward evaluation and
paper_trades). Per world, one row: the model's Brier skill against the market with its
95 % cluster-bootstrap interval; the oracle's (the fair value the world priced from,
the ceiling any model could reach) with its interval; the share of it the model
captured; the families whose skill was proven (Bonferroni over families); and the
paper trades with their ROI after spread, fees and slippage, with its interval.

The worlds: efficient (bias 0, noise 0: no model can beat it, so skill shown is a
leak), noise (persistent logit noise 0.12 around the fair value: beatable), and a
favourite-longshot bias of 0.5 and 0.7 (with that noise); lag90 and lag0 list the
5-minute up/down markets too, priced from the fair value 90 s late (beatable inside the
window, by the in-window path rows) or on time (efficient), with a 1-hour up/down lead
and 3 strikes a ladder to keep them small; their up/down families get a row each (BSS
vs market, oracle, ECE, paper ROI of that family's trades). Then the null test: the
efficient world over ``--null-seeds`` seeds, and the rate at which the model's overall
interval excludes 0 and at which a family is proven (each expected ≈ 5 % or less).

    .venv/bin/python bench/model_worlds.py                 # the full table (≈ 1 h)
    .venv/bin/python bench/model_worlds.py --null-seeds 0 --worlds efficient bias0.7

Worlds run in ``--jobs`` processes at once (each has its own replay server).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

WORLDS: dict[str, tuple[float, float]] = {
    "efficient": (0.0, 0.0),
    "noise": (0.0, 0.12),
    "bias0.5": (0.5, 0.12),
    "bias0.7": (0.7, 0.12),
    "lag90": (0.0, 0.0),
    "lag0": (0.0, 0.0),
}
# The worlds with 5-minute up/down markets and a price lag (SimulatedWorld keywords).
LAG_WORLDS: dict[str, float] = {"lag90": 90.0, "lag0": 0.0}
# Families reported on their own rows (the in-window families).
FAMILY_ROWS = ("updown_5m", "updown_15m")


def world_kwargs(name: str) -> dict:
    """SimulatedWorld keywords of a world beyond seed, days, now, bias and noise."""
    if name not in LAG_WORLDS:
        return {}
    return {
        "lag_s": LAG_WORLDS[name],
        "updown_5m": True,
        "updown_lead": timedelta(hours=1),
        "strikes_per_ladder": 3,
    }


def family_paper(warehouse: Path, family: str) -> dict:
    """Paper metrics (ROI with its interval) of one family's trades."""
    import duckdb

    from btc_tracker_pipeline.model.paper import trade_metrics

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        trades = conn.execute(
            "SELECT * FROM paper_trades WHERE market_id IN "
            "(SELECT market_id FROM model_predictions WHERE family = ?)",
            [family],
        ).pl()
    return trade_metrics(trades)


def run_world(name: str, bias: float, noise: float, days: float, seed: int, now: str) -> dict:
    """Backfill, train and paper-trade one world; return its headline numbers."""
    from btc_tracker_pipeline.partitions import key_of
    from btc_tracker_pipeline.replay.session import replay_session
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld
    from btc_tracker_pipeline.runner import partition_keys, run_job, run_windows

    clock = datetime.fromisoformat(now)
    tmp = Path(tempfile.mkdtemp(prefix=f"btc-{name}-seed{seed}-"))
    world = SimulatedWorld(
        seed=seed, days=days + 1, now=clock, bias=bias, noise=noise, **world_kwargs(name)
    )
    first, last = key_of(clock - timedelta(days=days)), key_of(clock - timedelta(minutes=15))
    with replay_session(world, tmp) as session:
        started = time.perf_counter()
        outcomes = run_windows(partition_keys(first, last), instance=session.instance)
        collected = time.perf_counter() - started
        if not all(o.success for o in outcomes):
            return {"name": name, "seed": seed, "error": "collection failed"}
        started = time.perf_counter()
        config = {
            "ops": {"price_model": {"config": {"min_resolved_markets": 40, "test_span_hours": 12}}}
        }
        train = run_job("train_job", instance=session.instance, run_config=config)
        trained = time.perf_counter() - started
    if not train.success:
        return {"name": name, "seed": seed, "error": "train_job failed"}
    meta = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in train.get_asset_materialization_events()
    }
    report = meta["price_model"]["report"].value
    overall = report["overall"]
    paper = meta["paper_trades"]["paper_metrics"].value
    families = {}
    for family in FAMILY_ROWS if name in LAG_WORLDS else ():
        block = report.get("by_family", {}).get(family)
        if not block:
            continue
        fam_paper = family_paper(tmp / "warehouse.duckdb", family)
        families[family] = {
            "markets": block["n_markets"],
            "clusters": block["n_clusters"],
            "rows": block.get("n_rows"),
            "bss": block.get("bss_vs_market"),
            "bss_ci": block.get("bss_vs_market_ci") or [None, None],
            "oracle": block.get("bss_oracle"),
            "oracle_ci": block.get("bss_oracle_ci") or [None, None],
            "ece": (block.get("ece_model"), block.get("ece_market")),
            "trades": fam_paper["n_trades"],
            "roi": fam_paper["roi_per_dollar"],
            "roi_ci": (fam_paper["roi_ci_low"], fam_paper["roi_ci_high"]),
        }
    return {
        "families": families,
        "name": name,
        "seed": seed,
        "bias": bias,
        "noise": noise,
        "markets": overall["n_markets"],
        "clusters": overall["n_clusters"],
        "bss": overall["bss_vs_market"],
        "bss_ci": overall["bss_vs_market_ci"],
        "oracle": overall.get("bss_oracle"),
        "oracle_ci": overall.get("bss_oracle_ci") or [None, None],
        "captured": overall.get("share_captured"),
        "proven": report["skill_test"]["proven_families"],
        "shift": report["shift"]["mean_shift"],
        "trades": paper["n_trades"],
        "roi": paper["roi_per_dollar"],
        "roi_ci": (paper["roi_ci_low"], paper["roi_ci_high"]),
        "collect_s": collected,
        "train_s": trained,
    }


def _num(value: float | None, spec: str = "+.3f") -> str:
    return "—" if value is None else format(value, spec)


def _ci(value: float | None, ci: list | tuple) -> str:
    lo, hi = ci if ci else (None, None)
    if value is None:
        return "—"
    return f"{value:+.3f}" + (f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None else " (no CI)")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95 % interval of a rate k/n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def world_table(rows: list[dict], days: float) -> Table:
    table = Table(title=f"Walk-forward evaluation, {days:g} days per world (12 h test windows)")
    for col in (
        "world",
        "bias",
        "noise",
        "markets (events)",
        "model BSS vs market [95 % CI]",
        "oracle BSS [95 % CI]",
        "captured",
        "skill proven in",
        "mean shift",
        "paper trades",
        "ROI per $ after costs [95 % CI]",
        "collect s",
        "train s",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], *[""] * 11, r["error"])
            continue
        table.add_row(
            r["name"],
            f"{r['bias']:g}",
            f"{r['noise']:g}",
            f"{r['markets']} ({r['clusters']})",
            _ci(r["bss"], r["bss_ci"]),
            _ci(r["oracle"], r["oracle_ci"]),
            _num(r["captured"], ".0%"),
            ", ".join(r["proven"]) or "none",
            _num(r["shift"], "+.4f"),
            str(int(r["trades"])),
            _ci(r["roi"], r["roi_ci"]) if r["trades"] else "—",
            f"{r['collect_s']:.0f}",
            f"{r['train_s']:.0f}",
        )
        for family, f in r.get("families", {}).items():
            ece_model, ece_market = f["ece"]
            table.add_row(
                f"  {family}",
                "",
                f"ECE {_num(ece_model, '.3f')}/{_num(ece_market, '.3f')}",
                f"{f['markets']} ({f['clusters']})",
                _ci(f["bss"], f["bss_ci"]),
                _ci(f["oracle"], f["oracle_ci"]),
                "",
                "",
                "",
                str(int(f["trades"] or 0)),
                _ci(f["roi"], f["roi_ci"]) if f["trades"] else "—",
                "",
                "",
            )
    return table


def null_table(rows: list[dict], days: float) -> Table:
    ok = [r for r in rows if "error" not in r]
    excluding = sum(1 for r in ok if r["bss_ci"][0] is not None and r["bss_ci"][0] > 0)
    proving = sum(1 for r in ok if r["proven"])
    trading = sum(1 for r in ok if r["trades"])
    table = Table(title=f"Null test: the efficient world over {len(ok)} seeds, {days:g} days each")
    for col in ("", "worlds", "rate [95 % Wilson]", "expected"):
        table.add_column(col, justify="right")
    for label, k, expected in (
        ("model's interval above 0", excluding, "≈ 2.5 % (one side of 95 %)"),
        ("a family proven (Bonferroni)", proving, "≤ 5 %"),
        ("paper trades made", trading, "≤ 5 %"),
    ):
        lo, hi = wilson(k, len(ok))
        table.add_row(
            label, f"{k} of {len(ok)}", f"{k / max(len(ok), 1):.0%} [{lo:.0%}, {hi:.0%}]", expected
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=5.0, help="days per world")
    parser.add_argument("--worlds", nargs="*", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--null-seeds", type=int, default=10, help="efficient seeds (0: none)")
    parser.add_argument("--null-days", type=float, default=4.0)
    parser.add_argument("--now", default="2026-03-01T00:00:00")
    parser.add_argument("--jobs", type=int, default=2, help="worlds run at once")
    args = parser.parse_args()
    jobs = [(name, *WORLDS[name], args.days, args.seed, args.now) for name in args.worlds]
    nulls = [
        ("efficient", 0.0, 0.0, args.null_days, 100 + k, args.now) for k in range(args.null_seeds)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        worlds = list(pool.map(run_world, *zip(*jobs, strict=True))) if jobs else []
        null = list(pool.map(run_world, *zip(*nulls, strict=True))) if nulls else []
    console = Console(width=200)
    console.print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{args.jobs} worlds at a time, {time.perf_counter() - started:.0f} s in all"
    )
    if worlds:
        console.print(world_table(worlds, args.days))
    if null:
        console.print(null_table(null, args.null_days))
        for r in null:
            console.print(
                f"  seed {r['seed']}: BSS {_ci(r.get('bss'), r.get('bss_ci') or [])}, "
                f"oracle {_ci(r.get('oracle'), r.get('oracle_ci') or [])}, "
                f"proven {', '.join(r.get('proven') or []) or 'none'}, trades {r.get('trades')}"
            )


if __name__ == "__main__":
    main()
