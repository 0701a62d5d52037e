"""compute_indicators: hand-computed features, RSI, no look-ahead, batch independence,
and equality with the straightforward per-market loop."""

from __future__ import annotations

import inspect
import json
import math
import statistics
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from btc_tracker_pipeline.collect.snapshots import (
    SNAPSHOT_SCHEMA,
    Histories,
    history_snapshot_frame,
)
from btc_tracker_pipeline.collect.spot import (
    KLINE_SCHEMA,
    WINDOW_SCHEMA,
    klines_frame,
    window_stats,
)
from btc_tracker_pipeline.features.indicators import (
    INDICATOR_SCHEMA,
    KLINE_LOOKBACK,
    LOOKBACK_WINDOWS,
    compute_indicators,
    rsi_weights,
)
from btc_tracker_pipeline.features.structural import touch_history
from btc_tracker_pipeline.replay import simulated
from btc_tracker_pipeline.sources.models import Kline, PricePoint
from btc_tracker_pipeline_tests.features.reference_loop import (
    TRACKED_SCHEMA,
    Inputs,
    reference_indicators,
    synthetic_inputs,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1)
WINDOW = timedelta(minutes=15)


def start(i: int) -> datetime:
    return T0 + i * WINDOW


def snapshots(
    prices: dict[str, list[float | None]], volumes: dict[str, list[float | None]] | None = None
) -> pl.DataFrame:
    """Live snapshots for windows 0, 1, …; a None price means no snapshot that window."""
    rows = []
    for market, series in prices.items():
        for i, p in enumerate(series):
            if p is None:
                continue
            volume = (volumes or {}).get(market, [1000.0] * len(series))[i]
            rows.append(
                {
                    "window_start": start(i),
                    "window_end": start(i) + WINDOW,
                    "market_id": market,
                    "snapshot_ts": start(i) + WINDOW,
                    "quote_ts": start(i) + WINDOW,
                    "yes_price": p,
                    "best_bid": p - 0.01,
                    "best_ask": p + 0.01,
                    "volume": volume,
                    "liquidity": 100.0,
                    "source": "live",
                }
            )
    return pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA)


def tracked(markets: list[str], windows: range, expiry: datetime | None = None) -> pl.DataFrame:
    rows = [
        {
            "window_start": start(i),
            "window_end": start(i) + WINDOW,
            "market_id": m,
            "family": "other",
            "expiry": expiry,
        }
        for m in markets
        for i in windows
    ]
    return pl.DataFrame(rows, schema=TRACKED_SCHEMA)


NO_SPOT = pl.DataFrame(schema=WINDOW_SCHEMA)
NO_KLINES = pl.DataFrame(schema=KLINE_SCHEMA)


def run(prices, windows: range, volumes=None, expiry=None) -> pl.DataFrame:
    snaps = snapshots(prices, volumes)
    terms = tracked(list(prices), windows, expiry)
    return compute_indicators(snaps, terms, NO_SPOT, NO_KLINES, [start(i) for i in windows])


def plain_rsi(prices: list[float]) -> float:
    """Wilder RSI as defined: seed with the mean of 14 changes, then 14 updates."""
    changes = [prices[i] - prices[i - 1] for i in range(1, len(prices))]
    assert len(changes) == 28
    gains = [max(c, 0.0) for c in changes]
    losses = [max(-c, 0.0) for c in changes]
    avg_gain, avg_loss = sum(gains[:14]) / 14, sum(losses[:14]) / 14
    for i in range(14, 28):
        avg_gain = (13 * avg_gain + gains[i]) / 14
        avg_loss = (13 * avg_loss + losses[i]) / 14
    if avg_loss == 0:
        return 50.0 if avg_gain == 0 else 100.0
    return 100 - 100 / (1 + avg_gain / avg_loss)


# --- shape ------------------------------------------------------------------------------------


