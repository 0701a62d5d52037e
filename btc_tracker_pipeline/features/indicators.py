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
``quality_score``), and the snapshot's ``snapshot_ts`` and ``source``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from btc_tracker_pipeline.features.quality import QUALITY_SCHEMA, add_quality
from btc_tracker_pipeline.features.structural import (
    BARRIER_LOOKBACK,
    STRUCTURAL_SCHEMA,
    VOL_WINDOW,
    structural_columns,
)

WINDOW = timedelta(minutes=15)
RSI_PERIOD = 14
RSI_CHANGES = 2 * RSI_PERIOD  # 14 to seed, 14 Wilder updates
VOLUME_WINDOWS = 8
VOLATILITY_WINDOWS = 8
MIN_VOLATILITY_POINTS = 4

# Windows before W that a row of W reads: the RSI needs p(W−28) … p(W).
LOOKBACK_WINDOWS = RSI_CHANGES
# 1m klines before W.end a row of W reads: 24 h for the volatility, 8 days for touches.
KLINE_LOOKBACK = max(VOL_WINDOW, BARRIER_LOOKBACK)

INDICATOR_SCHEMA: dict[str, pl.DataType] = {
    "window_start": pl.Datetime("us"),
    "window_end": pl.Datetime("us"),
    "market_id": pl.String(),
    "family": pl.String(),
    "snapshot_ts": pl.Datetime("us"),
    "source": pl.String(),
    "market_probability": pl.Float64(),
    "volume": pl.Float64(),
    "liquidity": pl.Float64(),
    "btc_spot_price": pl.Float64(),
    "btc_24h_change_pct": pl.Float64(),
    "price_momentum_15m": pl.Float64(),
    "price_momentum_1h": pl.Float64(),
    "volume_spike": pl.Float64(),
    "price_volatility": pl.Float64(),
    "rsi_14": pl.Float64(),
    "market_edge": pl.Float64(),
    "time_to_expiry_hours": pl.Float64(),
    **STRUCTURAL_SCHEMA,
    **QUALITY_SCHEMA,
}

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


