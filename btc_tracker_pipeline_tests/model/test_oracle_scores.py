"""The oracle's ceiling: on a simulated world the evaluation also scores the fair value
the world priced from, beside the model, with the share of that skill the model took."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.model.metrics import evaluation_report
from btc_tracker_pipeline.model.oracle import information_times, recorded_world, with_oracle
from btc_tracker_pipeline.replay.demo_world import save_world
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1)


def predictions(n_events: int, *, noise: float, seed: int = 0) -> pl.DataFrame:
    """One row per up/down-like event: fair value q, outcome drawn at q, a market at q
    plus ``noise`` (logit), a model halfway between market and fair value."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.1, 0.9, n_events)
    y = (rng.uniform(size=n_events) < q).astype(np.int8)
    logit = np.log(q / (1 - q)) + rng.normal(0, noise, n_events)
    market = 1 / (1 + np.exp(-logit))
    return pl.DataFrame(
        {
            "market_id": [f"m{i}" for i in range(n_events)],
            "family": ["updown_1h"] * n_events,
            "cluster": [f"e{i}" for i in range(n_events)],
            "y": y,
            "weight": np.ones(n_events),
            "model_prob": (market + q) / 2,
            "market_prob": market,
            "structural_probability": q,
            "oracle_prob": q,
        }
    )


def test_the_oracle_is_scored_beside_the_model_with_the_share_captured():
    report = evaluation_report(predictions(3000, noise=0.8), n_boot=200)
    overall = report["overall"]
    assert overall["bss_oracle"] > 0.05
    lo, hi = overall["bss_oracle_ci"]
    assert 0 < lo < overall["bss_oracle"] < hi
    assert overall["share_captured"] == pytest.approx(
        overall["bss_model_on_oracle_rows"] / overall["bss_oracle"]
    )
    assert 0.3 < overall["share_captured"] < 1.0  # halfway to the fair value
    assert report["by_family"]["updown_1h"]["bss_oracle"] == pytest.approx(overall["bss_oracle"])


def test_no_share_of_a_ceiling_that_is_not_there():
    """An efficient market (no noise): the oracle's skill is ~0, its interval holds 0,
    and a share of it would be a ratio of noise."""
    block = evaluation_report(predictions(2000, noise=0.0), n_boot=200)["overall"]
    assert abs(block["bss_oracle"]) < 1e-9
    assert block["share_captured"] is None


def test_real_data_has_no_oracle():
    block = evaluation_report(predictions(300, noise=0.5).drop("oracle_prob"), n_boot=50)["overall"]
    assert block["bss_oracle"] is None and block["bss_oracle_ci"] == [None, None]
    assert block["share_captured"] is None
    nulls = predictions(300, noise=0.5).with_columns(pl.lit(None, pl.Float64).alias("oracle_prob"))
    assert evaluation_report(nulls, n_boot=50)["overall"]["bss_oracle"] is None


def test_a_row_is_valued_at_its_quotes_time(tmp_path):
    """A history quote 58 s old was priced a minute before the snapshot: its fair value
    is the world's at that minute, not at the snapshot."""
    world = SimulatedWorld(seed=3, days=2, now=NOW)
    market = next(m for m in world.gamma_markets() if "Up or Down" in m["question"])
    snapshot = NOW - timedelta(hours=1)
    rows = pl.DataFrame(
        {
            "market_id": [market["id"]] * 2,
            "snapshot_ts": [snapshot, snapshot],
            "quote_age_s": [58.0, -3.0],
        }
    )
    assert information_times(rows).to_list() == [snapshot - timedelta(seconds=58), snapshot]
    fair = with_oracle(rows, world)["oracle_prob"].to_list()
    expected = world.fair_probabilities(
        [market["id"]] * 2, [snapshot - timedelta(minutes=1), snapshot]
    )
    assert fair == pytest.approx(list(expected))
    # Recorded beside a warehouse (as the demo and replay sessions do), it is found again.
    save_world(world, tmp_path / "warehouse.duckdb")
    again = recorded_world(tmp_path / "warehouse.duckdb", rows)
    assert again is not None and again.identity() == world.identity()
    assert with_oracle(rows, again)["oracle_prob"].to_list() == pytest.approx(fair)
    assert recorded_world(tmp_path / "other.duckdb", rows) is None
    assert with_oracle(rows, None)["oracle_prob"].null_count() == 2


def test_skill_the_world_does_not_have_is_never_proven():
    """An efficient world (market = fair value) and a model that peeks at the outcome:
    its skill interval is far above 0, but the oracle shows there was none to find, so
    the family is not proven and the note says why; on real data (no oracle) the same
    predictions would be proven (the plain test), and with a real ceiling they are."""
    frame = predictions(2000, noise=0.0)
    leak = frame.with_columns(
        (0.9 * pl.col("market_prob") + 0.1 * pl.col("y").cast(pl.Float64)).alias("model_prob")
    )
    report = evaluation_report(leak, n_boot=200)
    block = report["by_family"]["updown_1h"]
    assert block["bss_vs_market_ci"][0] > 0.01
    assert not block["skill_proven"] and "chance or a leak" in block["skill_note"]
    assert report["skill_test"]["proven_families"] == []
    real = evaluation_report(leak.drop("oracle_prob"), n_boot=200)
    assert real["skill_test"]["proven_families"] == ["updown_1h"]
    beatable = evaluation_report(predictions(3000, noise=0.8), n_boot=200)
    assert beatable["skill_test"]["proven_families"] == ["updown_1h"]
