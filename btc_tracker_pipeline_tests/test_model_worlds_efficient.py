"""The evaluation cannot fool us, part 1: an efficient replay world (market = fair
probability) shows no skill and no significant profit, end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from btc_tracker_pipeline.runner import run_job
from btc_tracker_pipeline_tests.model_worlds import World, backfill_and_train

# A 288-window backfill and a walk-forward training: minutes when the other worker is busy.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def efficient(tmp_path_factory) -> Iterator[World]:
    yield from backfill_and_train(0.0, tmp_path_factory.mktemp("efficient"))


def test_efficient_world_shows_no_skill_and_no_significant_profit(efficient):
    lo, hi = efficient.report["bss_vs_market_ci"]
    assert lo <= 0.0 <= hi, efficient.report["bss_vs_market"]
    assert efficient.report["n_markets"] >= 30
    # No profit whose 95 % interval excludes zero.
    assert efficient.paper["roi_ci_low"] is None or efficient.paper["roi_ci_low"] <= 0.0


def test_too_little_data_refuses_to_train_with_counts(efficient):
    result = run_job("train_job", instance=efficient.instance)  # default minimum: 200
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "not training: have" in message and "need 200" in message
