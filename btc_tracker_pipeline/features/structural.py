"""Structural probabilities: what each market's contract is worth under a driftless GBM.

Pure functions over polars frames and numpy arrays (docs/modeling.md §3). Every
quantity for a window W uses only 1-minute klines with ``open_time < W.end``, and
every spot-dependent one only the klines closed by the row's quote time:

- ``as_of`` (per row, not a column): the window end when ``quote_ts`` is null (or
  the column is absent) or at or after the end (a live quote, fetched just after
  it); else ``quote_ts`` floored to the minute. A history quote is the newest
  prices-history point before the end, typically up to a minute old: the market
  price knew BTC only until then, so the structural probability it is compared
  with must not know more (a fresher fair value beats a stale quote).
- S, the spot as of the quote: ``btc_spot_price`` when ``as_of`` is the window end;
  else the ``close`` of the 1m kline that closed at ``as_of`` (``open_time`` =
  as_of − 1 min), ``btc_spot_price`` if that kline is missing.

- ``realized_vol``: annualised σ from the 1m klines in [end − 24 h, end):
  Garman–Klass variance per bar, EWMA weights with a 6 h half-life over that fixed
  window (normalised), × 525,600 bars/year, square root; null with < 60 bars.
- ``reference_price`` (up/down only): ``open`` of the 1m kline opening at
  ``reference_start``; null until it has opened (before ``as_of``).
- ``barrier_touched`` (reach/dip only): max 1m ``high`` ≥ K (reach) or min 1m
  ``low`` ≤ K (dip) over the klines in [touch start, end); touch start =
  ``reference_start`` (the 1st of a monthly barrier's month, January 1 of a yearly
  one), else ``start_date``, else end − BARRIER_LOOKBACK (8 days). The part of that
  range before the klines passed comes from a ``touch_history`` frame (extremes per
  touch start, :func:`touch_history`), so a touch weeks ago is remembered without
  reading weeks of 1m bars. Null when no kline falls in the range; False before
  the touch start. ``realized_vol`` and touches stay at the window end: 24 h of
  volatility is not moved by a minute, and a touch after ``as_of`` only makes the
  row ``barrier_touched`` (dropped from training, PASS in the edge report), the
  conservative side.
- ``log_moneyness``: ln(S/K) (K = ``strike``, the lower bound for ranges);
  ln(S/S_ref) for up/down.
- ``structural_probability``: P(YES) by family, below; null when the family or an
  input is unknown.

With S the spot as of the quote, σ = ``realized_vol``, τ = years from ``as_of`` to
expiry (365-day years) and d₂(K) = (ln(S/K) − σ²τ/2)/(σ√τ):

- ``above``: Φ(d₂(K)); ``below``: 1 − that; ``range`` [K_lo, K_hi]: Φ(d₂(K_lo)) − Φ(d₂(K_hi)).
- ``reach`` K: 1 if touched, else 2·Φ(ln(S/K)/(σ√τ)) (= 2·(1 − Φ(ln(K/S)/(σ√τ))), the
  driftless reflection principle), capped to [0, 1]; ``dip`` K: 1 if touched, else
  2·Φ(ln(K/S)/(σ√τ)), capped.
- up/down (``updown_*``): Φ(ln(S/S_ref)/(σ√τ)); 0.5 while ``reference_start`` ≥ ``as_of``.
- τ ≤ 0: the outcome is decided by the rule on S: above ``S > K``, below its
  complement, range ``K_lo < S ≤ K_hi``, reach/dip ``touched``, up/down ``S ≥ S_ref``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import polars as pl

from btc_tracker_pipeline.warehouse.tables import polars_schema

MINUTES_PER_YEAR = 525_600
HOURS_PER_YEAR = 8_760.0
VOL_WINDOW = timedelta(hours=24)
VOL_HALF_LIFE = timedelta(hours=6)
MIN_VOL_BARS = 60
# Up/down reference prices (and touches of a barrier without any start) look back at
# most this far from the window end: it bounds the 1m klines a caller must pass.
BARRIER_LOOKBACK = timedelta(days=8)
TOUCH_HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "touch_start": pl.Datetime("us"),
    "before": pl.Datetime("us"),
    "history_high": pl.Float64(),
    "history_low": pl.Float64(),
}

_US_PER_MIN = 60_000_000
_VOL_BARS = int(VOL_WINDOW / timedelta(minutes=1))
_BARRIER_US = int(BARRIER_LOOKBACK / timedelta(microseconds=1))
_UPDOWN_PREFIX = "updown_"
# The spot as of each row's quote (module docstring): structural_columns adds it from the
# klines for structural_probability, which falls back to btc_spot_price without it.
QUOTE_SPOT = "quote_spot"

# The structural columns of market_indicators.
STRUCTURAL_SCHEMA: dict[str, pl.DataType] = polars_schema(
    "market_indicators",
    (
        "strike",
        "strike_high",
        "reference_price",
        "realized_vol",
        "log_moneyness",
        "barrier_touched",
        "structural_probability",
    ),
)

# Hart (1968) rational approximation of the normal tail, as given by G. West,
# "Better approximations to cumulative normal functions" (2005): |error| ~ 1e-14.
_HART_NUM = (
    0.0352624965998911,
    0.700383064443688,
    6.37396220353165,
    33.912866078383,
    112.079291497871,
    221.213596169931,
    220.206867912376,
)
_HART_DEN = (
    0.0883883476483184,
    1.75566716318264,
    16.064177579207,
    86.7807322029461,
    296.564248779674,
    637.333633378831,
    793.826512519948,
    440.413735824752,
)
_SQRT_2PI = 2.506628274631


def _horner(x: pl.Expr, coefficients: Sequence[float]) -> pl.Expr:
    acc: pl.Expr = pl.lit(coefficients[0])
    for c in coefficients[1:]:
        acc = acc * x + c
    return acc


def normal_cdf(x: pl.Expr) -> pl.Expr:
    """Φ(x), the standard normal CDF, as a polars expression (null stays null).

    Hart's rational approximation for |x| < 7.07, a continued fraction beyond,
    0/1 past |x| > 37; absolute error below 1e-12 (tested against ``math.erfc``).
    """
    a = x.abs()
    gauss = (-(a * a) / 2.0).exp()
    central = gauss * _horner(a, _HART_NUM) / _horner(a, _HART_DEN)
    fraction = a + 1.0 / (a + 2.0 / (a + 3.0 / (a + 4.0 / (a + 0.65))))
    far = gauss / fraction / _SQRT_2PI
    tail = pl.when(a > 37.0).then(0.0).when(a < 7.07106781186547).then(central).otherwise(far)
    return pl.when(x > 0).then(1.0 - tail).otherwise(tail)


def _normal_cdf_where_known(z: pl.Series) -> pl.Series:
    """``normal_cdf`` of ``z``, computed on its non-null values only (null elsewhere).

    Element by element the same operations as on the whole column, so the values are
    identical; the nulls just cost nothing."""
    known = z.is_not_null()
    everywhere = bool(known.all())
    phi = (
        pl.LazyFrame({"z": z if everywhere else z.filter(known)})
        .select(normal_cdf(pl.col("z")))
        .collect()
        .to_series()
        .alias(z.name)
    )
    if everywhere:
        return phi
    out = pl.repeat(None, len(z), dtype=pl.Float64, eager=True).alias(z.name)
    return out.scatter(known.arg_true(), phi) if len(phi) else out


def garman_klass_variance() -> pl.Expr:
    """Garman–Klass variance of one bar: ½·ln(H/L)² − (2·ln 2 − 1)·ln(C/O)²."""
    hl = (pl.col("high") / pl.col("low")).log()
    co = (pl.col("close") / pl.col("open")).log()
    return 0.5 * hl * hl - (2.0 * math.log(2.0) - 1.0) * co * co


def parkinson_variance() -> pl.Expr:
    """Parkinson variance of one bar: ln(H/L)² / (4·ln 2)."""
    hl = (pl.col("high") / pl.col("low")).log()
    return hl * hl / (4.0 * math.log(2.0))


def _epoch_us(values: pl.Series | Sequence[datetime]) -> np.ndarray:
    series = (
        pl.Series(values, dtype=pl.Datetime("us")) if not isinstance(values, pl.Series) else values
    )
    return series.cast(pl.Datetime("us")).dt.epoch("us").to_numpy().astype(np.int64)


def _ceil_minute(us: np.ndarray) -> np.ndarray:
    return -((-us) // _US_PER_MIN)


class _MinuteGrid:
    """1-minute columns of the klines on a dense minute axis (NaN where a bar is missing)."""

    def __init__(self, klines: pl.DataFrame, columns: dict[str, pl.Expr]) -> None:
        frame = klines.select(
            (pl.col("open_time").cast(pl.Datetime("us")).dt.epoch("us") // _US_PER_MIN).alias("m"),
            *[expr.cast(pl.Float64).alias(name) for name, expr in columns.items()],
        ).drop_nulls("m")
        minutes = frame["m"].to_numpy().astype(np.int64)
        self.t0 = int(minutes.min()) if len(minutes) else 0
        self.n = int(minutes.max()) - self.t0 + 1 if len(minutes) else 0
        idx = minutes - self.t0
        self.values: dict[str, np.ndarray] = {}
        for name in columns:
            arr = np.full(self.n, np.nan)
            arr[idx] = frame[name].fill_null(np.nan).to_numpy()
            self.values[name] = arr

    def index_ceil(self, us: np.ndarray) -> np.ndarray:
        """Minute index of the first bar opening at or after each timestamp."""
        return _ceil_minute(us) - self.t0


def realized_vol(
    klines: pl.DataFrame,
    window_ends: Sequence[datetime] | pl.Series,
    estimator: Literal["garman_klass", "parkinson"] = "garman_klass",
) -> pl.DataFrame:
    """Annualised realised volatility at each window end (columns ``window_end, realized_vol``).

    Bars are the 1m klines with ``open_time`` in [end − 24 h, end). Each bar's
    variance (Garman–Klass, or Parkinson) is weighted by 2^(−age/6 h), age 0 for the
    bar closing at ``end``; weights are normalised over the bars present, so
    σ = sqrt(Σwᵢvᵢ / Σwᵢ · 525,600). Null with fewer than 60 bars in the window.
    Each end is computed from its own 1,440 minutes only, so the result for one
    end does not depend on the other ends passed with it.
    """
    ends = pl.Series("window_end", window_ends, dtype=pl.Datetime("us"))
    bar_var = garman_klass_variance() if estimator == "garman_klass" else parkinson_variance()
    if klines.is_empty() or ends.is_empty():
        return pl.DataFrame(
            {"window_end": ends, "realized_vol": pl.Series([None] * len(ends), dtype=pl.Float64)}
        )
    grid = _MinuteGrid(klines, {"v": bar_var})
    width = _VOL_BARS
    padded = np.concatenate([np.full(width, np.nan), grid.values["v"], np.full(width, np.nan)])
    # Window [hi − width, hi) on the grid is padded[hi : hi + width].
    hi = np.clip(grid.index_ceil(_epoch_us(ends)), 0, grid.n + width)
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)[hi]
    age = np.arange(width - 1, -1, -1, dtype=np.float64)
    weights = np.exp2(-age / (VOL_HALF_LIFE / timedelta(minutes=1)))
    present = ~np.isnan(windows)
    num = np.where(present, windows * weights, 0.0).sum(axis=1)
    den = np.where(present, weights, 0.0).sum(axis=1)
    enough = present.sum(axis=1) >= MIN_VOL_BARS
    with np.errstate(invalid="ignore", divide="ignore"):
        vol = np.sqrt(num / den * MINUTES_PER_YEAR)
    return pl.DataFrame(
        {
            "window_end": ends,
            "realized_vol": pl.Series(np.where(enough, vol, np.nan)).fill_nan(None),
        }
    )


def _sparse_table(values: np.ndarray, op: np.ufunc) -> np.ndarray:
    """table[j, i] = op over values[i : i + 2^j] (range-extreme queries in O(1))."""
    n = len(values)
    levels = [values]
    span = 1
    while span * 2 <= n:
        prev = levels[-1]
        levels.append(op(prev[: n - 2 * span + 1], prev[span : n - span + 1]))
        span *= 2
    table = np.full((len(levels), n), np.nan)
    for j, level in enumerate(levels):
        table[j, : len(level)] = level
    return table


def _range_query(table: np.ndarray, op: np.ufunc, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """op over [lo, hi) per row; rows with lo >= hi get NaN."""
    length = hi - lo
    ok = length > 0
    safe_len = np.where(ok, length, 1)
    level = np.frexp(safe_len.astype(np.float64))[1] - 1
    lo_s = np.where(ok, lo, 0)
    hi_s = np.where(ok, hi, 1)
    first = table[level, lo_s]
    second = table[level, hi_s - (1 << level)]
    return np.where(ok, op(first, second), np.nan)


def touch_history(
    klines: pl.DataFrame, touch_starts: pl.Series | Sequence[datetime], before: datetime
) -> pl.DataFrame:
    """Max 1m ``high`` and min 1m ``low`` of the klines in [touch start, ``before``) per
    distinct touch start (TOUCH_HISTORY_SCHEMA; starts at or after ``before`` and
    starts with no kline in range are left out). The warehouse computes the same in SQL
    (``defs/features``); this is its polars form."""
    starts = pl.DataFrame(
        {"touch_start": pl.Series(touch_starts, dtype=pl.Datetime("us"))}
    ).drop_nulls()
    starts = starts.unique().filter(pl.col("touch_start") < before)
    bars = klines.select(pl.col("open_time").cast(pl.Datetime("us")), "high", "low").filter(
        pl.col("open_time") < before
    )
    out = (
        starts.join_where(bars, pl.col("open_time") >= pl.col("touch_start"))
        .group_by("touch_start")
        .agg(pl.col("high").max().alias("history_high"), pl.col("low").min().alias("history_low"))
        .with_columns(pl.lit(before, dtype=pl.Datetime("us")).alias("before"))
    )
    return out.select(list(TOUCH_HISTORY_SCHEMA)).sort("touch_start")


def barrier_extremes(
    klines: pl.DataFrame,
    touch_starts: pl.Series,
    window_ends: pl.Series,
    history: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Max 1m ``high`` and min 1m ``low`` over the klines in [from, end) per row.

    ``from`` = the touch start (end − BARRIER_LOOKBACK when it is null). ``history``
    (TOUCH_HISTORY_SCHEMA, optional) adds the extremes of [touch start, before) for
    rows with ``before ≤ end``: the bars older than ``klines``. Columns ``touch_high``,
    ``touch_low`` (null when no kline falls in the range) and ``touch_elapsed`` (False
    when from ≥ end: nothing could have touched yet).
    """
    ends_us = _epoch_us(window_ends)
    starts = touch_starts.cast(pl.Datetime("us")).dt.epoch("us")
    known = starts.is_not_null().to_numpy()
    starts_us = starts.fill_null(0).to_numpy().astype(np.int64)
    from_us = np.where(known, starts_us, ends_us - _BARRIER_US)
    elapsed = from_us < ends_us
    high = np.full(len(ends_us), np.nan)
    low = np.full(len(ends_us), np.nan)
    if not klines.is_empty() and len(ends_us):
        grid = _MinuteGrid(klines, {"high": pl.col("high"), "low": pl.col("low")})
        lo = np.clip(grid.index_ceil(from_us), 0, grid.n)
        hi = np.clip(grid.index_ceil(ends_us), 0, grid.n)
        with np.errstate(invalid="ignore"):
            high = _range_query(
                _sparse_table(np.nan_to_num(grid.values["high"], nan=-np.inf), np.maximum),
                np.maximum,
                lo,
                hi,
            )
            low = _range_query(
                _sparse_table(np.nan_to_num(grid.values["low"], nan=np.inf), np.minimum),
                np.minimum,
                lo,
                hi,
            )
        high = np.where(np.isfinite(high), high, np.nan)
        low = np.where(np.isfinite(low), low, np.nan)
    if history is not None and not history.is_empty() and len(ends_us):
        older = pl.DataFrame({"touch_start": touch_starts.cast(pl.Datetime("us"))}).join(
            history.select(list(TOUCH_HISTORY_SCHEMA)).unique("touch_start"),
            on="touch_start",
            how="left",
            maintain_order="left",
        )
        applies = older["before"].cast(pl.Datetime("us")).dt.epoch("us").to_numpy()
        applies = np.nan_to_num(applies.astype(np.float64), nan=np.inf) <= ends_us
        with np.errstate(invalid="ignore"):
            past_high = np.where(applies, older["history_high"].to_numpy(), np.nan)
            past_low = np.where(applies, older["history_low"].to_numpy(), np.nan)
        high = np.fmax(high, past_high.astype(np.float64))
        low = np.fmin(low, past_low.astype(np.float64))
    return pl.DataFrame(
        {
            "touch_high": pl.Series(high, dtype=pl.Float64).fill_nan(None),
            "touch_low": pl.Series(low, dtype=pl.Float64).fill_nan(None),
            "touch_elapsed": pl.Series(elapsed, dtype=pl.Boolean),
        }
    )


