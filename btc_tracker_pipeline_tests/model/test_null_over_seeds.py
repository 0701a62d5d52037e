"""The null test, fast: on efficient synthetic markets the walk-forward evaluation finds
no skill beyond its error rate over several seeds, and proves none; on distorted ones
it does (so the test can fail). The end-to-end version over simulated worlds, with
the rate measured over more seeds, is ``bench/model_worlds.py``."""

from __future__ import annotations

import pytest

from btc_tracker_pipeline.model.dataset import build_dataset
from btc_tracker_pipeline.model.train import walk_forward_evaluate
from btc_tracker_pipeline_tests.model import synthetic_tables

pytestmark = pytest.mark.integration

SEEDS = range(8)


def evaluate(bias: float, seed: int) -> dict:
    ds = build_dataset(*synthetic_tables(bias=bias, days=4, seed=seed))
    return walk_forward_evaluate(ds, n_boot=500)[1]


@pytest.fixture(scope="module")
def efficient() -> list[dict]:
    return [evaluate(0.0, seed) for seed in SEEDS]


def test_efficient_markets_show_no_skill_beyond_the_error_rate(efficient):
    # A 95 % interval excludes 0 in about 1 of 20 efficient worlds: 2 of 8 would be a leak.
    excluding = [r["overall"]["bss_vs_market_ci"][0] > 0 for r in efficient]
    assert sum(excluding) <= 1, [r["overall"]["bss_vs_market_ci"] for r in efficient]
    assert all(r["skill_test"]["proven_families"] == [] for r in efficient)
    # And no systematic shift from the market in any fold of any seed.
    assert all(
        abs(f["mean_shift"]) < 0.01 for r in efficient for f in r["folds"] if "mean_shift" in f
    )


def test_distorted_markets_show_it():
    proven = [evaluate(0.7, seed)["skill_test"]["proven_families"] for seed in SEEDS]
    assert sum(p == ["updown_1h"] for p in proven) >= 6, proven
