"""The evaluation cannot fool us, part 1: an efficient replay world (bias 0, noise 0: the
mid is the fair value up to the tick) shows no skill, proves none, trades nothing, and
its oracle confirms there was none to find, end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from btc_tracker_pipeline.runner import run_job
from btc_tracker_pipeline_tests.model_worlds import World, backfill_and_train

# A 480-window backfill and a walk-forward training: minutes when the other worker is busy.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def efficient(tmp_path_factory) -> Iterator[World]:
    yield from backfill_and_train(0.0, tmp_path_factory.mktemp("efficient"))


def test_efficient_world_shows_no_skill_and_no_significant_profit(efficient):
    lo, hi = efficient.report["bss_vs_market_ci"]
    assert lo <= 0.0 <= hi, efficient.report["bss_vs_market"]
    assert efficient.report["n_markets"] >= 60
    # The world's own fair value, scored the same way, cannot beat its market either:
    # the features see no more than the quote did (structural spot as of the quote).
    lo, hi = efficient.report["bss_oracle_ci"]
    assert lo <= 0.0 <= hi and abs(efficient.report["bss_oracle"]) < 0.005
    assert efficient.report["share_captured"] is None  # no ceiling to take a share of
    # Trees grew in some folds (the test can fail), yet no fold sits off the market.
    folds = [f for f in efficient.full_report["folds"] if "mean_shift" in f]
    assert any(f["n_trees"] > 0 for f in folds)
    assert all(abs(f["mean_shift"]) < 0.05 for f in folds), folds
    assert efficient.full_report["skill_test"]["proven_families"] == []
    assert efficient.paper["n_trades"] == 0


def test_too_little_data_refuses_to_train_with_counts(efficient):
    # Five days hold ~480 fifteen-minute markets with in-window rows: ask for more.
    config = {"ops": {"price_model": {"config": {"min_resolved_markets": 5000}}}}
    result = run_job("train_job", instance=efficient.instance, run_config=config)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "not training: have" in message and "need 5000" in message