def test_output_schema_is_exactly_indicator_schema():
    out = run({"a": [0.5] * 5}, range(4, 5))
    assert out.schema == pl.Schema(INDICATOR_SCHEMA)
    empty = compute_indicators(
        pl.DataFrame(schema=SNAPSHOT_SCHEMA),
        pl.DataFrame(schema=TRACKED_SCHEMA),
        NO_SPOT,
        NO_KLINES,
        [T0],
    )
    assert empty.schema == pl.Schema(INDICATOR_SCHEMA) and empty.is_empty()


def test_rows_need_a_snapshot_and_a_tracked_row_and_are_sorted():
    snaps = snapshots({"b": [0.5, 0.5, 0.5], "a": [0.5, 0.5, None], "c": [0.4, 0.4, 0.4]})
    terms = tracked(["a", "b"], range(3))  # "c" is not tracked
    out = compute_indicators(snaps, terms, NO_SPOT, NO_KLINES, [start(1), start(2)])
    assert out.select("window_start", "market_id").rows() == [
        (start(1), "a"),
        (start(1), "b"),
        (start(2), "b"),
    ]


def test_quote_age_is_carried_from_the_snapshot():
    snaps = snapshots({"m": [0.5, 0.6]}).with_columns(
        pl.Series("quote_ts", [start(1) - timedelta(minutes=40), start(2) + timedelta(seconds=4)])
    )
    out = compute_indicators(snaps, tracked(["m"], range(2)), NO_SPOT, NO_KLINES, [T0, start(1)])
    # 40 minutes old (an hourly history point under a raised limit); 4 s after the end (live).
    assert out["quote_age_s"].to_list() == [2400.0, -4.0]
    assert out["q_fresh"].to_list() == [0, 1]


def test_lookback_constants():
    assert LOOKBACK_WINDOWS == 28  # p(W−28) … p(W): 29 windows, 28 before W
    assert timedelta(hours=24) <= KLINE_LOOKBACK == timedelta(days=8)
    weights = rsi_weights()
    assert len(weights) == 28 and sum(weights) == pytest.approx(1.0)


# --- hand-computed features --------------------------------------------------------------------

PRICES = [0.50, 0.52, 0.55, 0.53, 0.60, 0.58, 0.62, 0.65, 0.61, 0.70]
VOLUMES = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0, 160.0, 170.0, 180.0, 300.0]


def test_seed_features_by_hand():
    expiry = start(10) + timedelta(minutes=90)
    out = run({"a": PRICES}, range(9, 10), volumes={"a": VOLUMES}, expiry=expiry)
    row = out.row(0, named=True)
    assert row["market_probability"] == 0.70
    assert row["volume"] == 300.0 and row["liquidity"] == 100.0
    assert row["price_momentum_15m"] == pytest.approx(0.70 - 0.61)
    assert row["price_momentum_1h"] == pytest.approx(0.70 - 0.58)
    assert row["volume_spike"] == pytest.approx(300.0 / (sum(VOLUMES[1:9]) / 8) - 1)
    assert row["price_volatility"] == pytest.approx(statistics.stdev(PRICES[2:10]))
    assert row["rsi_14"] is None  # only 10 windows of history
    assert row["market_edge"] == pytest.approx(0.20)
    assert row["time_to_expiry_hours"] == pytest.approx(1.5)
    assert row["btc_spot_price"] is None and row["structural_probability"] is None


def test_gaps_make_lags_null_and_shrink_the_volatility_sample():
    prices = [*PRICES[:8], None, PRICES[9]]  # W−1 missing
    row = run({"a": prices}, range(9, 10)).row(0, named=True)
    assert row["price_momentum_15m"] is None
    assert row["price_momentum_1h"] == pytest.approx(0.70 - 0.58)
    assert row["price_volatility"] == pytest.approx(statistics.stdev([*PRICES[2:8], 0.70]))
    sparse = [0.5, None, None, None, None, 0.6, None, 0.62, None, 0.70]
    row = run({"a": sparse}, range(9, 10)).row(0, named=True)
    assert row["price_volatility"] is None  # 3 points of the last 8
    assert row["price_momentum_1h"] == pytest.approx(0.10)


