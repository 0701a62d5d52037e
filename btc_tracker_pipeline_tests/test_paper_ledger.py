"""The forward paper ledger through collect_job on a replay world: live ticks open
positions from the edge report's recommendations, once; a rerun and a retraining
change nothing; a backfilled window opens nothing; a later tick settles on the labels;
`btc-tracker paper` prints it.

The world has a favourite-longshot bias of 0.5 (logit p = 0.5·logit p_fair), and the
"trained" model is the one that knows it: no trees, Platt slope 2 on the market's logit
(the world's fair value), its skill proven on the daily ``above`` ladders. So the edge
report of a live window recommends trades as a proven model's would, from the world's
own quotes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.model.ledger import LEDGER_SCHEMA, SETTLEMENT_COLUMNS
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import run_windows

pytestmark = pytest.mark.integration

BIAS = 0.5
TICK = datetime(2026, 3, 1, 14, 0, 30)  # the tick that collects LIVE live
LIVE = "2026-03-01-13:45"
HISTORY = "2026-03-01-12:00"  # collected at TICK: two hours late, from prices-history
# The ladder expiring 2026-03-01 17:00 closes an hour later: its label is in this window.
SETTLE_TICK = datetime(2026, 3, 1, 18, 15, 30)
SETTLE = "2026-03-01-18:00"
FAMILIES = ("updown_15m", "updown_1h", "above", "reach", "dip")


def knowing_model(models: Path, slope: float, proven: list[str]) -> str:
    """Save a model whose probability is σ(slope·logit p) (no trees: the booster's
    margin is the market's logit), trained up to 2026-02-28, with ``proven`` families;
    return its version."""
    import xgboost as xgb

    from btc_tracker_pipeline.model.artifact import save_model
    from btc_tracker_pipeline.model.dataset import FEATURES
    from btc_tracker_pipeline.model.train import Model

    data = xgb.DMatrix(np.zeros((2, len(FEATURES))), label=[0, 1], feature_names=list(FEATURES))
    booster = xgb.train({"objective": "binary:logistic"}, data, num_boost_round=0)
    model = Model(booster=booster, features=list(FEATURES), platt_coef=slope, calibrated=True)
    card = {
        "data_window": {"first_snapshot": "2026-02-27 00:00:00", "last_snapshot": "2026-02-28"},
        "n_markets": 300,
        "n_rows": 300,
        "trained_families": dict.fromkeys(FAMILIES, 100),
        "metrics": {"skill_test": {"proven_families": proven}},
    }
    return save_model(model, card, models).name


@dataclass
class Ledger:
    """What the ledger and the edge report held after each step."""

    warehouse: Path
    first_model: str
    after_tick: pl.DataFrame
    after_rerun: pl.DataFrame
    after_retrain: pl.DataFrame
    after_history: pl.DataFrame
    after_settle: pl.DataFrame
    live_buys: pl.DataFrame
    retrained_buys: pl.DataFrame
    history_buys: pl.DataFrame
    labels: pl.DataFrame


def read(warehouse: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql).pl()


def ledger(warehouse: Path) -> pl.DataFrame:
    return read(warehouse, "SELECT * FROM paper_ledger ORDER BY position_id")


def buys(warehouse: Path, key: str) -> pl.DataFrame:
    start = datetime.strptime(key, "%Y-%m-%d-%H:%M")
    return read(
        warehouse,
        "SELECT e.*, s.source FROM edge_report e JOIN market_snapshots s "
        f"USING (window_start, market_id) WHERE e.recommendation <> 'PASS' "
        f"AND e.window_start = '{start}' ORDER BY e.market_id",
    )


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> Iterator[Ledger]:
    folder = tmp_path_factory.mktemp("ledger")
    now = [TICK]
    world = SimulatedWorld(seed=7, days=2, clock=lambda: now[0], bias=BIAS, strikes_per_ladder=3)

    def tick(key: str) -> None:
        with assets_clock(now[0]):
            outcomes = run_windows([key], instance=session.instance)
        assert all(o.success for o in outcomes), outcomes

    with replay_session(world, folder) as session:
        path = session.warehouse
        first = knowing_model(session.models, 1 / (1 - BIAS), ["above"])
        tick(LIVE)
        after_tick, live_buys = ledger(path), buys(path, LIVE)
        tick(LIVE)
        after_rerun = ledger(path)
        # A retraining: a bolder model proven on more families, then the tick again.
        knowing_model(session.models, 3.0, ["above", "reach", "dip"])
        tick(LIVE)
        after_retrain, retrained_buys = ledger(path), buys(path, LIVE)
        tick(HISTORY)
        after_history, history_buys = ledger(path), buys(path, HISTORY)
        now[0] = SETTLE_TICK
        tick(SETTLE)
        labels = read(path, "SELECT * FROM market_resolutions")
        yield Ledger(
            path,
            first,
            after_tick,
            after_rerun,
            after_retrain,
            after_history,
            ledger(path),
            live_buys,
            retrained_buys,
            history_buys,
            labels,
        )


def test_a_live_tick_opens_a_position_for_each_recommendation(steps):
    opened, recommended = steps.after_tick, steps.live_buys
    assert opened.height >= 2, recommended
    assert set(recommended["source"]) == {"live"} and not recommended["in_sample"].any()
    assert sorted(opened["market_id"]) == sorted(recommended["market_id"])
    report = {r["market_id"]: r for r in recommended.iter_rows(named=True)}
    for p in opened.iter_rows(named=True):
        r = report[p["market_id"]]
        assert p["position_id"] == f"{p['market_id']}@2026-03-01T13:45"
        assert p["status"] == "open" and p["model_version"] == steps.first_model
        assert p["side"] == r["side"] and p["model_prob"] == pytest.approx(r["model_prob"])
        # The edge report's cost (ask or 1 − bid, plus fee), plus the stake's slippage.
        assert r["cost"] <= p["price_paid"] < r["cost"] + 0.01
        assert p["predicted_edge"] == pytest.approx(r["net_edge"], abs=0.01)
        assert 0.0 < p["stake"] <= 0.02 * p["bankroll_at_open"] + 1e-9
        assert p["opened_at"] >= datetime(2026, 3, 1, 14, 0)
    assert opened["bankroll_at_open"].max() == 10_000.0


def test_a_rerun_and_a_retraining_change_no_position(steps):
    assert steps.after_rerun.equals(steps.after_tick)
    # The retrained model recommends other markets in the same window …
    new = set(steps.retrained_buys["market_id"]) - set(steps.live_buys["market_id"])
    assert new, steps.retrained_buys
    # … and the ledger takes none of them, nor changes a row.
    assert steps.after_retrain.equals(steps.after_tick)


def test_a_backfilled_window_opens_nothing(steps):
    assert steps.history_buys.height > 0
    assert set(steps.history_buys["source"]) == {"history"}
    assert steps.after_history.equals(steps.after_tick)


def test_a_later_tick_settles_on_the_label_and_changes_nothing_else(steps):
    before = {r["position_id"]: r for r in steps.after_tick.iter_rows(named=True)}
    after = {r["position_id"]: r for r in steps.after_settle.iter_rows(named=True)}
    labels = {r["market_id"]: r for r in steps.labels.iter_rows(named=True)}
    settled = [p for p in after.values() if p["status"] == "settled"]
    assert settled, after
    for p in settled:
        label = labels[p["market_id"]]
        assert label["status"] == "resolved" and p["settled_at"] == label["settled_at"]
        won = label["yes_won"] == (p["side"] == "YES")
        assert p["outcome"] == int(label["yes_won"])
        assert p["payout"] == pytest.approx(p["shares"] if won else 0.0)
        assert p["pnl"] == pytest.approx(p["payout"] - p["stake"])
        assert p["realised_edge"] == pytest.approx(float(won) - p["price_paid"])
        kept = [c for c in LEDGER_SCHEMA if c not in SETTLEMENT_COLUMNS]
        assert {c: p[c] for c in kept} == {c: before[p["position_id"]][c] for c in kept}
    # Markets without a label stay open as they were.
    for pid, p in before.items():
        if p["market_id"] not in labels:
            assert after[pid] == p
    # The settling tick was live too: its recommendations opened, sized on the new bankroll.
    fresh = [p for pid, p in after.items() if pid not in before]
    assert fresh and all(p["position_id"].endswith("@2026-03-01T18:00") for p in fresh)
    assert all(p["model_version"] != steps.first_model for p in fresh)


def test_paper_prints_positions_pnl_and_predicted_vs_realised(steps, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(steps.warehouse))
    runner = CliRunner()
    result = runner.invoke(app, ["paper"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    settled = steps.after_settle.filter(pl.col("status") == "settled")
    still_open = steps.after_settle.filter(pl.col("status") == "open")
    assert f"paper ledger: {still_open.height} open, {settled.height} settled, 0 void" in text
    pnl = settled["pnl"].sum()
    assert f"realised P&L {'+' if pnl >= 0 else '-'}${abs(pnl):,.2f}" in text
    assert f"predicted vs realised, {settled.height} settled position" in text
    assert "not meaningful yet (fewer than 30 settled positions)" in text
    for market in steps.after_settle["market_id"]:
        assert market in text
    as_json = json.loads(runner.invoke(app, ["paper", "--json"]).stdout)
    assert as_json["summary"]["settled"] == settled.height
    assert as_json["summary"]["realised_pnl"] == pytest.approx(pnl)
    assert len(as_json["open"]) == still_open.height
    assert {p["position_id"] for p in as_json["settled"]} == set(settled["position_id"])
    only_open = json.loads(runner.invoke(app, ["paper", "--open", "--json"]).stdout)
    assert only_open["settled"] == [] and len(only_open["open"]) == still_open.height
    assert "settled or void" not in runner.invoke(app, ["paper", "--open"]).stdout
