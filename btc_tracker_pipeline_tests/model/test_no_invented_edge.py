"""Small data, no invented edge: a shift the events do not support is taken out, Platt
is applied only with evidence, thin families get no model, and levels of a random walk
are not features."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.model.artifact import load_latest, save_model
from btc_tracker_pipeline.model.dataset import (
    EXCLUDED_FEATURES,
    FEATURES,
    MODEL_FEATURES,
    add_features,
)
from btc_tracker_pipeline.model.train import (
    InsufficientDataError,
    fit_model,
    platt_evidence,
    select_families,
    walk_forward_evaluate,
)
from btc_tracker_pipeline_tests.model import synthetic_tables

START = datetime(2026, 1, 5)


def ladders(
    n_events: int, *, lift: float, seed: int = 0, strikes: int = 11, family: str = "above"
) -> pl.DataFrame:
    """Dataset rows of daily "above" ladders: ``strikes`` markets per event, 4 snapshots
    each, priced at their true probability q; the label is YES with probability
    min(1, q + ``lift``) drawn once per event (one BTC path: every strike of a day moves
    together). ``lift`` > 0 is a sample where BTC rallied past what the market priced."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_events):
        expiry = START + timedelta(days=e + 1)
        u = rng.uniform()  # one draw per event: the day's BTC outcome
        for k in range(strikes):
            q_final = (k + 0.5) / strikes  # strike k's probability at the last snapshot
            y = int(u < min(1.0, q_final + lift))
            for s in range(4):
                q = float(np.clip(q_final + rng.normal(0, 0.03), 0.02, 0.98))
                rows.append(
                    {
                        "market_id": f"{family}-e{e:03d}k{k:02d}",
                        "event_id": f"{family}-ev{e:03d}",
                        "cluster": f"{family}-ev{e:03d}",
                        "family": family,
                        "snapshot_ts": expiry - timedelta(hours=4 - s),
                        "resolved_at": expiry + timedelta(minutes=5),
                        "y": y,
                        "market_probability": q,
                        "market_prob": q,
                        "structural_probability": q,
                        "log_moneyness": math.log(q / (1 - q)) * 0.01,
                        "realized_vol": 0.5,
                        "time_to_expiry_hours": float(4 - s),
                        "btc_spot_price": 90_000.0 + 500.0 * e,
                    }
                )
    frame = add_features(pl.DataFrame(rows))
    return frame.with_columns((1.0 / pl.len().over("market_id")).alias("weight"))


def mean_shift(model, rows: pl.DataFrame) -> float:
    return float(
        np.average(model.predict(rows) - rows["market_prob"].to_numpy(), weights=rows["weight"])
    )


@pytest.mark.unit
def test_a_few_rallies_do_not_become_a_buy_yes_edge():
    """Sixty efficient hourly events and five days of "above" ladders on which BTC
    rallied: the trees learn "above goes YES" from those five days; without the shift
    control the model sits above the market on the next day's ladder, with it at it."""
    hourly = ladders(60, lift=0.0, seed=6, strikes=1, family="updown_1h")
    above = ladders(7, lift=0.35, seed=1)
    train = pl.concat([hourly, above.filter(pl.col("event_id") < "above-ev005")])
    calib = above.filter(pl.col("event_id") == "above-ev005")
    test = above.filter(pl.col("event_id") == "above-ev006")
    model = fit_model(train, calib)
    assert model.info["n_trees"] > 0
    evidence = model.info["shift_evidence"]["above"]
    assert evidence["events"] == 6 and not evidence["supported"]
    assert evidence["shift"] > 0.02  # the trees did learn "above goes YES"
    unchecked = fit_model(train, calib)
    unchecked.family_offsets = {}
    assert mean_shift(unchecked, test) > 0.02
    assert abs(mean_shift(model, test)) < 0.005


@pytest.mark.unit
def test_too_few_events_to_stop_on_leave_the_model_at_the_market():
    """Five ladder days: too few events to choose a number of trees on, so none grows."""
    above = ladders(7, lift=0.35, seed=1)
    model = fit_model(
        above.filter(pl.col("event_id") < "above-ev005"),
        above.filter(pl.col("event_id") == "above-ev005"),
    )
    assert model.info["n_trees"] == 0 and "too few to stop on" in model.info["no_trees_reason"]
    test = above.filter(pl.col("event_id") == "above-ev006")
    assert np.allclose(model.predict(test), test["market_prob"].to_numpy(), atol=1e-6)