def test_volume_spike_over_the_volumes_present():
    volumes = [None, None, 100.0, None, 300.0, None, None, None, None, 400.0]
    row = run({"a": PRICES}, range(9, 10), volumes={"a": volumes}).row(0, named=True)
    assert row["volume_spike"] == pytest.approx(400.0 / 200.0 - 1)
    none_before = [None] * 9 + [400.0]
    row = run({"a": PRICES}, range(9, 10), volumes={"a": none_before}).row(0, named=True)
    assert row["volume_spike"] is None
    zero = [0.0] * 9 + [400.0]
    assert run({"a": PRICES}, range(9, 10), volumes={"a": zero})["volume_spike"][0] is None
    missing_now = [*VOLUMES[:9], None]
    assert run({"a": PRICES}, range(9, 10), volumes={"a": missing_now})["volume_spike"][0] is None


def test_momentum_does_not_reach_into_another_market():
    out = run({"a": [0.1] * 5, "b": [None, None, None, None, 0.9]}, range(4, 5))
    b = out.filter(pl.col("market_id") == "b").row(0, named=True)
    assert b["price_momentum_15m"] is None and b["price_volatility"] is None


def test_time_to_expiry_negative_after_expiry():
    out = run({"a": [0.5] * 3}, range(2, 3), expiry=start(2))
    assert out["time_to_expiry_hours"][0] == pytest.approx(-0.25)


# --- RSI -------------------------------------------------------------------------------------


def test_rsi_matches_the_plain_wilder_recursion():
    rng = np.random.default_rng(5)
    prices = np.clip(0.5 + np.cumsum(rng.normal(0, 0.02, 60)), 0.01, 0.99).round(3).tolist()
    out = run({"a": prices}, range(28, 60))
    expected = [plain_rsi(prices[i - 28 : i + 1]) for i in range(28, 60)]
    assert out["rsi_14"].to_list() == pytest.approx(expected, abs=1e-9)


def test_rsi_null_when_any_of_the_29_prices_is_missing():
    prices: list[float | None] = [0.5 + 0.01 * (i % 3) for i in range(31)]
    prices[1] = None  # W−29 for window 30, W−28 for window 29
    out = run({"a": prices}, range(29, 31))
    assert out["rsi_14"][0] is None and out["rsi_14"][1] is not None


def test_rsi_edge_cases():
    rising = [0.1 + 0.01 * i for i in range(29)]
    falling = rising[::-1]
    flat = [0.5] * 29
    out = run({"rise": rising, "fall": falling, "flat": flat}, range(28, 29))
    got = dict(zip(out["market_id"], out["rsi_14"], strict=True))
    assert got == {"fall": 0.0, "flat": 50.0, "rise": 100.0}


def test_rsi_varies_on_a_random_walk():
    rng = np.random.default_rng(1)
    logit = np.cumsum(rng.normal(0, 0.1, 400))
    prices = (1 / (1 + np.exp(-logit))).round(3).tolist()
    rsi = run({"a": prices}, range(28, 400))["rsi_14"]
    assert rsi.null_count() == 0
    assert rsi.std() > 1
    assert rsi.min() >= 0 and rsi.max() <= 100


# --- no look-ahead, batch independence, bounded lookback ------------------------------------------


@pytest.fixture(scope="module")
def world() -> Inputs:
    return synthetic_inputs(n_markets=40, n_targets=24, seed=7)


def compute(
    inputs: Inputs, targets: list[datetime] | None = None, history: pl.DataFrame | None = None
) -> pl.DataFrame:
    return compute_indicators(
        inputs.snapshots,
        inputs.tracked,
        inputs.spot_windows,
        inputs.klines,
        inputs.target_starts if targets is None else targets,
        history,
    )


def until(inputs: Inputs, window: datetime) -> Inputs:
    """Everything timestamped at or after the window's end removed."""
    end = window + WINDOW
    return Inputs(
        snapshots=inputs.snapshots.filter(pl.col("window_start") <= window),
        tracked=inputs.tracked.filter(pl.col("window_start") <= window),
        spot_windows=inputs.spot_windows.filter(pl.col("window_start") <= window),
        klines=inputs.klines.filter(pl.col("open_time") < end),
        target_starts=[window],
    )


