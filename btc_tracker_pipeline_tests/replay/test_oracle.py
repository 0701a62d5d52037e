"""The oracle: ``SimulatedWorld.fair_probabilities`` gives the fair value each served
quote was priced from, so an evaluation can tell a model that recovers it (skill) from
one that learned the world's noise or a leak."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from btc_tracker_pipeline.replay.shapes import epoch_s, from_epoch_s
from btc_tracker_pipeline.replay.simulated import NOISE_LOGIT, SimulatedWorld
from btc_tracker_pipeline.replay.simulation.et_calendar import ET

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 11, 15, 7)


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return SimulatedWorld(seed=7, days=5, now=NOW)


def rows_of(world: SimulatedWorld, per_market: int, step: int) -> tuple[list, list, np.ndarray]:
    """(market objects, their ids, path minutes [market, k]): every market listed by now,
    at ``per_market`` minutes ``step`` apart from its listing."""
    markets = [world._by_id[m["id"]] for m in world.gamma_markets()]
    minutes = np.array([[mk.listed_min + k * step for k in range(per_market)] for mk in markets])
    return markets, [mk.static.id for mk in markets], minutes


def times(world: SimulatedWorld, minutes: np.ndarray, seconds: int = 0) -> list[datetime]:
    return [world.start + timedelta(minutes=int(m), seconds=seconds) for m in minutes.ravel()]


def test_fair_probabilities_are_what_the_quotes_were_priced_from(world) -> None:
    markets, ids, minutes = rows_of(world, 12, 37)
    fair = world._quotes(markets, minutes)["fair"]
    # floor(at): any second of the minute gives that minute's fair value
    got = world.fair_probabilities(np.repeat(ids, minutes.shape[1]), times(world, minutes, 59))
    assert got.shape == (minutes.size,) and not np.isnan(got).any()
    np.testing.assert_array_equal(got, fair.ravel())
    assert {0.0, 1.0} <= set(got.tolist())  # settled ones too
    assert ((got > 0.05) & (got < 0.95)).sum() > 1000


def test_unknown_ids_and_times_before_the_path_or_the_listing_are_nan(world) -> None:
    market = world._by_id[world.gamma_markets()[-1]["id"]]
    listed = world.start + timedelta(minutes=market.listed_min)
    got = world.fair_probabilities(
        [market.static.id, "999", "not-an-id", market.static.id, market.static.id],
        [listed, listed, listed, world.start - timedelta(seconds=1), listed - timedelta(minutes=1)],
    )
    assert not math.isnan(got[0]) and np.isnan(got[1:]).all()
    assert world.fair_probabilities([], []).shape == (0,)
    with pytest.raises(ValueError, match="market ids"):
        world.fair_probabilities(["1"], [])


def test_the_oracle_does_not_wait_for_the_clock_nor_depend_on_other_rows(world) -> None:
    """An earlier world (its clock two days back) answers for markets listed after its
    clock exactly as the world that has seen them, one row at a time or all together."""
    _, ids, minutes = rows_of(world, 5, 101)
    at = times(world, minutes)
    ids = list(np.repeat(ids, minutes.shape[1]))
    earlier = SimulatedWorld(seed=7, days=3, now=NOW - timedelta(days=2))
    assert earlier.start == world.start
    expected = world.fair_probabilities(ids, at)
    np.testing.assert_array_equal(earlier.fair_probabilities(ids, at), expected)
    assert earlier.now() == NOW - timedelta(days=2)  # the clock did not move
    fresh = SimulatedWorld(seed=7, days=3, now=NOW - timedelta(days=2))
    for i in range(0, len(ids), 97):
        np.testing.assert_array_equal(fresh.fair_probabilities([ids[i]], [at[i]]), expected[i])
    # Aware datetimes and a datetime64 column (e.g. from a DataFrame) are the same times.
    aware = [t.replace(tzinfo=UTC).astimezone(ET) for t in at]
    np.testing.assert_array_equal(world.fair_probabilities(ids, aware), expected)
    np.testing.assert_array_equal(
        world.fair_probabilities(ids, np.array(at, dtype="datetime64[us]")), expected
    )


def served_mids(world: SimulatedWorld) -> tuple[list[str], list[datetime], np.ndarray]:
    """Every minute of the last 3 hours of prices-history of every open market's YES
    token: (market ids, times, mids)."""
    ids, at, mids = [], [], []
    now_s = int(epoch_s(world.now()))
    for market in world.gamma_markets():
        if market["closed"]:
            continue
        token = json.loads(market["clobTokenIds"])[0]
        for point in world.price_history(token, now_s - 3 * 3600, now_s, 1):
            ids.append(market["id"])
            at.append(from_epoch_s(point["t"]))
            mids.append(point["p"])
    return ids, at, np.array(mids)


def test_without_noise_the_served_mid_is_the_fair_value_up_to_the_tick(world) -> None:
    ids, at, mids = served_mids(world)
    assert len(mids) > 10_000
    fair = world.fair_probabilities(ids, at)
    # The mid of a book whose bid is the fair price rounded to the tick, less half the
    # spread: half a tick from the fair value (0.005 at the clipped bounds).
    assert np.abs(mids - fair).max() <= 0.005 + 1e-9
    # The live books too: within half the spread and a tick.
    for market in world.gamma_markets()[::5]:
        if market["closed"] or not market["acceptingOrders"]:
            continue
        book = world.book(json.loads(market["clobTokenIds"])[0])
        bid = float(book["bids"][-1]["price"]) if book["bids"] else 0.0
        ask = float(book["asks"][-1]["price"]) if book["asks"] else 1.0
        (fair_now,) = world.fair_probabilities([market["id"]], [world.now()])
        assert abs((bid + ask) / 2 - fair_now) <= (ask - bid) / 2 + 0.01


def test_with_noise_the_served_mid_is_not_the_fair_value() -> None:
    noisy = SimulatedWorld(seed=7, days=5, now=NOW, noise=NOISE_LOGIT)
    ids, at, mids = served_mids(noisy)
    fair = noisy.fair_probabilities(ids, at)
    off = np.abs(mids - fair)
    assert (off > 0.005 + 1e-9).mean() > 0.3
    assert off.max() > 0.02
    # The oracle is the same fair value whatever the noise: the world's path is.
    np.testing.assert_array_equal(
        fair, SimulatedWorld(seed=7, days=5, now=NOW).fair_probabilities(ids, at)
    )


def test_the_oracle_is_vectorised(world) -> None:
    _, ids, minutes = rows_of(world, 30, 11)
    ids = list(np.repeat(ids, minutes.shape[1]))
    at = times(world, minutes, 17)
    assert len(ids) >= 20_000
    world.fair_probabilities(ids[:10], at[:10])  # the catalogue is built already
    started = time.perf_counter()
    got = world.fair_probabilities(ids, at)
    assert time.perf_counter() - started < 2.0
    assert not np.isnan(got).any()
