"""The ``market_indicators`` rows: the seed's 12 features, structural probabilities, quality.

One row per (window W, market) that has both a ``market_snapshots`` row and a
``tracked_markets`` row for W. Every value uses only data timestamped before W's
end: snapshots of windows ≤ W, 1m klines with ``open_time < W.end`` and W's own
``btc_spot_windows`` row. A row depends only on its window's trailing inputs, never
on which other windows are computed with it, so a 1-window tick and a backfill
give identical rows. p(W−n) below is the market's ``yes_price`` n windows (n·15 min)
before W, null when that snapshot is missing.

Features (the seed's 12):

1. ``market_probability``: p(W), the snapshot ``yes_price``.
2. ``volume``: the snapshot ``volume`` (Gamma's lifetime volume; null on history rows).
3. ``liquidity``: the snapshot ``liquidity`` (null on history rows).
4. ``btc_spot_price``: ``btc_spot_windows.spot_price`` of W.
5. ``btc_24h_change_pct``: ``btc_spot_windows.change_24h_pct`` of W.
6. ``price_momentum_15m``: p(W) − p(W−1).
7. ``price_momentum_1h``: p(W) − p(W−4).
8. ``volume_spike``: volume(W) / mean(non-null volume of W−8 … W−1) − 1; null if
   volume(W) is null, no previous volume exists, or that mean is 0.
9. ``price_volatility``: sample standard deviation (n − 1) of the non-null
   p(W−7) … p(W); null with fewer than 4 points.
10. ``rsi_14``: Wilder RSI over the fixed trailing window p(W−28) … p(W) (below);
    null if any of those 29 prices is missing.
11. ``market_edge``: abs(p(W) − 0.5).
12. ``time_to_expiry_hours``: (``expiry`` − W.end) in hours; negative after expiry,
    null without expiry.

``rsi_14``: the 28 changes cᵢ = p(W−28+i) − p(W−29+i), i = 1 … 28, split into gains
max(cᵢ, 0) and losses max(−cᵢ, 0). Each average is seeded with the mean of the
first 14, then updated 14 times with avg ← (13·avg + xᵢ)/14 for i = 15 … 28, and
RSI = 100 − 100/(1 + avg_gain/avg_loss); avg_loss = 0 gives 100, both 0 give 50.
The recursion is linear, so each average is the fixed weighted sum Σ wᵢxᵢ with
wᵢ = (13/14)¹⁴/14 for i ≤ 14 and wᵢ = (13/14)^(28−i)/14 for i ≥ 15, computed with
shifted columns.

Also: the structural columns of ``features.structural`` (``strike``, ``strike_high``,
``reference_price``, ``realized_vol``, ``log_moneyness``, ``barrier_touched``,
``structural_probability``), the quality columns of ``features.quality`` (``q_*``,
``quality_score``), and the snapshot's ``snapshot_ts``, ``source`` and ``quote_age_s``
(``snapshot_ts`` − ``quote_ts`` in seconds: how stale a history quote is, up to the
staleness limit of ``market_snapshots``; a few seconds below zero on live quotes).
The structural spot S and τ are as of the quote, not the window end: a history quote
older than the end gets S = the close of the 1m kline closed at the quote's minute
(``quote_ts`` is passed through), so the structural probability knows no more BTC than
the market price it is compared with; ``btc_spot_price`` stays the window's spot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from btc_tracker_pipeline.features.quality import add_quality, quote_age_expr
from btc_tracker_pipeline.features.structural import (
    BARRIER_LOOKBACK,
    VOL_WINDOW,
    structural_columns,
)
from btc_tracker_pipeline.warehouse.read import klines_between, touch_history, window_rows
from btc_tracker_pipeline.warehouse.tables import polars_schema

WINDOW = timedelta(minutes=15)
RSI_PERIOD = 14
RSI_CHANGES = 2 * RSI_PERIOD  # 14 to seed, 14 Wilder updates
VOLUME_WINDOWS = 8
VOLATILITY_WINDOWS = 8
MIN_VOLATILITY_POINTS = 4

# Windows before W that a row of W reads: the RSI needs p(W−28) … p(W).
LOOKBACK_WINDOWS = RSI_CHANGES
# 1m klines before W.end a row of W reads: 24 h for the volatility, 8 days for up/down
# reference prices; older barrier touches come from a touch history (structural.py).
KLINE_LOOKBACK = max(VOL_WINDOW, BARRIER_LOOKBACK)

# market_indicators, whole: its structural and quality columns are computed by
# features.structural and features.quality.
INDICATOR_SCHEMA: dict[str, pl.DataType] = polars_schema("market_indicators")

_US = pl.Datetime("us")
_WINDOW_US = int(WINDOW / timedelta(microseconds=1))
_SNAPSHOT_COLUMNS = (
    "window_start",
    "window_end",
    "market_id",
    "snapshot_ts",
    "quote_ts",
    "yes_price",
    "best_bid",
    "best_ask",
    "volume",
    "liquidity",
    "source",
)
_TRACKED_COLUMNS = (
    "window_start",
    "market_id",
    "family",
    "strike",
    "strike_high",
    "reference_start",
    "start_date",
    "expiry",
)
_TIMESTAMPS = ("window_start", "window_end", "snapshot_ts", "quote_ts")
_TRACKED_TIMESTAMPS = ("window_start", "reference_start", "start_date", "expiry")


def rsi_weights() -> list[float]:
    """Weight of change cᵢ (i = 1 … 28, oldest first) in the final Wilder average."""
    decay = (RSI_PERIOD - 1) / RSI_PERIOD
    seeded = decay**RSI_PERIOD / RSI_PERIOD
    return [seeded] * RSI_PERIOD + [
        decay ** (RSI_CHANGES - i) / RSI_PERIOD for i in range(RSI_PERIOD + 1, RSI_CHANGES + 1)
    ]


def _window_index() -> pl.Expr:
    return (pl.col("window_start").dt.epoch("us") // _WINDOW_US).alias("k")


def _nullable(values: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.Float64).fill_nan(None)


def _add_lagged(total: np.ndarray, values: np.ndarray, n: int) -> None:
    """total[i] += values[i − n] for i ≥ n (in place)."""
    total[n:] += values[: len(values) - n]


def _present_count(values: np.ndarray, first: int, last: int) -> np.ndarray:
    """How many of values[i − last] … values[i − first] (those at or after position 0)
    are not NaN, for every i: differences of a running count, exact in float64."""
    width = last + 1
    running = np.concatenate([np.zeros(width), np.cumsum(~np.isnan(values), dtype=np.float64)])
    size = len(values)
    return running[width - first : width - first + size] - running[:size]


def _filled(values: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(values)`` (NaN → 0, ±inf → ±max float) in fewer passes."""
    big = np.finfo(np.float64).max
    return np.where(np.isnan(values), 0.0, np.clip(values, -big, big))