def scrambled_after(inputs: Inputs, window: datetime) -> Inputs:
    """Every later snapshot, kline and spot row replaced by nonsense."""
    end = window + WINDOW
    later = pl.col("window_start") > window
    return Inputs(
        snapshots=inputs.snapshots.with_columns(
            pl.when(later).then(1.0 - pl.col("yes_price")).otherwise(pl.col("yes_price")),
            pl.when(later).then(pl.col("volume") * 50).otherwise(pl.col("volume")),
        ),
        tracked=inputs.tracked,
        spot_windows=inputs.spot_windows.with_columns(
            pl.when(later).then(1.0).otherwise(pl.col("spot_price")).alias("spot_price")
        ),
        klines=inputs.klines.with_columns(
            pl.when(pl.col("open_time") >= end).then(pl.col(c) * 3).otherwise(pl.col(c))
            for c in ("open", "high", "low", "close")
        ),
        target_starts=[window],
    )


def test_no_look_ahead_first_window(world):
    full = compute(world)
    first = world.target_starts[0]
    expected = full.filter(pl.col("window_start") == first)
    assert expected.height > 30
    assert compute(until(world, first)).equals(expected)
    assert compute(world, [first]).equals(expected)
    assert compute(scrambled_after(world, first)).equals(expected)


def test_rows_do_not_depend_on_the_batch(world):
    full = compute(world)
    for window in (world.target_starts[7], world.target_starts[-1]):
        alone = compute(world, [window])
        assert alone.equals(full.filter(pl.col("window_start") == window))
        assert compute(until(world, window)).equals(alone)
    middle = world.target_starts[5:15]
    assert compute(world, middle).equals(full.filter(pl.col("window_start").is_in(middle)))


def test_input_row_order_does_not_matter(world):
    expected = compute(world)
    for seed in (1, 2):
        shuffled = Inputs(
            snapshots=world.snapshots.sample(fraction=1.0, shuffle=True, seed=seed),
            tracked=world.tracked.sample(fraction=1.0, shuffle=True, seed=seed),
            spot_windows=world.spot_windows.sample(fraction=1.0, shuffle=True, seed=seed),
            klines=world.klines.sample(fraction=1.0, shuffle=True, seed=seed),
            target_starts=world.target_starts[::-1],
        )
        assert compute(shuffled).equals(expected)
    ordered = Inputs(
        snapshots=world.snapshots.sort("window_start", "market_id"),
        tracked=world.tracked.sort("window_start", "market_id"),
        spot_windows=world.spot_windows,
        klines=world.klines,
        target_starts=world.target_starts,
    )
    assert compute(ordered).equals(expected)


def test_the_declared_lookback_is_enough(world):
    last = world.target_starts[-1]
    trimmed = until(world, last)
    trimmed.snapshots = trimmed.snapshots.filter(
        pl.col("window_start") >= last - LOOKBACK_WINDOWS * WINDOW
    )
    cutoff = last - KLINE_LOOKBACK
    trimmed.klines = trimmed.klines.filter(pl.col("open_time") >= cutoff)
    # Barriers that started before the cutoff read their older extremes from a touch
    # history instead of the 1m bars.
    barriers = world.tracked.filter(pl.col("family").is_in(["reach", "dip"]))
    starts = barriers["reference_start"].fill_null(barriers["start_date"])
    assert (starts < cutoff).any()
    history = touch_history(world.klines, starts, cutoff)
    expected = compute(world, [last])
    assert compute(trimmed, history=history).equals(expected)


# --- against the straightforward loop -------------------------------------------------------------


