"""`btc-tracker paper` on an empty, an old and a small ledger, its bad input, and the
`model` command naming the walk-forward paper trades a backtest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.model.edges import INPUT_SCHEMA, EdgeConfig, edge_report
from btc_tracker_pipeline.model.ledger import empty_ledger, open_positions, settle
from btc_tracker_pipeline.model.paper import simulate
from btc_tracker_pipeline.warehouse import open_warehouse
from btc_tracker_pipeline.warehouse.ledger import write_ledger
from btc_tracker_pipeline_tests.model import edge_row

pytestmark = pytest.mark.unit

runner = CliRunner()
W0 = datetime(2026, 3, 1, 10, 0)


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "warehouse.duckdb"
    open_warehouse(path).close()
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    return path


def report() -> pl.DataFrame:
    """Two BUY YES rows at a 57¢ ask (model 0.70), a window's edge report."""
    rows = [
        edge_row(
            market_id=m,
            cluster=m,
            window_start=W0,
            model_prob=0.70,
            market_prob=0.56,
            best_bid=0.55,
            best_ask=0.57,
        )
        for m in ("111", "222")
    ]
    return edge_report(pl.DataFrame(rows, schema=INPUT_SCHEMA), EdgeConfig())


def test_an_empty_ledger_is_one_line_and_exit_0(warehouse):
    result = runner.invoke(app, ["paper"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("the paper ledger is empty")
    assert len(result.stdout.strip().splitlines()) == 1
    as_json = json.loads(runner.invoke(app, ["paper", "--json"]).stdout)
    assert as_json["summary"]["open"] == 0 and as_json["open"] == as_json["settled"] == []


def test_a_warehouse_from_before_the_ledger_reads_as_empty(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    open_warehouse(path).close()
    with duckdb.connect(str(path)) as conn:
        conn.execute("DROP TABLE paper_ledger")
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    result = runner.invoke(app, ["paper"])
    assert result.exit_code == 0 and "the paper ledger is empty" in result.stdout


def test_open_and_settled_together_is_a_one_line_usage_error(warehouse):
    result = runner.invoke(app, ["paper", "--open", "--settled"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("error: ") and "exclude each other" in lines[0]


def test_open_and_settled_positions_with_the_summary(warehouse):
    recommendations = report().with_columns(
        window_end=pl.lit(W0 + timedelta(minutes=15)),
        model_version=pl.lit("20260301T000000000000Z"),
        in_sample=pl.lit(False),
        source=pl.lit("live"),
        opened_at=pl.lit(W0 + timedelta(minutes=15)),
        book_liquidity=pl.lit(14_000.0),
    )
    opened = open_positions(recommendations, empty_ledger())
    label = pl.DataFrame(
        {
            "window_start": [W0 + timedelta(hours=2)],
            "market_id": ["111"],
            "status": ["resolved"],
            "yes_won": [True],
            "settled_at": [W0 + timedelta(hours=2)],
        }
    )
    settled = settle(opened, label)
    with duckdb.connect(str(warehouse)) as conn:
        write_ledger(conn, opened, settled, pl.DataFrame())
    out = " ".join(runner.invoke(app, ["paper"]).stdout.split())
    pnl = settled["pnl"][0]
    assert "paper ledger: 1 open, 1 settled, 0 void" in out
    assert f"realised P&L +${pnl:,.2f}, win rate 100.0%" in out
    assert "predicted vs realised, 1 settled position: edge per share" in out
    assert "not meaningful yet (fewer than 30 settled positions)" in out
    assert "1 open position(s)" in out and "1 settled or void position(s)" in out
    only = runner.invoke(app, ["paper", "--settled"]).stdout
    assert "111" in only and "222" not in only.split("settled or void")[1]
    assert "open position(s)" not in only


def test_model_names_the_paper_trades_a_backtest_and_points_at_the_ledger(
    warehouse, tmp_path, monkeypatch
):
    import numpy as np
    import xgboost as xgb

    from btc_tracker_pipeline.model.artifact import save_model
    from btc_tracker_pipeline.model.dataset import FEATURES
    from btc_tracker_pipeline.model.train import Model

    data = xgb.DMatrix(np.zeros((2, len(FEATURES))), label=[0, 1], feature_names=list(FEATURES))
    model = Model(booster=xgb.train({}, data, 0), features=list(FEATURES))
    card = {
        "data_window": {"first_snapshot": "a", "last_snapshot": "b"},
        "n_markets": 1,
        "n_rows": 1,
        "metrics": {
            "overall": {
                "n_markets": 1,
                "brier_model": 0.2,
                "brier_market": 0.2,
                "auc_model": 0.5,
                "auc_market": 0.5,
            },
            "by_family": {},
        },
    }
    save_model(model, card, tmp_path / "models")
    resolutions = pl.DataFrame(
        {"market_id": ["111"], "yes_won": [True], "settled_at": [W0 + timedelta(days=1)]}
    )
    trades, metrics = simulate(report(), resolutions)
    with duckdb.connect(str(warehouse)) as conn:
        conn.register("t", trades.with_columns(model_version=pl.lit("v")).to_arrow())
        conn.execute("INSERT INTO paper_trades BY NAME SELECT * FROM t")
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "models"))
    result = runner.invoke(app, ["model"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert (
        f"Paper backtest (paper_trades, the walk-forward predictions traded on past data): "
        f"1 settled trades, ROI {metrics['roi_per_dollar']:+.3f} per dollar, 1 open."
    ) in text
    assert "The forward ledger of live recommendations: btc-tracker paper." in text
