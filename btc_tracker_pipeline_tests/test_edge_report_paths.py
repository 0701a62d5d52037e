"""The window edge report scores an open up/down market as the model learned it.

The model learns up/down markets from their minute paths (``market_paths``); an edge
report row is the market at the window end. On a replay world, the hourly market's row
at the end of window 12:00 (12:15) must reach the model with the inputs training builds
for that market's path minute 12:15 (collected with window 12:15). On its window-end
indicators instead, its path features are null, its spot and time left are not taken as
of the quote, and it carries indicators no path row has: the model would score inputs it
never saw."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.defs.model.inputs import edge_inputs, training_paths, with_path_inputs
from btc_tracker_pipeline.features.path_features import PATH_FEATURES
from btc_tracker_pipeline.model.artifact import load_latest, save_model
from btc_tracker_pipeline.model.dataset import FEATURES, add_features, path_rows
from btc_tracker_pipeline.model.train import Model
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import run_windows
from btc_tracker_pipeline.warehouse import warehouse

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 15, 0)  # every window below is history by then
# From an hour before the hourly market's open (the 60 bars of its realised volatility)
# to the window that labels it (12:00–13:00).
WINDOWS = [f"2026-03-01-{h:02d}:{m:02d}" for h in (11, 12) for m in (0, 15, 30, 45)]
WINDOWS.append("2026-03-01-13:00")
START, END = datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 1, 12, 15)  # window 12:00


@dataclass
class Scored:
    rows: pl.DataFrame  # window 12:00's edge inputs
    as_learned: pl.DataFrame  # the model's inputs for them
    trained: pl.DataFrame  # training's path rows
    report: pl.DataFrame  # window 12:00's edge report, rerun with MoveModel
    models: Path


def save_move_model(models: Path) -> None:
    """A model that reads ``move_sigma`` only (P(Up) high above 0, low below; a missing
    value takes its own branch), trained on both up/down families."""
    import xgboost as xgb

    rng = np.random.default_rng(1)
    x = np.full((400, len(FEATURES)), np.nan)
    move = FEATURES.index("move_sigma")
    x[:, move] = rng.normal(0, 1, 400)
    data = xgb.DMatrix(x, label=(x[:, move] > 0).astype(float), feature_names=list(FEATURES))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 1}, data, 5)
    card = {
        "data_window": {"first_snapshot": "2026-02-27 00:00:00", "last_snapshot": "2026-02-28"},
        "trained_families": {"updown_15m": 100, "updown_1h": 100},
        "metrics": {"skill_test": {"proven_families": []}},
    }
    save_model(Model(booster=booster, features=list(FEATURES)), card, models)


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Scored:
    folder = tmp_path_factory.mktemp("edge_paths")
    world = SimulatedWorld(seed=7, days=1, clock=lambda: NOW, lag_s=90.0)
    with replay_session(world, folder) as session:
        with assets_clock(NOW):
            assert all(o.success for o in run_windows(WINDOWS, instance=session.instance))
        with warehouse(session.warehouse) as conn:
            rows = edge_inputs(conn, START, END)
            as_learned, trained = with_path_inputs(conn, rows), path_rows(training_paths(conn))
        save_move_model(session.models)
        with assets_clock(NOW):
            assert all(o.success for o in run_windows(WINDOWS[4:5], instance=session.instance))
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            report = conn.execute("SELECT * FROM edge_report WHERE window_start = ?", [START]).pl()
        return Scored(rows, as_learned, trained, report, session.models)


def hourly_market(scored: Scored) -> str:
    """The hourly market open at 12:15 (opened 12:00)."""
    opened = scored.rows.filter(
        pl.col("family") == "updown_1h", pl.col("reference_price").is_not_null()
    )
    assert opened.height == 1, scored.rows.select("market_id", "family", "reference_price")
    return opened["market_id"][0]


def test_an_open_hourly_market_at_the_window_end_gets_its_path_minute_s_inputs(scored):
    market = hourly_market(scored)
    at_end = scored.as_learned.filter(pl.col("market_id") == market)
    minute = scored.trained.filter(pl.col("market_id") == market, pl.col("snapshot_ts") == END)
    assert at_end.height == 1 and minute.height == 1, minute
    given = add_features(at_end).select(FEATURES).row(0, named=True)
    learned = add_features(minute).select(FEATURES).row(0, named=True)
    for name in FEATURES:
        assert given[name] == pytest.approx(learned[name], abs=1e-9, nan_ok=True), name
    # Training gave that minute every path feature, spot included …
    assert minute.select(PATH_FEATURES).null_count().sum_horizontal()[0] == 0
    # … which the same row's window-end indicators lack.
    window_end = add_features(scored.rows.filter(pl.col("market_id") == market))
    assert window_end.select(PATH_FEATURES).null_count().sum_horizontal()[0] == len(PATH_FEATURES)


def test_the_edge_report_scores_it_on_its_path_and_keeps_the_window_s_columns(scored):
    market = hourly_market(scored)
    model, _ = load_latest(scored.models)
    minute = scored.trained.filter(pl.col("market_id") == market, pl.col("snapshot_ts") == END)
    on_path = float(model.predict(add_features(minute))[0])
    window_row = scored.rows.filter(pl.col("market_id") == market)
    on_indicators = float(model.predict(add_features(window_row))[0])
    assert abs(on_path - on_indicators) > 0.05  # the model tells the two inputs apart
    row = scored.report.filter(pl.col("market_id") == market).row(0, named=True)
    assert row["model_prob"] == pytest.approx(on_path, abs=1e-6)
    # The report's own columns are the window's, as for every other row.
    assert row["structural_probability"] == pytest.approx(window_row["structural_probability"][0])
    assert row["time_to_expiry_hours"] == pytest.approx(window_row["time_to_expiry_hours"][0])
    assert row["market_prob"] == pytest.approx(window_row["market_prob"][0])