@pytest.mark.unit
def test_a_shift_seen_on_many_events_is_kept():
    """Seventy days on which the market was too low, each an independent outcome: the
    data support the shift, so the model keeps it."""
    data = ladders(70, lift=0.2, seed=2, strikes=3)
    train = data.filter(pl.col("event_id") < "above-ev056")
    calib = data.filter(pl.col("event_id") >= "above-ev056")
    model = fit_model(train, calib)
    evidence = model.info["shift_evidence"]["above"]
    assert evidence["events"] == 70 and evidence["supported"], evidence
    assert "above" not in model.family_offsets
    assert mean_shift(model, calib) > 0.02


@pytest.mark.unit
def test_platt_is_applied_only_with_evidence():
    rng = np.random.default_rng(3)
    margin = rng.normal(0, 1.5, 4000)
    # Outcomes drawn at σ(margin): a calibrated booster; the fit is noise.
    y = (rng.uniform(size=margin.size) < 1 / (1 + np.exp(-margin))).astype(float)
    w = np.full(margin.size, 0.25)  # 1000 events of 4 rows
    calm = platt_evidence(margin, y, w, 1.03, -0.02)
    assert not calm["supported"] and calm["deviance"] < 5.991
    # Outcomes at σ(0.5·margin): an over-confident booster, plain on 1000 events.
    y = (rng.uniform(size=margin.size) < 1 / (1 + np.exp(-0.5 * margin))).astype(float)
    assert platt_evidence(margin, y, w, 0.5, 0.0)["supported"]
    # The same rows as one event (a ladder's strikes): no evidence at all.
    assert not platt_evidence(margin, y, np.full(margin.size, 1 / margin.size), 0.5, 0.0)[
        "supported"
    ]


@pytest.mark.unit
def test_offsets_survive_saving(tmp_path):
    hourly = ladders(60, lift=0.0, seed=6, strikes=1, family="updown_1h")
    above = ladders(7, lift=0.35, seed=1)
    data = pl.concat([hourly, above])
    model = fit_model(
        pl.concat([hourly, above.filter(pl.col("event_id") < "above-ev005")]),
        above.filter(pl.col("event_id") == "above-ev005"),
    )
    assert model.family_offsets
    save_model(model, {"n_markets": 1}, tmp_path)
    loaded, _ = load_latest(tmp_path)
    assert loaded.family_offsets == model.family_offsets
    assert np.array_equal(loaded.predict(data), model.predict(data))


@pytest.mark.unit
def test_families_below_their_minimum_get_no_model():
    ds = pl.concat(
        [
            ladders(3, lift=0.0, seed=4).select("market_id", "event_id", "family"),
            pl.DataFrame(
                {
                    "market_id": [f"u{i}" for i in range(40)],
                    "event_id": [f"u{i}" for i in range(40)],
                    "family": ["updown_1h"] * 40,
                }
            ),
        ]
    )
    kept, left_out = select_families(ds, min_markets=30, min_events=20)
    assert set(kept["family"]) == {"updown_1h"}
    assert left_out == {"above": "33 markets in 3 events"}
    with pytest.raises(InsufficientDataError) as refused:
        select_families(ds, min_markets=50, min_events=20)
    message = str(refused.value)
    assert "no family with 50 markets in 20 events" in message
    assert (
        "above 33 markets in 3 events" in message and "updown_1h 40 markets in 40 events" in message
    )


@pytest.mark.integration
def test_walk_forward_reports_the_shift_of_each_fold():
    from btc_tracker_pipeline.model.dataset import build_dataset

    ds = build_dataset(*synthetic_tables(bias=0.0))
    _, report = walk_forward_evaluate(ds, n_boot=100)
    assert set(report["shift"]) == {"mean_shift", "shift_by_family"}
    for fold in report["folds"]:
        assert abs(fold["mean_shift"]) < 0.01  # an efficient market: no shift to learn
        assert set(fold["shift_by_family"]) == {"updown_1h"}


@pytest.mark.unit
def test_the_model_does_not_read_levels_of_a_random_walk():
    assert not {"btc_spot_price", "volume", "liquidity"} & set(MODEL_FEATURES)
    assert set(MODEL_FEATURES) | set(EXCLUDED_FEATURES) == set(FEATURES)
    data = ladders(7, lift=0.0, seed=5)
    model = fit_model(
        data.filter(pl.col("event_id") < "above-ev005"),
        data.filter(pl.col("event_id") == "above-ev005"),
    )
    moved = data.with_columns(pl.col("btc_spot_price") * 3.0, pl.lit(1e9).alias("volume"))
    assert np.array_equal(model.predict(moved), model.predict(data))
