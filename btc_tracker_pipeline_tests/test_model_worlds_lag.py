"""The in-window rows against a market that follows its fair value late: on a world whose
up/down prices lag the fair value by 90 s, the walk-forward evaluation finds the edge
inside 15- and 5-minute windows (intervals above 0, below the oracle's ceiling) and paper
trading earns on it after fees; on the same world without the lag it finds none.

Two-day worlds with 5-minute markets, a 1-hour up/down lead and 3 strikes a ladder keep
the backfill short (≈ 1.5 min each); bench/model_worlds.py (lag90, lag0) runs 5 days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from btc_tracker_pipeline_tests.model_worlds import World, backfill_and_train

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SMALL = {"updown_5m": True, "updown_lead": timedelta(hours=1), "strikes_per_ladder": 1}


@pytest.fixture(scope="module")
def lag90(tmp_path_factory) -> Iterator[World]:
    yield from backfill_and_train(0.0, tmp_path_factory.mktemp("lag90"), days=2, lag_s=90, **SMALL)


@pytest.fixture(scope="module")
def lag0(tmp_path_factory) -> Iterator[World]:
    yield from backfill_and_train(0.0, tmp_path_factory.mktemp("lag0"), days=2, lag_s=0, **SMALL)


def family(world: World, name: str) -> dict:
    return world.full_report["by_family"][name]


def test_a_lagging_market_is_beaten_inside_the_window_below_the_oracles_ceiling(lag90):
    for name in ("updown_15m", "updown_5m"):
        block = family(lag90, name)
        assert block["n_markets"] >= 100, block
        assert block["bss_vs_market_ci"][0] > 0.0, (name, block["bss_vs_market_ci"])
        assert block["bss_oracle_ci"][0] > 0.0, (name, block["bss_oracle_ci"])
        # A model above the world's own fair value would know more than the world did.
        assert block["bss_vs_market"] < block["bss_oracle"] + 0.02, block
    assert lag90.report["bss_vs_market_ci"][0] > 0.0
    assert lag90.report["bss_vs_market"] < lag90.report["bss_oracle"] + 0.02
    # Paper trading takes the proven families after their first fold, and earns after fees.
    assert lag90.paper["n_trades"] > 20
    assert lag90.paper["roi_ci_low"] > 0.0, lag90.paper


def test_an_efficient_market_is_not_beaten_inside_the_window(lag0):
    for block in (lag0.report, family(lag0, "updown_15m"), family(lag0, "updown_5m")):
        lo, hi = block["bss_vs_market_ci"]
        assert lo <= 0.0 <= hi or hi < 0.0, block
        lo, hi = block["bss_oracle_ci"]
        assert abs(block["bss_oracle"]) < 0.01, block
    assert lag0.full_report["skill_test"]["proven_families"] == []
    assert lag0.paper["n_trades"] == 0
