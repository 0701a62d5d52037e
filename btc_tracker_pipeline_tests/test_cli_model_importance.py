"""`btc-tracker model` and `model --json` show the saved booster's feature importance
(gain share per feature, largest first), as the Dagster UI's price_model metadata does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.model import metrics
from btc_tracker_pipeline.model.artifact import save_model
from btc_tracker_pipeline.model.dataset import FEATURES
from btc_tracker_pipeline.model.train import Model
from btc_tracker_pipeline_tests.model.test_metrics import skill_frame

pytestmark = pytest.mark.unit
runner = CliRunner()


@pytest.fixture
def saved(tmp_path, monkeypatch) -> Model:
    """A small booster whose label depends on two features, saved as price_model saves."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(400, len(FEATURES)))
    y = (x[:, FEATURES.index("rsi_14")] + 0.3 * x[:, FEATURES.index("volume_spike")]) > 0.65
    data = xgb.DMatrix(x, label=y.astype(int), feature_names=FEATURES)
    model = Model(booster=xgb.train({"max_depth": 2}, data, 5), features=list(FEATURES))
    card = {
        "data_window": {"first_snapshot": "a", "last_snapshot": "b"},
        "n_markets": 250,
        "n_rows": 250,
        "metrics": metrics.evaluation_report(skill_frame({"updown_1h": 25}), n_boot=50),
    }
    save_model(model, card, tmp_path / "models")
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("COLUMNS", "200")
    return model


def test_model_json_has_the_gain_share_per_feature_summing_to_one(saved):
    result = runner.invoke(app, ["model", "--json"])
    assert result.exit_code == 0, result.output
    importance = json.loads(result.stdout)["feature_importance"]
    assert [row["feature"] for row in importance][:2] == ["rsi_14", "volume_spike"]
    assert sorted(row["feature"] for row in importance) == sorted(FEATURES)
    shares = [row["gain_share"] for row in importance]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0)
    assert {"gain", "splits"} <= set(importance[0])


def test_model_prints_the_importance_table_after_the_card(saved):
    result = runner.invoke(app, ["model"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.index("model (walk-forward, out of sample)") < text.index("feature importance")
    after = text[text.index("feature importance") :].splitlines()
    first_row = next(line for line in after if "rsi_14" in line or "volume_spike" in line)
    assert "rsi_14" in first_row  # largest share first
    share = float(first_row.split("│")[2])
    assert 0.5 < share <= 1.0
    assert "unused by the trees:" in text and "quote_age_s" in text