def reference_prices(
    klines: pl.DataFrame,
    reference_starts: pl.Series,
    window_ends: pl.Series,
    as_of: pl.Series | None = None,
) -> pl.Series:
    """``open`` of the 1m kline opening at each reference start (floored to the minute).

    Null when that kline has not opened by ``as_of`` (the row's quote time, default the
    window end: ``open_time ≥ as_of``), is missing, or opened more than
    BARRIER_LOOKBACK before the window end.
    """
    out = np.full(len(window_ends), np.nan)
    if not klines.is_empty() and len(window_ends):
        grid = _MinuteGrid(klines, {"open": pl.col("open")})
        ends_us = _epoch_us(window_ends)
        as_of_us = ends_us if as_of is None else _epoch_us(as_of)
        ref = reference_starts.cast(pl.Datetime("us")).dt.epoch("us")
        known = ref.is_not_null().to_numpy()
        ref_us = ref.fill_null(0).to_numpy().astype(np.int64)
        open_us = (ref_us // _US_PER_MIN) * _US_PER_MIN
        idx = open_us // _US_PER_MIN - grid.t0
        ok = (
            known
            & (open_us < as_of_us)
            & (open_us >= ends_us - _BARRIER_US)
            & (idx >= 0)
            & (idx < grid.n)
        )
        out = np.where(ok, grid.values["open"][np.clip(idx, 0, max(grid.n - 1, 0))], np.nan)
    return pl.Series("reference_price", out, dtype=pl.Float64).fill_nan(None)


def as_of_expr(columns: Sequence[str]) -> pl.Expr:
    """Each row's ``as_of`` (module docstring) for a frame with these ``columns``: the
    window end, or ``quote_ts`` floored to the minute when the quote is older than it."""
    end = pl.col("window_end").cast(pl.Datetime("us"))
    if "quote_ts" not in columns:
        return end.alias("as_of")
    quote = pl.col("quote_ts").cast(pl.Datetime("us"))
    fresh = quote.is_null() | (quote >= end)
    return pl.when(fresh).then(end).otherwise(quote.dt.truncate("1m")).alias("as_of")


def spot_as_of(
    klines: pl.DataFrame, as_of: pl.Series, window_ends: pl.Series, window_spot: pl.Series
) -> pl.Series:
    """S per row (module docstring): ``window_spot`` where ``as_of`` is the window end;
    else the ``close`` of the 1m kline opening at as_of − 1 min (closed at as_of),
    ``window_spot`` when that kline is missing."""
    out = window_spot.cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
    as_of_us, ends_us = _epoch_us(as_of), _epoch_us(window_ends)
    stale = as_of_us < ends_us
    if not klines.is_empty() and stale.any():
        grid = _MinuteGrid(klines, {"close": pl.col("close")})
        idx = as_of_us // _US_PER_MIN - 1 - grid.t0
        ok = stale & (idx >= 0) & (idx < grid.n)
        close = np.where(ok, grid.values["close"][np.clip(idx, 0, max(grid.n - 1, 0))], np.nan)
        out = np.where(np.isnan(close), out, close)
    return pl.Series(QUOTE_SPOT, out, dtype=pl.Float64).fill_nan(None)


def structural_columns(
    frame: pl.DataFrame, klines: pl.DataFrame, history: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Add the STRUCTURAL_SCHEMA columns to ``frame`` (see the module docstring).

    ``frame`` needs ``window_end, family, strike, strike_high, reference_start,
    start_date, expiry, btc_spot_price`` and ``quote_ts`` (a missing column counts as
    null: every row as of its window end); ``klines`` the 1m bars (``open_time, open,
    high, low, close``) covering [first end − BARRIER_LOOKBACK, last end); ``history``
    the :func:`touch_history` of the barrier touch starts before those bars.
    """
    ends = frame["window_end"].cast(pl.Datetime("us"))
    as_of = frame.select(as_of_expr(frame.columns)).to_series()
    # Volatility and touches at the window end, not as of the quote: 24 h of volatility
    # is not moved by a minute, and a touch after as_of only makes the row
    # barrier_touched (dropped from training, PASS in the edge report): conservative.
    vol = realized_vol(klines, ends.unique().sort())
    # Touches and reference prices only for the rows of the families that use them.
    barrier = np.flatnonzero(frame["family"].is_in(["reach", "dip"]).to_numpy())
    touch_start = frame["reference_start"].fill_null(frame["start_date"])
    touch = barrier_extremes(klines, touch_start.gather(barrier), ends.gather(barrier), history)
    updown = np.flatnonzero(frame["family"].str.starts_with(_UPDOWN_PREFIX).to_numpy())
    reference = reference_prices(
        klines, frame["reference_start"].gather(updown), ends.gather(updown), as_of.gather(updown)
    )
    spot = spot_as_of(klines, as_of, ends, frame["btc_spot_price"])

    def scatter(values: pl.Series, at: np.ndarray, name: str) -> pl.Series:
        empty = pl.repeat(None, frame.height, dtype=values.dtype, eager=True).alias(name)
        return empty.scatter(at, values) if len(at) else empty

    out = frame.with_columns(
        spot,
        scatter(reference, updown, "reference_price"),
        *[scatter(touch[name], barrier, name) for name in touch.columns],
    ).join(vol, on="window_end", how="left", maintain_order="left")
    return structural_probability(out).drop("touch_high", "touch_low", "touch_elapsed", QUOTE_SPOT)


def structural_probability(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``log_moneyness``, ``barrier_touched`` and ``structural_probability``.

    Definitions in the module docstring. ``frame`` needs ``family, window_end, expiry,
    reference_start, btc_spot_price, strike, strike_high, reference_price,
    realized_vol`` and the ``barrier_extremes`` columns ``touch_high, touch_low,
    touch_elapsed``; optionally ``quote_ts`` (absent: every row as of its window end)
    and ``quote_spot``, the spot as of the quote (:func:`spot_as_of`; absent:
    ``btc_spot_price``). Computed in stages so Φ is evaluated twice per row, not once
    per family branch, and lazily so shared subexpressions are computed once.
    """
    as_of = as_of_expr(frame.columns)
    staged = frame.lazy().with_columns(
        ((pl.col("expiry") - as_of).dt.total_microseconds() / 3.6e9 / HOURS_PER_YEAR).alias("_tau"),
        as_of.alias("_as_of"),
        # Family tests on categorical codes, not on the strings of every row.
        pl.col("family").cast(pl.Categorical).alias("_family"),
    )
    family = pl.col("_family")
    updown = family.cat.starts_with(_UPDOWN_PREFIX)
    barrier = family.is_in(["reach", "dip"])
    spot = pl.col(QUOTE_SPOT if QUOTE_SPOT in frame.columns else "btc_spot_price")
    strike, strike_high = pl.col("strike"), pl.col("strike_high")
    sigma, tau = pl.col("realized_vol"), pl.col("_tau")
    moneyness, sd = pl.col("log_moneyness"), pl.col("_sd")
    half_var = sigma * sigma * tau / 2.0  # σ²τ/2
    touched = (
        pl.when(pl.col("touch_elapsed").not_() & barrier & strike.is_not_null())
        .then(False)  # nothing elapsed since the touch start: nothing can have touched
        .when(family == "reach")
        .then(pl.col("touch_high") >= strike)
        .when(family == "dip")
        .then(pl.col("touch_low") <= strike)
    )
    staged = staged.with_columns(
        # One division and one log per row: ln(S/S_ref) or ln(S/K) by family.
        (
            spot
            / pl.when(updown)
            .then(pl.col("reference_price"))
            .when(family.is_in(["above", "below", "range", "reach", "dip"]))
            .then(strike)
        )
        .log()
        .alias("log_moneyness"),
        pl.when((tau > 0) & (sigma > 0)).then(sigma * tau.sqrt()).alias("_sd"),  # σ√τ
        touched.alias("barrier_touched"),
    )
    above = (spot > strike).cast(pl.Float64)  # decided outcomes at τ ≤ 0
    staged = staged.with_columns(
        (
            pl.when(family.is_in(["above", "below", "range"]))
            .then(moneyness - half_var)  # d₂(K)
            .when(family == "dip")
            .then(-moneyness)
            .otherwise(moneyness)
            / sd
        ).alias("_z1"),
        ((spot / strike_high).log() - half_var).truediv(sd).alias("_z2"),  # d₂(K_hi)
        pl.when(updown)
        .then((spot >= pl.col("reference_price")).cast(pl.Float64))
        .when(family == "above")
        .then(above)
        .when(family == "below")
        .then(1.0 - above)
        .when(family == "range")
        .then(above - (spot > strike_high).cast(pl.Float64))
        .when(barrier)
        .then(0.0)
        .alias("_decided"),
    )
    # Φ is the costly part (~45 full-column passes): evaluate it only where its argument
    # is known (z₁ not for "other" rows or without σ, z₂ for ranges only).
    known = staged.collect()
    staged = known.with_columns(
        _normal_cdf_where_known(known["_z1"]).alias("_phi1"),
        _normal_cdf_where_known(known["_z2"]).alias("_phi2"),
    ).lazy()
    phi1, phi2 = pl.col("_phi1"), pl.col("_phi2")
    not_started = updown & pl.col("reference_start").is_not_null()
    not_started = not_started & (pl.col("reference_start") >= pl.col("_as_of"))
    live = (
        pl.when(updown | (family == "above"))
        .then(phi1)
        .when(family == "below")
        .then(1.0 - phi1)
        .when(family == "range")
        .then(phi1 - phi2)
        .when(barrier)
        .then(2.0 * phi1)  # reflection principle, capped by the clip below
    )
    probability = (
        pl.when(not_started)
        .then(0.5)
        .when(barrier & pl.col("barrier_touched"))
        .then(1.0)
        .when(barrier & pl.col("barrier_touched").is_null())
        .then(None)
        .when(tau <= 0)
        .then(pl.col("_decided"))
        .when(sd.is_not_null())
        .then(live)
    )
    return (
        staged.with_columns(probability.clip(0.0, 1.0).alias("structural_probability"))
        .drop("_tau", "_as_of", "_family", "_sd", "_z1", "_z2", "_decided", "_phi1", "_phi2")
        .collect()
    )
