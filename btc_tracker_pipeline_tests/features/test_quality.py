"""The data-quality score: each component on its own, and the mean."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from btc_tracker_pipeline.features.quality import COMPONENTS, QUALITY_SCHEMA, add_quality

pytestmark = pytest.mark.unit

END = datetime(2026, 3, 1, 10, 15)
SCHEMA = {
    "yes_price": pl.Float64,
    "volume": pl.Float64,
    "liquidity": pl.Float64,
    "quote_ts": pl.Datetime("us"),
    "snapshot_ts": pl.Datetime("us"),
    "best_bid": pl.Float64,
    "best_ask": pl.Float64,
    "window_end": pl.Datetime("us"),
    "spot_as_of": pl.Datetime("us"),
}


def live(**overrides: object) -> dict:
    """A perfect live snapshot: every component 1."""
    row = {
        "yes_price": 0.5,
        "volume": 1000.0,
        "liquidity": 500.0,
        "quote_ts": END + timedelta(seconds=30),
        "snapshot_ts": END,
        "best_bid": 0.49,
        "best_ask": 0.51,
        "window_end": END,
        "spot_as_of": END + timedelta(seconds=5),
    }
    row.update(overrides)
    return row


def score(*rows: dict) -> pl.DataFrame:
    return add_quality(pl.DataFrame(list(rows), schema=SCHEMA))


def components(**overrides: object) -> dict[str, int]:
    out = score(live(**overrides))
    return {name: out[name][0] for name in COMPONENTS}


def test_perfect_live_snapshot_scores_one():
    out = score(live())
    assert {name: out[name][0] for name in QUALITY_SCHEMA} == {
        "q_fields": 1,
        "q_fresh": 1,
        "q_spread": 1,
        "q_two_sided": 1,
        "q_spot": 1,
        "quality_score": 1.0,
    }
    assert {name: out.schema[name] for name in QUALITY_SCHEMA} == QUALITY_SCHEMA


def history(quote_age: timedelta) -> dict:
    """A history snapshot: no volume, liquidity or book, a quote ``quote_age`` old."""
    return live(volume=None, liquidity=None, best_bid=None, best_ask=None, quote_ts=END - quote_age)


def test_history_snapshot_scores_point_four_by_design():
    out = score(history(timedelta(minutes=1)))
    assert [out[name][0] for name in COMPONENTS] == [0, 1, 0, 0, 1]
    assert out["quality_score"][0] == pytest.approx(0.4)


def test_an_hourly_history_quote_is_not_fresh():
    # A 45-minute-old point (hourly history read with a raised staleness limit).
    out = score(history(timedelta(minutes=45)))
    assert out["q_fresh"][0] == 0
    assert out["quality_score"][0] == pytest.approx(0.2)


@pytest.mark.parametrize("missing", ["yes_price", "volume", "liquidity"])
def test_fields_needs_price_volume_and_liquidity(missing):
    assert components(**{missing: None})["q_fields"] == 0


@pytest.mark.parametrize(
    ("lag", "expected"),
    [
        (timedelta(minutes=5), 1),
        (timedelta(minutes=-5), 1),
        (timedelta(minutes=5, seconds=1), 0),
        (timedelta(minutes=-6), 0),
        (None, 0),
    ],
)
def test_fresh_quote_within_five_minutes(lag, expected):
    quote_ts = None if lag is None else END + lag
    assert components(quote_ts=quote_ts)["q_fresh"] == expected


@pytest.mark.parametrize(
    ("bid", "ask", "spread", "two_sided"),
    [
        (0.45, 0.55, 1, 1),  # exactly 0.10, although 0.55 − 0.45 > 0.1 in binary
        (0.44, 0.55, 0, 1),  # 0.11: two-sided but wide
        (0.50, 0.50, 0, 0),  # locked
        (0.52, 0.50, 0, 0),  # crossed
        (None, 0.50, 0, 0),
        (0.50, None, 0, 0),
    ],
)
def test_spread_and_two_sided(bid, ask, spread, two_sided):
    got = components(best_bid=bid, best_ask=ask)
    assert (got["q_spread"], got["q_two_sided"]) == (spread, two_sided)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (END, 1),
        (END + timedelta(minutes=2), 1),
        (END - timedelta(minutes=2), 1),
        (END + timedelta(minutes=2, seconds=1), 0),
        (None, 0),  # the window has no spot row
    ],
)
def test_spot_present_and_timely(as_of, expected):
    assert components(spot_as_of=as_of)["q_spot"] == expected


def test_score_is_the_mean_of_the_components():
    out = score(live(best_bid=None, spot_as_of=None), live(volume=None))
    assert out["quality_score"].to_list() == pytest.approx([0.4, 0.8])