def _volatility(price: np.ndarray) -> np.ndarray:
    """Sample std of p(W−7) … p(W) over the points present (NaN with fewer than 4);
    sums in a fixed order, so a row's value never depends on its neighbours' markets."""
    size = len(price)
    filled = _filled(price)
    count, total = _present_count(price, 0, VOLATILITY_WINDOWS - 1), np.zeros(size)
    for n in range(VOLATILITY_WINDOWS):
        _add_lagged(total, filled, n)
    mean = total / count
    squares = np.zeros(size)
    deviation = np.empty(size)
    for n in range(VOLATILITY_WINDOWS):
        d = deviation[: size - n]
        np.subtract(price[: size - n], mean[n:], out=d)
        np.multiply(d, d, out=d)
        np.fmax(d, 0.0, out=d)  # fmax: a missing point (NaN) adds 0
        squares[n:] += d
    return np.where(count >= MIN_VOLATILITY_POINTS, np.sqrt(squares / (count - 1)), np.nan)


def _volume_spike(volume: np.ndarray) -> np.ndarray:
    """volume(W) / mean(non-null volume of W−8 … W−1) − 1; NaN where undefined."""
    size = len(volume)
    seen, total = _present_count(volume, 1, VOLUME_WINDOWS), np.zeros(size)
    filled = _filled(volume)
    for n in range(1, VOLUME_WINDOWS + 1):
        _add_lagged(total, filled, n)
    previous_mean = total / seen
    return np.where(previous_mean > 0, volume / previous_mean - 1.0, np.nan)


