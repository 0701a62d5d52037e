"""The model: refuses thin data, is deterministic, and — the key proof — finds skill in
a distorted synthetic market but not in an efficient one."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.features.path_features import PATH_FEATURES
from btc_tracker_pipeline.model.dataset import MODEL_FEATURES, build_dataset, dataset_losses
from btc_tracker_pipeline.model.splits import event_table, split_calibration
from btc_tracker_pipeline.model.train import (
    MIN_RESOLVED_MARKETS,
    PRED_ID_COLUMNS,
    InsufficientDataError,
    fit_model,
    fit_platt,
    refusal_message,
    train_final,
    walk_forward_evaluate,
)
from btc_tracker_pipeline_tests.model import synthetic_tables


def world(bias: float, **kw) -> pl.DataFrame:
    return build_dataset(*synthetic_tables(bias=bias, **kw))


@pytest.fixture(scope="module")
def efficient() -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    ds = world(0.0)
    return (ds, *walk_forward_evaluate(ds))


@pytest.fixture(scope="module")
def distorted() -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    ds = world(0.5)
    return (ds, *walk_forward_evaluate(ds))


@pytest.mark.integration
def test_efficient_market_shows_no_skill(efficient):
    """b = 0: the price is the truth plus 1¢ noise, so the model cannot beat it:
    its walk-forward Brier skill against the market has a 95 % CI containing 0."""
    _, _, report = efficient
    overall = report["overall"]
    lo, hi = overall["bss_vs_market_ci"]
    assert lo < 0.0 < hi, overall["bss_vs_market_ci"]
    assert abs(overall["bss_vs_market"]) < 0.01
    lo, hi = overall["logloss_skill_vs_market_ci"]
    assert lo < 0.0 < hi


@pytest.mark.integration
def test_distorted_market_shows_skill(distorted):
    """b = 0.5: prices are σ(½·logit q), a strong favourite–longshot distortion; the
    model recovers q and beats the market with a CI above 0, and is better calibrated."""
    _, _, report = distorted
    overall = report["overall"]
    assert overall["bss_vs_market"] > 0.02
    assert overall["bss_vs_market_ci"][0] > 0.0, overall["bss_vs_market_ci"]
    assert overall["logloss_skill_vs_market_ci"][0] > 0.0
    assert overall["ece_model"] < overall["ece_market"]


@pytest.mark.integration
def test_walk_forward_predictions(distorted):
    ds, pred, report = distorted
    assert pred.columns == ["fold", *PRED_ID_COLUMNS, "model_prob"]
    assert pred["model_prob"].is_between(0.0, 1.0, closed="none").all()
    # Each scored row is a dataset row, scored once, by a model that never saw its event.
    assert pred.select("market_id", "snapshot_ts").is_unique().all()
    assert pred.height <= ds.height
    folds = report["folds"]
    assert len(folds) == pred["fold"].n_unique() >= 5
    assert folds[0]["n_train_markets"] + folds[0]["n_calib_markets"] >= MIN_RESOLVED_MARKETS
    assert report["overall"]["n_markets"] == sum(f["n_test_markets"] for f in folds)
    assert report["split"]["min_train_markets"] == MIN_RESOLVED_MARKETS
    assert set(report["by_family"]) == {"updown_1h"}


@pytest.mark.unit
def test_insufficient_data_is_refused():
    ds = world(0.0, days=1)  # 144 markets
    with pytest.raises(InsufficientDataError, match="have 144 resolved markets, need 200"):
        walk_forward_evaluate(ds)
    with pytest.raises(InsufficientDataError, match="have 144 resolved markets, need 200"):
        train_final(ds)
    with pytest.raises(InsufficientDataError, match="have 0 resolved markets, need 200"):
        train_final(ds.clear())
    # Enough markets in all, but no test window with 200 resolved before it.
    ds = world(0.0, days=2)
    with pytest.raises(InsufficientDataError, match="no test window"):
        walk_forward_evaluate(ds, min_train_markets=1000)
    # Enough markets, but nothing ever resolved YES (a young reach-only history).
    with pytest.raises(InsufficientDataError, match="one outcome only"):
        walk_forward_evaluate(ds.with_columns(pl.lit(0, dtype=pl.Int8).alias("y")))


@pytest.fixture(scope="module")
def small() -> pl.DataFrame:
    return world(0.5, days=3, markets_per_hour=4, seed=2)


@pytest.mark.unit
def test_fit_is_deterministic_and_calibrated(small):
    train_events, calib_events = split_calibration(event_table(small))
    train = small.filter(pl.col("event_id").is_in(train_events))
    calib = small.filter(pl.col("event_id").is_in(calib_events))
    first, second = fit_model(train, calib), fit_model(train, calib)
    assert np.array_equal(first.predict(small), second.predict(small))
    assert first.calibrated
    assert first.info["n_train_markets"] == train["market_id"].n_unique()
    assert 1 <= first.info["n_trees"] <= 300
    # Platt's (a, b) replace the identity only when the calibration fold supports them.
    evidence = first.info["platt_evidence"]
    applied = (first.platt_coef, first.platt_intercept) != (1.0, 0.0)
    assert applied == evidence["supported"] and evidence["events"] == calib["event_id"].n_unique()
    with pytest.raises(ValueError, match="scale_pos_weight"):
        fit_model(train, calib, {"scale_pos_weight": 3.0})
    with pytest.raises(InsufficientDataError, match="one outcome"):
        fit_model(train.filter(pl.col("y") == 1), calib)


@pytest.mark.unit
def test_one_outcome_calibration_fold_leaves_the_booster_as_is(small):
    train_events, calib_events = split_calibration(event_table(small))
    train = small.filter(pl.col("event_id").is_in(train_events))
    calib = small.filter(pl.col("event_id").is_in(calib_events) & (pl.col("y") == 0))
    model = fit_model(train, calib)
    assert not model.calibrated
    assert (model.platt_coef, model.platt_intercept) == (1.0, 0.0)
    assert np.allclose(model.predict(small), model.predict_uncalibrated(small))


@pytest.mark.unit
def test_model_scores_raw_indicator_rows(small):
    """Live rows (market_indicators columns only) score like their dataset rows."""
    model = train_final(small)
    indicators, _, _ = synthetic_tables(bias=0.5, days=3, markets_per_hour=4, seed=2)
    raw = indicators.join(small.select("market_id", "snapshot_ts"), on=["market_id", "snapshot_ts"])
    joined = raw.sort("market_id", "snapshot_ts")
    rows = small.sort("market_id", "snapshot_ts")
    assert np.allclose(model.predict(joined), model.predict(rows))
    importance = model.feature_importance()
    assert importance.columns == ["feature", "gain", "gain_share", "splits"]
    # No up/down path in these rows: the in-window features are left out (used_features).
    assert sorted(importance["feature"].to_list()) == sorted(model.features)
    assert set(MODEL_FEATURES) - set(model.features) == set(PATH_FEATURES)
    assert importance["gain"].to_list() == sorted(importance["gain"].to_list(), reverse=True)
    assert importance["gain_share"].sum() == pytest.approx(1.0)
    assert model.info["calib_from"] is not None


@pytest.mark.unit
def test_fit_platt():
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 1.5, 40_000)
    y = rng.uniform(size=margin.size) < 1 / (1 + np.exp(-(2.0 * margin - 0.3)))
    w = np.ones(margin.size)
    a, b = fit_platt(margin, y, w, prior=0.0)
    assert (a, b) == (pytest.approx(2.0, abs=0.06), pytest.approx(-0.3, abs=0.05))
    # The prior pulls a small fold towards the identity (1, 0).
    a_small, b_small = fit_platt(margin[:60], y[:60], w[:60], prior=0.0)
    a_prior, b_prior = fit_platt(margin[:60], y[:60], w[:60], prior=50.0)
    assert abs(a_prior - 1) < abs(a_small - 1) and abs(b_prior) < abs(b_small)
    # Separable data stay finite.
    a, b = fit_platt(np.array([-1.0, 1.0]), np.array([0, 1]), np.ones(2), prior=0.0)
    assert np.isfinite([a, b]).all()


@pytest.mark.unit
def test_refusal_names_the_dataset_rule_that_removed_the_markets():
    indicators, resolutions, markets = synthetic_tables(days=2)
    # Every snapshot taken after its market settled: nothing left to learn from.
    late = indicators.with_columns(pl.col("snapshot_ts") + pl.duration(days=1))
    ds = build_dataset(late, resolutions, markets)
    assert ds.is_empty()
    closed, resolved, losses = dataset_losses(late, resolutions, markets)
    assert closed == resolved == 288
    assert losses == [("had snapshots only once the outcome was known (rule 2)", 288)]
    with pytest.raises(InsufficientDataError) as refused:
        train_final(ds)
    message = refusal_message(refused.value, resolved, losses)
    assert message == (
        "have 288 resolved markets but 0 usable rows, need 200 because 288 had snapshots"
        " only once the outcome was known (rule 2)"
    )
    assert "have 0 resolved markets" not in message
    # Markets void or without indicator rows are counted at their own rule.
    void = resolutions.with_columns(
        pl.when(pl.int_range(pl.len()) < 10)
        .then(pl.lit("void"))
        .otherwise("status")
        .alias("status")
    )
    few = late.filter(pl.col("market_id").is_in(late["market_id"].unique().sort().head(270)))
    _, resolved, losses = dataset_losses(few, void, markets)
    assert resolved == 278
    assert dict(losses)["were void, unsettled or contradicted by the klines (rule 1)"] == 10
    assert sum(n for _, n in losses) == 288


@pytest.mark.unit
def test_one_outcome_refusal_says_which_and_how_many():
    ds = world(0.0, days=2)
    all_no = ds.with_columns(pl.lit(0, dtype=pl.Int8).alias("y"))
    n = ds["market_id"].n_unique()
    with pytest.raises(InsufficientDataError) as refused:
        walk_forward_evaluate(all_no)
    assert str(refused.value) == (
        f"have {n} resolved markets, need 200: one outcome only in every fold: "
        f"all {n} labels are NO"
    )
    # Nothing to add from the dataset rules when every resolved market is usable.
    assert refusal_message(refused.value, n, []) == str(refused.value)