def test_vectorized_equals_the_per_market_loop():
    inputs = synthetic_inputs(n_markets=64, n_targets=80, seed=3)
    # A few tracked rows missing too: those rows must be absent from both.
    inputs.tracked = inputs.tracked.filter(pl.int_range(pl.len()) % 97 != 0)
    args = (
        inputs.snapshots,
        inputs.tracked,
        inputs.spot_windows,
        inputs.klines,
        inputs.target_starts,
    )
    fast = compute_indicators(*args)
    slow = reference_indicators(*args)
    assert 4_500 <= fast.height <= 5_500
    assert_frame_equal(fast, slow, rel_tol=1e-9, abs_tol=1e-12)
    # Every family and feature is exercised, not vacuously null.
    assert fast["family"].n_unique() == 8
    for column, dtype in INDICATOR_SCHEMA.items():
        if dtype == pl.Float64():
            assert fast[column].drop_nulls().len() > 0, column
    assert fast["barrier_touched"].drop_nulls().n_unique() == 2
    assert not any(math.isnan(x) for x in fast["structural_probability"].drop_nulls())


# --- the structural probability knows what the market price knew --------------------------------

EPOCH = datetime(1970, 1, 1)
DAY = timedelta(days=1)


def efficient_world(monkeypatch, **kwargs) -> simulated.SimulatedWorld:
    """A simulated world whose quotes are its fair values (no bias, no noise)."""
    if "noise" in inspect.signature(simulated.SimulatedWorld).parameters:
        return simulated.SimulatedWorld(noise=0.0, **kwargs)
    monkeypatch.setattr(simulated, "NOISE_LOGIT", 0.0)
    return simulated.SimulatedWorld(**kwargs)


def hourly_history_rows(world: simulated.SimulatedWorld) -> tuple[Inputs, pl.DataFrame]:
    """Indicator inputs for the history snapshots of every closed hourly up/down market
    (after the path's first day, for the volatility) 45, 30 and 15 minutes before its
    end, built by the collection code from the world's answers (1-minute
    prices-history, 1m klines); and each (window_start, market_id)'s outcome ``up``."""
    ms = int((world.start - EPOCH).total_seconds() * 1000)
    candles: list[list] = []
    while page := world.klines("1m", ms, None, 1000):
        candles += page
        ms = int(page[-1][0]) + 60_000
    klines = klines_frame(
        [
            Kline(EPOCH + timedelta(milliseconds=int(c[0])), *(float(x) for x in c[1:6]))
            for c in candles
        ]
    )
    histories, tracked = Histories(), []
    for market in world.gamma_markets():
        family, local = divmod(int(market["id"]), 10**9)  # ids: simulated.py docstring
        if family != 2 or not market["closed"]:  # hourly up/down, resolved
            continue
        hour = EPOCH + timedelta(hours=local)
        if hour < world.start + DAY:
            continue
        token = json.loads(market["clobTokenIds"])[0]
        first_s = int((hour - EPOCH).total_seconds())
        points = world.price_history(token, first_s - 3600, first_s + 3600, 1)
        histories.points[token] = [PricePoint(p["t"], p["p"]) for p in points]
        up = world.resolution_of(market["id"]) == "Up"
        for k in range(3):
            tracked.append(
                {
                    "window_start": hour + k * WINDOW,
                    "window_end": hour + (k + 1) * WINDOW,
                    "market_id": market["id"],
                    "yes_token_id": token,
                    "family": "updown_1h",
                    "reference_start": hour,
                    "expiry": hour + timedelta(hours=1),
                    "start_date": hour - DAY,
                    "up": float(up),
                }
            )
    frame = pl.DataFrame(tracked)
    starts = sorted(set(frame["window_start"]))
    snapshots = pl.concat(
        history_snapshot_frame(rows, histories, ws, ws + WINDOW)
        for (ws,), rows in frame.group_by("window_start")
    )
    inputs = Inputs(
        snapshots=snapshots,
        tracked=frame.select([c for c in TRACKED_SCHEMA if c in frame.columns]).with_columns(
            pl.lit(None, dtype=pl.String).alias("direction"),
            pl.lit(None, dtype=pl.Float64).alias("strike"),
            pl.lit(None, dtype=pl.Float64).alias("strike_high"),
        ),
        spot_windows=pl.concat(window_stats(klines, ws, ws + WINDOW) for ws in starts),
        klines=klines,
        target_starts=starts,
    )
    return inputs, frame.select("window_start", "market_id", "up")