def _rsi(change: np.ndarray) -> np.ndarray:
    """Wilder RSI from the 15-minute price changes: the averages are fixed weighted sums
    of the last 28 changes (``rsi_weights``). A missing price makes its changes NaN,
    which survives the sums: the RSI is NaN."""
    size = len(change)
    gain, loss = np.maximum(change, 0.0), np.maximum(-change, 0.0)
    avg_gain, avg_loss = np.zeros(size), np.zeros(size)
    term = np.empty(size)
    for back, weight in enumerate(reversed(rsi_weights())):
        for average, values in ((avg_gain, gain), (avg_loss, loss)):
            lagged = term[: size - back]
            np.multiply(weight, values[: size - back], out=lagged)
            average[back:] += lagged
    rsi = np.where(
        avg_loss == 0,
        np.where(avg_gain == 0, 50.0, 100.0),
        100.0 - 100.0 / (1.0 + avg_gain / avg_loss),
    )
    return np.where(np.isnan(avg_gain), np.nan, rsi)


_CHUNK = 1 << 15
_HALO = LOOKBACK_WINDOWS + 4  # ≥ the deepest lag any history feature reads


def _history_arrays(price: np.ndarray, volume: np.ndarray) -> dict[str, np.ndarray]:
    """The history features along a stretch of the window axis (NaN = null); a value
    is right wherever the LOOKBACK_WINDOWS positions before it are in the stretch."""
    change = np.full(len(price), np.nan)
    change[1:] = price[1:] - price[:-1]
    momentum_1h = np.full(len(price), np.nan)
    momentum_1h[4:] = price[4:] - price[:-4]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "price_momentum_15m": change,
            "price_momentum_1h": momentum_1h,
            "volume_spike": _volume_spike(volume),
            "price_volatility": _volatility(price),
            "rsi_14": _rsi(change),
        }