def _history_features(snaps: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with momentum, volume spike, volatility and RSI added (module docstring),
    and ``market_rank``, the rank of ``market_id`` among the rows' markets (for sorting).

    Each market of ``rows`` gets a dense run of windows on one numpy axis, from
    LOOKBACK_WINDOWS before its first row to its last row; its snapshots are
    scattered there (NaN where missing), so "n windows earlier" is position − n and,
    for every row, stays inside the row's market.
    """
    bounds = (
        rows.group_by("market_id")
        .agg((pl.col("k").min() - LOOKBACK_WINDOWS).alias("lo"), pl.col("k").max().alias("hi"))
        .sort("market_id")
        .with_row_index("market_rank")
        .with_columns((pl.col("hi") - pl.col("lo") + 1).alias("span"))
        .with_columns((pl.col("span").cum_sum() - pl.col("span")).alias("offset"))
        .select("market_id", "market_rank", "lo", "hi", "offset")
    )
    size = int((bounds["hi"] - bounds["lo"] + 1).sum() or 0)
    position = pl.col("offset") + pl.col("k") - pl.col("lo")
    history = (
        snaps.select("market_id", "k", "yes_price", "volume")
        .join(bounds.drop("market_rank"), on="market_id", how="inner")
        .filter(pl.col("k").is_between(pl.col("lo"), pl.col("hi")))
        .select(position.alias("pos"), "yes_price", "volume")
    )
    rows = rows.join(bounds, on="market_id", how="left", maintain_order="left").with_columns(
        position.alias("_pos")
    )
    price = np.full(size, np.nan)
    volume = np.full(size, np.nan)
    at = history["pos"].to_numpy()
    price[at] = history["yes_price"].fill_null(np.nan).to_numpy()
    volume[at] = history["volume"].fill_null(np.nan).to_numpy()
    pos = rows["_pos"].to_numpy()

    # Features are computed along the whole grid with shifted slices (streaming, no
    # gathers), then read at the rows' positions. Grid positions less than
    # LOOKBACK_WINDOWS into a market may mix markets or miss lags, but no row sits there.
    def add_lagged(total: np.ndarray, values: np.ndarray, n: int) -> None:
        total[n:] += values[: size - n]

    with np.errstate(invalid="ignore", divide="ignore"):
        # Sample std of p(W−7) … p(W) over the points present (sums in a fixed order).
        present = (~np.isnan(price)).astype(np.float64)
        filled = np.nan_to_num(price)
        count, total = np.zeros(size), np.zeros(size)
        for n in range(VOLATILITY_WINDOWS):
            add_lagged(count, present, n)
            add_lagged(total, filled, n)
        mean = total / count
        squares = np.zeros(size)
        for n in range(VOLATILITY_WINDOWS):
            deviation = price[: size - n] - mean[n:]
            squares[n:] += np.fmax(deviation * deviation, 0.0)  # fmax: a missing point adds 0
        volatility = np.where(
            count >= MIN_VOLATILITY_POINTS, np.sqrt(squares / (count - 1)), np.nan
        )

        seen, volume_total = np.zeros(size), np.zeros(size)
        volume_present = (~np.isnan(volume)).astype(np.float64)
        volume_filled = np.nan_to_num(volume)
        for n in range(1, VOLUME_WINDOWS + 1):
            add_lagged(seen, volume_present, n)
            add_lagged(volume_total, volume_filled, n)
        previous_mean = volume_total / seen
        spike = np.where(previous_mean > 0, volume / previous_mean - 1.0, np.nan)

        # Wilder averages as fixed weighted sums of the last 28 changes. A missing
        # price makes its changes NaN, which survives the sums: the RSI is null.
        change = np.full(size, np.nan)
        change[1:] = price[1:] - price[:-1]
        gain, loss = np.maximum(change, 0.0), np.maximum(-change, 0.0)
        avg_gain, avg_loss = np.zeros(size), np.zeros(size)
        for back, weight in enumerate(reversed(rsi_weights())):
            add_lagged(avg_gain, weight * gain, back)
            add_lagged(avg_loss, weight * loss, back)
        rsi = np.where(
            avg_loss == 0,
            np.where(avg_gain == 0, 50.0, 100.0),
            100.0 - 100.0 / (1.0 + avg_gain / avg_loss),
        )
    rsi = np.where(np.isnan(avg_gain), np.nan, rsi)
    momentum_15m = change
    momentum_1h = np.full(size, np.nan)
    momentum_1h[4:] = price[4:] - price[:-4]
    return rows.drop("lo", "hi", "offset", "_pos").with_columns(
        _nullable(momentum_15m[pos]).alias("price_momentum_15m"),
        _nullable(momentum_1h[pos]).alias("price_momentum_1h"),
        _nullable(spike[pos]).alias("volume_spike"),
        _nullable(volatility[pos]).alias("price_volatility"),
        _nullable(rsi[pos]).alias("rsi_14"),
    )


def compute_indicators(
    snapshots: pl.DataFrame,
    tracked: pl.DataFrame,
    spot_windows: pl.DataFrame,
    klines: pl.DataFrame,
    target_starts: Sequence[datetime],
) -> pl.DataFrame:
    """``market_indicators`` rows for the target windows, columns exactly INDICATOR_SCHEMA.

    ``snapshots``: ``market_snapshots`` rows of the target windows and of the
    LOOKBACK_WINDOWS windows before the first one; ``tracked``: ``tracked_markets``
    rows of the target windows; ``spot_windows``: ``btc_spot_windows`` rows of the
    target windows; ``klines``: ``btc_spot_prices`` 1m rows from the first target
    start − KLINE_LOOKBACK to the last target end; ``target_starts``: the
    ``window_start`` of every target window. Extra rows (later windows, more
    history) are allowed and never change a result. One row per target (window,
    market) with both a snapshot and a tracked row, sorted by (window_start,
    market_id); the features are defined in the module docstring.
    """
    starts = pl.Series("window_start", list(target_starts), dtype=_US).unique()
    snaps = snapshots.select(_SNAPSHOT_COLUMNS).with_columns(
        *[pl.col(c).cast(_US) for c in _TIMESTAMPS], _window_index()
    )
    terms = tracked.select(_TRACKED_COLUMNS).with_columns(
        pl.col(c).cast(_US) for c in _TRACKED_TIMESTAMPS
    )
    rows = snaps.filter(pl.col("window_start").is_in(starts.implode())).join(
        terms, on=["window_start", "market_id"], how="inner", maintain_order="left"
    )
    spot = spot_windows.select(
        pl.col("window_start").cast(_US),
        pl.col("spot_price").alias("btc_spot_price"),
        pl.col("change_24h_pct").alias("btc_24h_change_pct"),
        pl.col("as_of").cast(_US).alias("spot_as_of"),
    )
    rows = (
        _history_features(snaps, rows)
        .join(spot, on="window_start", how="left", maintain_order="left")
        .with_columns(
            pl.col("yes_price").alias("market_probability"),
            (pl.col("yes_price") - 0.5).abs().alias("market_edge"),
            ((pl.col("expiry") - pl.col("window_end")).dt.total_microseconds() / 3.6e9).alias(
                "time_to_expiry_hours"
            ),
        )
    )
    bars = klines.select(pl.col("open_time").cast(_US), "open", "high", "low", "close").unique(
        "open_time", keep="first"
    )
    rows = add_quality(structural_columns(rows, bars))
    # (window index, market rank) order is (window_start, market_id) order; inputs read
    # in that order keep it through the order-preserving joins, and skip the sort.
    order = rows["k"] * (int(rows["market_rank"].max() or 0) + 1) + rows["market_rank"]
    out = rows.select([pl.col(name).cast(dtype) for name, dtype in INDICATOR_SCHEMA.items()])
    return out if order.is_sorted() else out[order.arg_sort()]
