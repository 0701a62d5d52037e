"""Structural probabilities, realised volatility and barrier touches on hand-built inputs."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.collect.spot import KLINE_SCHEMA
from btc_tracker_pipeline.features.structural import (
    STRUCTURAL_SCHEMA,
    barrier_extremes,
    normal_cdf,
    realized_vol,
    reference_prices,
    structural_columns,
    structural_probability,
    touch_history,
)

pytestmark = pytest.mark.unit

END = datetime(2026, 3, 1, 12, 0)
MINUTE = timedelta(minutes=1)
YEAR = timedelta(days=365)


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def cdf(values: list[float | None]) -> list[float | None]:
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
    return frame.select(normal_cdf(pl.col("x"))).to_series().to_list()


def bars(rows: list[tuple[datetime, float, float, float, float]]) -> pl.DataFrame:
    """1m klines from (open_time, open, high, low, close)."""
    return pl.DataFrame(
        {
            "window_start": [t for t, *_ in rows],
            "open_time": [t for t, *_ in rows],
            "open": [r[1] for r in rows],
            "high": [r[2] for r in rows],
            "low": [r[3] for r in rows],
            "close": [r[4] for r in rows],
            "volume": [1.0] * len(rows),
        },
        schema=KLINE_SCHEMA,
    )


def flat_bars(start: datetime, end: datetime, price: float, wick: float = 0.0) -> pl.DataFrame:
    n = int((end - start) / MINUTE)
    up, down = price * math.exp(wick), price * math.exp(-wick)
    return bars([(start + i * MINUTE, price, up, down, price) for i in range(n)])


def case(**overrides: object) -> dict:
    """One row for ``structural_probability`` (defaults: an 'above' market, S = K = 100)."""
    row: dict = {
        "family": "above",
        "window_end": END,
        "expiry": END + YEAR,
        "reference_start": None,
        "btc_spot_price": 100.0,
        "strike": 100.0,
        "strike_high": None,
        "reference_price": None,
        "realized_vol": 0.2,
        "touch_high": None,
        "touch_low": None,
        "touch_elapsed": True,
    }
    row.update(overrides)
    return row


def probability(*rows: dict) -> pl.DataFrame:
    schema = {
        "family": pl.String,
        "window_end": pl.Datetime("us"),
        "expiry": pl.Datetime("us"),
        "reference_start": pl.Datetime("us"),
        "btc_spot_price": pl.Float64,
        "strike": pl.Float64,
        "strike_high": pl.Float64,
        "reference_price": pl.Float64,
        "realized_vol": pl.Float64,
        "touch_high": pl.Float64,
        "touch_low": pl.Float64,
        "touch_elapsed": pl.Boolean,
    }
    return structural_probability(pl.DataFrame(list(rows), schema=schema))


def p_of(**overrides: object) -> float | None:
    return probability(case(**overrides))["structural_probability"][0]


# --- Φ -------------------------------------------------------------------------------


def test_normal_cdf_matches_erfc_on_a_grid():
    grid = np.linspace(-40.0, 40.0, 16_001).tolist()
    got = np.array(cdf(grid))
    expected = np.array([phi(x) for x in grid])
    assert np.max(np.abs(got - expected)) < 1e-12  # the brief asks for < 1e-7


def test_normal_cdf_known_values_and_edges():
    got = cdf([0.0, 1.0, -1.0, 1.959963984540054, float("inf"), float("-inf"), None])
    assert got[0] == pytest.approx(0.5, abs=1e-15)
    assert got[1] == pytest.approx(0.8413447460685429, abs=1e-13)
    assert got[2] == pytest.approx(0.15865525393145707, abs=1e-13)
    assert got[3] == pytest.approx(0.975, abs=1e-13)
    assert got[4:] == [1.0, 0.0, None]


# --- probabilities by family -----------------------------------------------------------


def test_above_is_n_d2_textbook_value():
    # S = K = 100, σ = 0.2, τ = 1: d2 = −σ√τ/2 = −0.1, N(−0.1) = 0.460172162722971.
    assert p_of() == pytest.approx(0.460172162722971, abs=1e-12)
    assert p_of(family="below") == pytest.approx(1 - 0.460172162722971, abs=1e-12)


def test_above_out_of_the_money_against_the_formula():
    s, k, sigma, tau = 64_000.0, 66_000.0, 0.55, 2 / 365
    d2 = (math.log(s / k) - sigma**2 * tau / 2) / (sigma * math.sqrt(tau))
    got = p_of(btc_spot_price=s, strike=k, realized_vol=sigma, expiry=END + tau * YEAR)
    assert got == pytest.approx(phi(d2), abs=1e-9)


def test_range_is_difference_of_two_digitals():
    s, lo, hi, sigma, tau = 100.0, 95.0, 105.0, 0.5, 0.1

    def d2(k: float) -> float:
        return (math.log(s / k) - sigma**2 * tau / 2) / (sigma * math.sqrt(tau))

    got = p_of(
        family="range", strike=lo, strike_high=hi, realized_vol=sigma, expiry=END + tau * YEAR
    )
    assert got == pytest.approx(phi(d2(lo)) - phi(d2(hi)), abs=1e-9)
    assert p_of(family="range", strike=lo, strike_high=None) is None


def test_reach_and_dip_use_the_reflection_principle():
    sigma, tau = 0.5, 30 / 365
    sd = sigma * math.sqrt(tau)
    reach = p_of(
        family="reach", strike=110.0, realized_vol=sigma, expiry=END + tau * YEAR, touch_high=105.0
    )
    assert reach == pytest.approx(2 * (1 - phi(math.log(110 / 100) / sd)), abs=1e-9)
    assert 0.45 < reach < 0.55  # about twice the digital (docs/modeling.md §3.1)
    dip = p_of(
        family="dip", strike=90.0, realized_vol=sigma, expiry=END + tau * YEAR, touch_low=95.0
    )
    assert dip == pytest.approx(2 * phi(math.log(90 / 100) / sd), abs=1e-9)


def test_reflection_is_capped_at_one_when_spot_is_past_an_untouched_barrier():
    # The ticker spot can be past K while no 1m high reached it yet: 2Φ(>0) > 1 → 1.
    assert p_of(family="reach", strike=99.0, touch_high=98.0) == 1.0


def test_barrier_touched_means_probability_one():
    frame = probability(
        case(family="reach", strike=110.0, touch_high=110.0, touch_low=90.0),
        case(family="dip", strike=90.0, touch_high=110.0, touch_low=89.0),
        case(family="dip", strike=90.0, touch_low=None),  # no klines: unknown
    )
    assert frame["barrier_touched"].to_list() == [True, True, None]
    assert frame["structural_probability"].to_list() == [1.0, 1.0, None]


def test_updown_before_start_is_one_half_after_start_phi():
    start = END + timedelta(minutes=15)
    assert (
        p_of(family="updown_15m", reference_start=start, expiry=start + timedelta(minutes=15))
        == 0.5
    )
    sigma, left = 0.6, timedelta(minutes=10)
    got = p_of(
        family="updown_15m",
        reference_start=END - timedelta(minutes=5),
        expiry=END + left,
        btc_spot_price=101.0,
        reference_price=100.0,
        realized_vol=sigma,
    )
    tau = left / YEAR
    assert got == pytest.approx(phi(math.log(1.01) / (sigma * math.sqrt(tau))), abs=1e-9)


def test_decided_outcomes_when_expired():
    past = END - timedelta(minutes=1)
    assert p_of(expiry=past, btc_spot_price=101.0) == 1.0
    assert p_of(expiry=END, btc_spot_price=99.0) == 0.0  # τ = 0 counts as decided
    assert p_of(expiry=past, btc_spot_price=100.0) == 0.0  # "above" is strict
    assert p_of(family="below", expiry=past, btc_spot_price=99.0) == 1.0
    assert p_of(family="range", strike=95.0, strike_high=105.0, expiry=past) == 1.0
    assert (
        p_of(family="range", strike=95.0, strike_high=105.0, expiry=past, btc_spot_price=106.0)
        == 0.0
    )
    assert p_of(family="reach", strike=110.0, touch_high=105.0, expiry=past) == 0.0
    assert p_of(family="reach", strike=110.0, touch_high=111.0, expiry=past) == 1.0
    for spot, expected in ((100.0, 1.0), (99.99, 0.0)):
        got = p_of(
            family="updown_1h",
            reference_start=END - timedelta(hours=1),
            expiry=past,
            btc_spot_price=spot,
            reference_price=100.0,
        )
        assert got == expected


def test_unknown_family_or_inputs_give_null():
    assert p_of(family="other") is None
    assert p_of(realized_vol=None) is None
    assert p_of(realized_vol=0.0) is None
    assert p_of(expiry=None) is None
    assert p_of(btc_spot_price=None) is None
    assert p_of(family="updown_1h", reference_start=END - timedelta(minutes=30)) is None


def test_log_moneyness():
    frame = probability(
        case(btc_spot_price=110.0, strike=100.0),
        case(
            family="updown_1h",
            reference_start=END - timedelta(hours=1),
            reference_price=100.0,
            btc_spot_price=90.0,
        ),
        case(family="other"),
    )
    got = frame["log_moneyness"].to_list()
    assert got[0] == pytest.approx(math.log(1.1))
    assert got[1] == pytest.approx(math.log(0.9))
    assert got[2] is None


# --- realised volatility ------------------------------------------------------------------


def gbm_bars(sigma: float, minutes: int, substeps: int, seed: int) -> pl.DataFrame:
    """1m OHLC bars of a driftless GBM sampled ``substeps`` times per minute."""
    rng = np.random.default_rng(seed)
    step = sigma / math.sqrt(525_600 * substeps)
    path = np.cumsum(rng.normal(0.0, step, minutes * substeps))
    log_prices = np.log(60_000.0) + np.concatenate([[0.0], path]).reshape(-1)
    rows = []
    for i in range(minutes):
        segment = log_prices[i * substeps : (i + 1) * substeps + 1]
        o, c = math.exp(segment[0]), math.exp(segment[-1])
        rows.append(
            (END - (minutes - i) * MINUTE, o, math.exp(segment.max()), math.exp(segment.min()), c)
        )
    return bars(rows)


def test_garman_klass_and_parkinson_recover_a_known_sigma():
    klines = gbm_bars(0.6, 1440, 200, seed=11)
    gk = realized_vol(klines, [END])["realized_vol"][0]
    parkinson = realized_vol(klines, [END], estimator="parkinson")["realized_vol"][0]
    assert gk == pytest.approx(0.6, rel=0.15)
    assert parkinson == pytest.approx(0.6, rel=0.15)


def test_realized_vol_weights_halve_every_six_hours():
    # Older 12 h: bars with ln(H/L) = 0.002; newer 12 h: 0.001; open = close.
    rows = []
    for age in range(1440):
        hl = 0.002 if age >= 720 else 0.001
        rows.append((END - (age + 1) * MINUTE, 100.0, 100.0 * math.exp(hl), 100.0, 100.0))
    got = realized_vol(bars(rows), [END])["realized_vol"][0]
    num = den = 0.0
    for age in range(1440):
        hl = 0.002 if age >= 720 else 0.001
        weight = 0.5 ** (age / 360)
        num += weight * 0.5 * hl * hl
        den += weight
    assert got == pytest.approx(math.sqrt(num / den * 525_600), rel=1e-12)


def test_realized_vol_uses_only_the_24h_before_the_end():
    base = flat_bars(END - timedelta(hours=24), END, 100.0, wick=0.001)
    expected = math.sqrt(0.5 * 0.002**2 * 525_600)
    crazy = bars(
        [(END, 100.0, 200.0, 50.0, 100.0), (END - timedelta(hours=25), 100.0, 200.0, 50.0, 100.0)]
    )
    got = realized_vol(pl.concat([base, crazy]), [END])["realized_vol"][0]
    assert got == pytest.approx(expected, rel=1e-12)


def test_realized_vol_needs_sixty_bars():
    klines = flat_bars(END - timedelta(minutes=59), END, 100.0, wick=0.001)
    assert realized_vol(klines, [END])["realized_vol"].to_list() == [None]
    more = flat_bars(END - timedelta(minutes=60), END, 100.0, wick=0.001)
    assert realized_vol(more, [END])["realized_vol"][0] is not None
    assert realized_vol(more.clear(), [END])["realized_vol"].to_list() == [None]


def test_realized_vol_of_one_end_does_not_depend_on_the_others():
    klines = gbm_bars(0.6, 3000, 5, seed=3)
    ends = [END - timedelta(minutes=15 * i) for i in range(40)]
    together = realized_vol(klines, ends)["realized_vol"].to_list()
    alone = [realized_vol(klines, [e])["realized_vol"][0] for e in ends]
    assert together == alone


# --- barrier touches and reference prices ----------------------------------------------------


def test_barrier_extremes_count_from_the_touch_start_however_far_back():
    klines = pl.concat(
        [
            flat_bars(END - timedelta(days=10), END + timedelta(hours=1), 100.0),
            bars(
                [
                    # 9 days back: counts from a monthly start, not without any start
                    (END - timedelta(days=9), 100.0, 150.0, 50.0, 100.0),
                    (END - timedelta(hours=2), 100.0, 120.0, 80.0, 100.0),
                    (END, 100.0, 130.0, 70.0, 100.0),  # opens at the end: not yet known
                ]
            ),
        ]
    ).unique("open_time", keep="last")
    starts = pl.Series(
        [END - timedelta(days=30), END - timedelta(hours=1), END, None], dtype=pl.Datetime("us")
    )
    ends = pl.Series([END] * 4, dtype=pl.Datetime("us"))
    got = barrier_extremes(klines, starts, ends)
    assert got["touch_high"].to_list() == [150.0, 100.0, None, 120.0]
    assert got["touch_low"].to_list() == [50.0, 100.0, None, 80.0]
    assert got["touch_elapsed"].to_list() == [True, True, False, True]


def test_touch_history_remembers_a_touch_older_than_the_klines_passed():
    start = END - timedelta(days=20)
    old = pl.concat(
        [
            flat_bars(start, END, 100.0),
            bars([(END - timedelta(days=15), 100.0, 150.0, 50.0, 100.0)]),
        ]
    ).unique("open_time", keep="last")
    cutoff = END - timedelta(days=8)
    recent = old.filter(pl.col("open_time") >= cutoff)
    starts = pl.Series([start, start, END - timedelta(days=1)], dtype=pl.Datetime("us"))
    ends = pl.Series([END, cutoff - timedelta(days=1), END], dtype=pl.Datetime("us"))
    history = touch_history(old, starts, cutoff)
    assert history.height == 1 and history["history_high"].item() == 150.0
    with_history = barrier_extremes(recent, starts, ends, history)
    # row 0 remembers the touch 15 days back; row 1 ends before the history's cutoff
    # (the history does not apply); row 2 starts after the touch
    assert with_history["touch_high"].to_list() == [150.0, None, 100.0]
    assert with_history["touch_low"].to_list() == [50.0, None, 100.0]
    assert barrier_extremes(recent, starts, ends)["touch_high"].to_list() == [100.0, None, 100.0]


def test_reference_price_is_the_open_of_the_start_minute_once_opened():
    klines = bars(
        [
            (END - timedelta(minutes=1), 99.0, 99.0, 99.0, 101.0),
            (END, 101.5, 102.0, 101.0, 101.7),
        ]
    )
    refs = pl.Series([END, END, END - timedelta(minutes=1)], dtype=pl.Datetime("us"))
    ends = pl.Series([END, END + timedelta(minutes=15), END], dtype=pl.Datetime("us"))
    assert reference_prices(klines, refs, ends).to_list() == [None, 101.5, 99.0]


def test_structural_columns_end_to_end():
    klines = pl.concat(
        [
            flat_bars(END - timedelta(days=2), END, 100.0, wick=0.0005),
            bars([(END - timedelta(hours=3), 100.0, 112.0, 99.0, 100.0)]),
        ]
    ).unique("open_time", keep="last")
    frame = pl.DataFrame(
        {
            "window_end": [END, END, END, END],
            "family": ["reach", "reach", "updown_15m", "updown_15m"],
            "strike": [110.0, 110.0, None, None],
            "strike_high": [None] * 4,
            "reference_start": [None, END - timedelta(hours=1), END, END - timedelta(minutes=10)],
            "start_date": [END - timedelta(days=5)] * 4,
            "expiry": [END + timedelta(days=1)] * 2 + [END + timedelta(minutes=15)] * 2,
            "btc_spot_price": [100.0] * 4,
        },
        schema_overrides={"strike": pl.Float64, "strike_high": pl.Float64},
    )
    out = structural_columns(frame, klines)
    assert set(STRUCTURAL_SCHEMA) <= set(out.columns)
    assert out["barrier_touched"].to_list() == [True, False, None, None]
    assert out["structural_probability"][0] == 1.0
    assert 0.0 < out["structural_probability"][1] < 1.0
    assert out["reference_price"].to_list() == [None, None, None, 100.0]
    assert out["structural_probability"][2] == 0.5
    assert out["realized_vol"].to_list() == [realized_vol(klines, [END])["realized_vol"][0]] * 4


# --- as of the quote ---------------------------------------------------------------------
# A history quote is the newest prices-history point before the window end, up to a
# minute (or more) old: the structural probability it is compared with must use the
# spot and τ as of that quote, not the minute of BTC after it.


def jump_klines() -> pl.DataFrame:
    """Two days flat at 100 (wide wicks: σ ≈ 3), 101 from END − 10 min, and a last
    minute (opening at END − 1 min) that jumps to 105: only a window-end spot sees 105."""
    return pl.concat(
        [
            flat_bars(END - timedelta(days=2), END - timedelta(minutes=10), 100.0, wick=0.003),
            flat_bars(END - timedelta(minutes=10), END - MINUTE, 101.0, wick=0.003),
            bars([(END - MINUTE, 101.0, 105.0, 101.0, 105.0)]),
        ]
    )


def structural_frame(*rows: dict) -> pl.DataFrame:
    """``structural_columns`` input rows (defaults: an hourly up/down window that
    started 30 minutes before END, window-end spot 105, no quote time)."""
    defaults = {
        "window_end": END,
        "family": "updown_1h",
        "strike": None,
        "strike_high": None,
        "reference_start": END - timedelta(minutes=30),
        "start_date": END - timedelta(days=1),
        "expiry": END + timedelta(minutes=30),
        "btc_spot_price": 105.0,
        "quote_ts": None,
    }
    return pl.DataFrame(
        [{**defaults, **row} for row in rows],
        schema={
            "window_end": pl.Datetime("us"),
            "family": pl.String,
            "strike": pl.Float64,
            "strike_high": pl.Float64,
            "reference_start": pl.Datetime("us"),
            "start_date": pl.Datetime("us"),
            "expiry": pl.Datetime("us"),
            "btc_spot_price": pl.Float64,
            "quote_ts": pl.Datetime("us"),
        },
    )


def structural_rows(*rows: dict, klines: pl.DataFrame | None = None) -> pl.DataFrame:
    return structural_columns(structural_frame(*rows), jump_klines() if klines is None else klines)


def test_a_stale_history_quote_gets_the_spot_and_tau_of_its_minute():
    quote = END - timedelta(seconds=58)  # a 1-minute history point at 11:59:02
    out = structural_rows(
        {"quote_ts": quote},
        {"quote_ts": quote, "family": "above", "strike": 100.5, "reference_start": None},
    )
    sigma = out["realized_vol"][0]
    assert sigma is not None and out["realized_vol"].to_list() == [sigma] * 2
    tau = timedelta(minutes=31) / YEAR  # from 11:59, not from 12:00
    # S = 101, the close of the kline that closed at 11:59 (not the jump to 105).
    assert out["reference_price"][0] == 100.0
    assert out["log_moneyness"].to_list() == pytest.approx([math.log(1.01), math.log(101 / 100.5)])
    updown = phi(math.log(1.01) / (sigma * math.sqrt(tau)))
    d2 = (math.log(101 / 100.5) - sigma**2 * tau / 2) / (sigma * math.sqrt(tau))
    assert out["structural_probability"].to_list() == pytest.approx([updown, phi(d2)], abs=1e-9)
    # The window-end spot (105) would give a very different probability.
    end_tau = timedelta(minutes=30) / YEAR
    assert phi(math.log(1.05) / (sigma * math.sqrt(end_tau))) - updown > 0.25
    # btc_spot_price, a seed feature, stays the window's spot.
    assert out["btc_spot_price"].to_list() == [105.0, 105.0]


def test_a_quote_without_its_kline_falls_back_to_the_window_spot():
    # A Binance outage: no kline closed at the quote's minute (11:59) but τ is still
    # from 11:59.
    gap = jump_klines().filter(pl.col("open_time") != END - 2 * MINUTE)
    out = structural_rows({"quote_ts": END - timedelta(seconds=58)}, klines=gap)
    assert out["log_moneyness"][0] == pytest.approx(math.log(1.05))
    sd = out["realized_vol"][0] * math.sqrt(timedelta(minutes=31) / YEAR)
    assert out["structural_probability"][0] == pytest.approx(phi(math.log(1.05) / sd), abs=1e-9)


def test_b_live_rows_are_as_of_the_window_end():
    """Live quotes (fetched just after the end), quotes exactly at the end and rows
    without a quote keep the window-end values; only the stale history row moves."""
    without_quote_ts = structural_columns(structural_frame({}).drop("quote_ts"), jump_klines())
    window_end = without_quote_ts["structural_probability"][0]
    assert without_quote_ts["log_moneyness"][0] == pytest.approx(math.log(1.05))
    out = structural_rows(
        {"quote_ts": END + timedelta(seconds=4)},  # live
        {"quote_ts": END},  # a history point exactly at the end
        {"quote_ts": None},
        {"quote_ts": END - timedelta(seconds=58)},  # stale history
    )
    got = out["structural_probability"].to_list()
    assert got[:3] == [window_end] * 3
    assert got[3] < window_end - 0.25


def test_c_an_updown_window_not_started_at_the_quote_is_one_half():
    # Reference start 11:58: a quote at 11:58:59 is as of 11:58 (not started); one at
    # 11:59:01 is as of 11:59, after the 11:58 bar opened (its open is the reference).
    start = END - timedelta(minutes=2)
    out = structural_rows(
        {"reference_start": start, "quote_ts": start + timedelta(seconds=59)},
        {"reference_start": start, "quote_ts": start + timedelta(seconds=61)},
        {"reference_start": start, "quote_ts": END + timedelta(seconds=3)},  # live
    )
    assert out["reference_price"].to_list() == [None, 101.0, 101.0]
    assert out["structural_probability"][0] == 0.5
    assert out["structural_probability"][1] == pytest.approx(0.5, abs=1e-12)  # S = S_ref
    assert out["structural_probability"][2] > 0.9  # the jump to 105 after the start
    refs = pl.Series([start] * 2, dtype=pl.Datetime("us"))
    ends = pl.Series([END] * 2, dtype=pl.Datetime("us"))
    as_of = pl.Series([start, END - MINUTE], dtype=pl.Datetime("us"))
    assert reference_prices(jump_klines(), refs, ends, as_of).to_list() == [None, 101.0]