def test_history_structural_probability_knows_only_what_the_quote_knew(monkeypatch):
    """On an efficient world (quote = fair value of the BTC path at the quote's minute),
    hourly up/down history snapshots 45/30/15 minutes before the end: computed as of
    the quote (typically ~47 s before the window end), the structural probability uses
    the spot and τ the market price used, so it tracks the quote and has no Brier edge
    on it. Computed as of the window end (quote_ts dropped: the former rule), it knows
    up to a minute more of BTC and beats the market, an edge no trader had."""
    world = efficient_world(monkeypatch, seed=7, days=15, now=datetime(2026, 3, 1))
    inputs, outcomes = hourly_history_rows(world)
    args = (inputs.tracked, inputs.spot_windows, inputs.klines, inputs.target_starts)
    key = ["window_start", "market_id"]
    quote_minute = inputs.snapshots.select(
        *key, pl.col("quote_ts").dt.truncate("1m").alias("minute")
    )

    def indicators(snapshots: pl.DataFrame) -> pl.DataFrame:
        out = compute_indicators(snapshots, *args)
        return out.join(outcomes, on=key).join(quote_minute, on=key).sort(key)

    as_of = indicators(inputs.snapshots)
    no_quote_ts = pl.lit(None, dtype=pl.Datetime("us")).alias("quote_ts")
    window_end = indicators(inputs.snapshots.with_columns(no_quote_ts))
    assert as_of.height == window_end.height > 900
    assert as_of.select(key).equals(window_end.select(key))
    assert 30 < as_of["quote_age_s"].mean() < 60  # 1-minute points, mostly a minute old
    assert (as_of["quote_age_s"] > 0).mean() > 0.7
    market, up = as_of["market_probability"].to_numpy(), as_of["up"].to_numpy()

    def brier(p: np.ndarray) -> float:
        return float(np.mean((p - up) ** 2))

    fresh = as_of["structural_probability"].to_numpy()
    leaky = window_end["structural_probability"].to_numpy()
    # The leak is real in this world: the window-end value beats the market's quote.
    assert 1 - brier(leaky) / brier(market) > 0.01
    # As of the quote: no edge over the market on the same information (the realised
    # volatility overshoots the world's σ a little, so if anything it is worse).
    assert 1 - brier(fresh) / brier(market) < 0.002
    # And it follows the quote much more closely.
    gap_fresh, gap_leaky = np.abs(fresh - market).mean(), np.abs(leaky - market).mean()
    assert gap_fresh < 0.75 * gap_leaky
    assert 1 - np.corrcoef(fresh, market)[0, 1] < 0.3 * (1 - np.corrcoef(leaky, market)[0, 1])
    # With the world's own σ, the spot and τ as of the quote reproduce the quote to the
    # tick (mids are on a 0.005 grid); the window-end ones are off by far more.
    at = as_of.select(pl.min_horizontal("minute", "window_end")).to_series()
    assert (at < as_of["window_end"]).mean() > 0.7
    expiry = as_of["window_start"].dt.truncate("1h") + timedelta(hours=1)

    def world_fair(log_moneyness: pl.Series, at: pl.Series) -> np.ndarray:
        tau = (expiry - at).dt.total_seconds().to_numpy() / (365 * 86_400)
        z = log_moneyness.to_numpy() / (world.sigma_annual * np.sqrt(tau))
        return np.array([0.5 * math.erfc(-x / math.sqrt(2)) for x in z])

    assert np.abs(world_fair(as_of["log_moneyness"], at) - market).max() <= 0.005 + 1e-9
    end_error = np.abs(world_fair(window_end["log_moneyness"], as_of["window_end"]) - market)
    assert end_error.mean() > 0.02 and end_error.max() > 0.2