def _chunked(
    compute: Callable[..., dict[str, np.ndarray]], *arrays: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """``compute(*arrays)`` as (names, one row of values per name), evaluated on
    _CHUNK-long stretches (each with the _HALO positions before it) so the many
    shifted passes stay in cache. Element by element the same arithmetic in the same
    order: the result is bit-identical."""
    size = len(arrays[0])
    names: list[str] = []
    out = np.empty((0, 0))
    for lo in range(0, max(size, 1), _CHUNK):  # an empty axis still gives the names
        hi = min(lo + _CHUNK, size)
        start = max(lo - _HALO, 0)
        part = compute(*(a[start:hi] for a in arrays))
        if not names:
            names, out = list(part), np.empty((len(part), size))
        for j, values in enumerate(part.values()):
            out[j, lo:hi] = values[lo - start :]
    return names, out


def _grid(market: np.ndarray, k: np.ndarray, n_markets: int) -> tuple[np.ndarray, ...]:
    """The dense window axis of ``_history_features`` from the rows' market ranks and
    window indices: per market rank its first window ``lo`` (LOOKBACK_WINDOWS before its
    first row), last window ``hi`` and ``offset`` on the axis (a market without rows
    gets hi < lo), and the axis size."""
    first = np.full(n_markets, np.iinfo(np.int64).max)
    hi = np.full(n_markets, np.iinfo(np.int64).min)
    np.minimum.at(first, market, k)
    np.maximum.at(hi, market, k)
    used = hi >= first
    lo = np.where(used, first - LOOKBACK_WINDOWS, 0)
    hi = np.where(used, hi, -1)
    span = hi - lo + 1
    offset = np.cumsum(span) - span
    return lo, hi, offset, int(span.sum())


def _history_features(snaps: pl.DataFrame, rows: pl.DataFrame, n_markets: int) -> pl.DataFrame:
    """``rows`` with momentum, volume spike, volatility and RSI added (module docstring).

    ``snaps`` and ``rows`` carry ``k`` (window index) and ``market_rank`` (< n_markets).
    Each market of ``rows`` gets a dense run of windows on one numpy axis, from
    LOOKBACK_WINDOWS before its first row to its last row; its snapshots are
    scattered there (NaN where missing), so "n windows earlier" is position − n and,
    for every row, stays inside the row's market. Features are computed along the
    whole axis with shifted slices (no gathers; in cache-sized chunks, ``_chunked``),
    then read at the rows' positions; axis positions less than LOOKBACK_WINDOWS into
    a market may mix markets or miss lags, but no row sits there.
    """
    row_market, row_k = rows["market_rank"].to_numpy(), rows["k"].to_numpy()
    lo, hi, offset, size = _grid(row_market, row_k, n_markets)
    market, k = snaps["market_rank"].to_numpy(), snaps["k"].to_numpy()
    inside = (k >= lo[market]) & (k <= hi[market])
    at = (offset[market] + k - lo[market])[inside]
    price = np.full(size, np.nan)
    volume = np.full(size, np.nan)
    price[at] = snaps["yes_price"].fill_null(np.nan).to_numpy()[inside]
    volume[at] = snaps["volume"].fill_null(np.nan).to_numpy()[inside]
    pos = offset[row_market] + row_k - lo[row_market]

    names, features = _chunked(_history_arrays, price, volume)
    at_rows = np.take(features, pos, axis=1)
    return rows.with_columns(_nullable(at_rows[j]).alias(name) for j, name in enumerate(names))


def _sorted_by(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``frame`` sorted by the int64 ``column`` (a no-op when it already is)."""
    if frame[column].is_sorted():
        return frame
    return frame[np.argsort(frame[column].to_numpy(), kind="stable")]


def _join_sorted(left: pl.DataFrame, right: pl.DataFrame, on: str) -> pl.DataFrame:
    """Inner join of two frames sorted by the int64 key ``on``, in ``left``'s order,
    without ``on``. Rows of the two usually pair up one to one (every snapshot has its
    tracked row): then it is a plain side-by-side stack; otherwise a binary search,
    or polars' join if ``right`` repeats a key."""
    lk, rk = left[on].to_numpy(), right[on].to_numpy()
    left, right = left.drop(on), right.drop(on)
    if np.array_equal(lk, rk):
        return pl.concat([left, right], how="horizontal")
    if len(rk) == 0 or np.any(np.diff(rk) <= 0):
        return (
            left.with_columns(pl.Series(on, lk))
            .join(right.with_columns(pl.Series(on, rk)), on=on, how="inner", maintain_order="left")
            .drop(on)
        )
    at = np.minimum(np.searchsorted(rk, lk), len(rk) - 1)
    found = rk[at] == lk
    return pl.concat([left.filter(found), right[at[found]]], how="horizontal")


def _target_rows(
    snaps: pl.DataFrame, terms: pl.DataFrame, starts: pl.Series, n_markets: int
) -> pl.DataFrame:
    """The snapshots of the target windows joined to their tracked rows, sorted by
    (window_start, market_id), i.e. by (``k``, ``market_rank``), one int64 ``key``."""
    first = snaps["k"].min() or 0
    key = ((pl.col("k") - first) * n_markets + pl.col("market_rank")).alias("key")
    rows = snaps.filter(pl.col("window_start").is_in(starts.implode())).with_columns(key)
    terms = (
        terms.with_columns(_window_index())
        .with_columns(key)
        .drop("window_start", "market_id", "k", "market_rank")
    )
    return _join_sorted(_sorted_by(rows, "key"), _sorted_by(terms, "key"), "key")


def compute_indicators(
    snapshots: pl.DataFrame,
    tracked: pl.DataFrame,
    spot_windows: pl.DataFrame,
    klines: pl.DataFrame,
    target_starts: Sequence[datetime],
    touch_history: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``market_indicators`` rows for the target windows, columns exactly INDICATOR_SCHEMA.

    ``snapshots``: ``market_snapshots`` rows of the target windows and of the
    LOOKBACK_WINDOWS windows before the first one; ``tracked``: ``tracked_markets``
    rows of the target windows; ``spot_windows``: ``btc_spot_windows`` rows of the
    target windows; ``klines``: ``btc_spot_prices`` 1m rows from the first target
    start − KLINE_LOOKBACK to the last target end; ``target_starts``: the
    ``window_start`` of every target window; ``touch_history``: the barrier extremes
    before those klines (``features.structural.touch_history``), so that a touch since
    a barrier's reference start weeks ago counts. Extra rows (later windows, more
    history) are allowed and never change a result. One row per target (window,
    market) with both a snapshot and a tracked row, sorted by (window_start,
    market_id); the features are defined in the module docstring.

    Markets are ranked by ``market_id`` (an Enum of the tracked ids, sorted), so every
    join and sort runs on integers; snapshots of untracked markets are dropped first.
    """
    starts = pl.Series("window_start", list(target_starts), dtype=_US).unique()
    markets = pl.Enum(tracked["market_id"].drop_nulls().unique().sort())
    rank = pl.col("market_id").cast(markets, strict=False).to_physical().cast(pl.Int64)
    snaps = (
        snapshots.select(_SNAPSHOT_COLUMNS)
        .with_columns(
            *[pl.col(c).cast(_US) for c in _TIMESTAMPS], _window_index(), rank.alias("market_rank")
        )
        .drop_nulls(["market_rank", "k"])
    )
    terms = tracked.select(_TRACKED_COLUMNS).with_columns(
        *[pl.col(c).cast(_US) for c in _TRACKED_TIMESTAMPS], rank.alias("market_rank")
    )
    n_markets = max(len(markets.categories), 1)
    rows = _target_rows(snaps, terms, starts, n_markets)
    spot = spot_windows.select(
        pl.col("window_start").cast(_US),
        pl.col("spot_price").alias("btc_spot_price"),
        pl.col("change_24h_pct").alias("btc_24h_change_pct"),
        pl.col("as_of").cast(_US).alias("spot_as_of"),
    )
    rows = (
        _history_features(snaps, rows, n_markets)
        .join(spot, on="window_start", how="left", maintain_order="left")
        .with_columns(
            pl.col("yes_price").alias("market_probability"),
            quote_age_expr(),
            (pl.col("yes_price") - 0.5).abs().alias("market_edge"),
            ((pl.col("expiry") - pl.col("window_end")).dt.total_microseconds() / 3.6e9).alias(
                "time_to_expiry_hours"
            ),
        )
    )
    bars = klines.select(pl.col("open_time").cast(_US), "open", "high", "low", "close").unique(
        "open_time", keep="first"
    )
    rows = add_quality(structural_columns(rows, bars, touch_history))
    return rows.select([pl.col(name).cast(dtype) for name, dtype in INDICATOR_SCHEMA.items()])


def indicators_for_run(
    conn: duckdb.DuckDBPyConnection, windows: Sequence[tuple[datetime, datetime]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read what the run's windows need from the warehouse (snapshots of the run and of
    the LOOKBACK_WINDOWS before it, tracked terms, spot, KLINE_LOOKBACK of klines, the
    barriers' older extremes) and compute their ``market_indicators`` rows; returns
    (indicators, the run's snapshots)."""
    start, end = windows[0][0], windows[-1][1]
    kline_start = start - KLINE_LOOKBACK
    snapshots = window_rows(
        conn, "market_snapshots", start - LOOKBACK_WINDOWS * WINDOW, end, ordered=True
    )
    indicators = compute_indicators(
        snapshots,
        window_rows(conn, "tracked_markets", start, end, ordered=True),
        window_rows(conn, "btc_spot_windows", start, end),
        klines_between(conn, kline_start, end),
        [ws for ws, _ in windows],
        touch_history(conn, start, end, kline_start),
    )
    return indicators, snapshots.filter(pl.col("window_start") >= start)
