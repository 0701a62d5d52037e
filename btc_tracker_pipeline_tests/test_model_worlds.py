"""The evaluation cannot fool us: an efficient and a distorted replay world, end to end.

Each world is backfilled through the runner (the `btc-tracker backfill` path), then
`train_job` (price_model walk-forward + paper_trades) runs. Small worlds (3 days), so
the training minimum is lowered through run config; bench/model_worlds.py runs larger
ones with the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_job, run_windows

NOW = datetime(2026, 3, 1)
# A favourite-longshot distortion documented as strong: logit(p_market) = 0.3·logit(p_fair).
STRONG_BIAS = 0.7
TRAIN_CONFIG = {"ops": {"price_model": {"config": {"min_resolved_markets": 40}}}}


@dataclass
class World:
    bias: float
    tmp: Path
    report: dict
    paper: dict
    instance: dg.DagsterInstance


def _backfill_and_train(bias: float, tmp: Path) -> Iterator[World]:
    world = SimulatedWorld(seed=7, days=4, now=NOW, bias=bias)
    with replay_session(world, tmp) as session:
        keys = partition_keys("2026-02-26-00:00", "2026-02-28-23:45")
        assert all(o.success for o in run_windows(keys, instance=session.instance))
        train = run_job("train_job", instance=session.instance, run_config=TRAIN_CONFIG)
        assert train.success
        meta = {
            e.asset_key.to_user_string(): e.materialization.metadata
            for e in train.get_asset_materialization_events()
        }
        yield World(
            bias,
            tmp,
            meta["price_model"]["report"].value["overall"],
            meta["paper_trades"]["paper_metrics"].value,
            session.instance,
        )


@pytest.fixture(scope="module")
def efficient(tmp_path_factory) -> Iterator[World]:
    yield from _backfill_and_train(0.0, tmp_path_factory.mktemp("efficient"))


@pytest.fixture(scope="module")
def distorted(tmp_path_factory) -> Iterator[World]:
    yield from _backfill_and_train(STRONG_BIAS, tmp_path_factory.mktemp("distorted"))


def test_efficient_world_shows_no_skill_and_no_significant_profit(efficient):
    lo, hi = efficient.report["bss_vs_market_ci"]
    assert lo <= 0.0 <= hi, efficient.report["bss_vs_market"]
    assert efficient.report["n_markets"] >= 30
    # No profit whose 95 % interval excludes zero.
    assert efficient.paper["roi_ci_low"] is None or efficient.paper["roi_ci_low"] <= 0.0


def test_distorted_world_shows_skill_and_profit_after_fees(distorted):
    lo, _ = distorted.report["bss_vs_market_ci"]
    assert distorted.report["bss_vs_market"] > 0.0 and lo > 0.0
    # Honest ceiling: a BSS above +50 % would mean a leak, not a bias this size.
    assert distorted.report["bss_vs_market"] < 0.5
    assert distorted.paper["n_trades"] > 0 and distorted.paper["roi_per_dollar"] > 0.0


def test_model_card_and_edge_report_use_the_trained_model(distorted, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(distorted.tmp / "models"))
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(distorted.tmp / "warehouse.duckdb"))
    result = CliRunner().invoke(app, ["model", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["metrics"]["overall"]["bss_vs_market_ci"][0] > 0.0
    assert {"features", "data_window", "versions"} <= set(card)
    # The newest window's edge report, recomputed now that a model exists.
    world = SimulatedWorld(seed=7, days=4, now=NOW, bias=STRONG_BIAS)
    with ReplayServer(world) as server:
        for name, path in (("GAMMA", "gamma"), ("CLOB", "clob"), ("BINANCE", "binance")):
            monkeypatch.setenv(f"BTC_TRACKER_{name}_URL", f"{server.url}/{path}")
        outcome = run_windows(["2026-02-28-23:45"], instance=distorted.instance)
    assert outcome[0].success
    with duckdb.connect(str(distorted.tmp / "warehouse.duckdb"), read_only=True) as conn:
        rows, with_model, unscored_strikes, unscored_traded, recs = conn.execute(
            "SELECT count(*), count(model_prob), "
            "count(*) FILTER (WHERE model_prob IS NULL AND family NOT LIKE 'updown%'), "
            "count(*) FILTER (WHERE model_prob IS NULL AND recommendation != 'PASS'), "
            "list(DISTINCT recommendation ORDER BY recommendation) FROM edge_report "
            "WHERE window_start = '2026-02-28 23:45'"
        ).fetchone()
    # Only up/down markets whose window has not opened go unscored (and are PASS).
    assert rows > 20 and with_model > 10
    assert unscored_strikes == 0 and unscored_traded == 0
    assert set(recs) <= {"BUY YES", "BUY NO", "PASS"}
    result = CliRunner().invoke(app, ["edges", "--json", "--min-edge", "0.02"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["window_start"] == "2026-02-28 23:45"
    result = CliRunner().invoke(app, ["dataset", "--out", str(distorted.tmp / "ds.parquet")])
    assert result.exit_code == 0 and "resolved markets" in result.output


def test_too_little_data_refuses_to_train_with_counts(efficient):
    result = run_job("train_job", instance=efficient.instance)  # default minimum: 200
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "not training: have" in message and "need 200" in message
