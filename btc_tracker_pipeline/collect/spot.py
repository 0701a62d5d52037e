"""BTC/USDT spot per window: the window's 1-minute klines and the 24 h stats at its end.

Live windows take the 24 h stats from Binance's ticker; history windows compute
the same columns from the 1-minute klines of the 24 h before the window end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from btc_tracker_pipeline.sources.models import Kline, Ticker24h
from btc_tracker_pipeline.warehouse.tables import polars_schema

DAY = timedelta(hours=24)
WINDOW = timedelta(minutes=15)

KLINE_SCHEMA: dict[str, pl.DataType] = polars_schema("btc_spot_prices")

WINDOW_SCHEMA: dict[str, pl.DataType] = polars_schema("btc_spot_windows")


def klines_frame(klines: Sequence[Kline]) -> pl.DataFrame:
    """All fetched 1-minute klines as a frame sorted by open time (window_start unset)."""
    frame = pl.DataFrame(
        {
            "open_time": [k.open_time for k in klines],
            "open": [k.open for k in klines],
            "high": [k.high for k in klines],
            "low": [k.low for k in klines],
            "close": [k.close for k in klines],
            "volume": [k.volume for k in klines],
        },
        schema={k: v for k, v in KLINE_SCHEMA.items() if k != "window_start"},
    )
    return frame.unique("open_time").sort("open_time")


def window_stats(
    all_klines: pl.DataFrame,
    window_start: datetime,
    window_end: datetime,
    ticker: Ticker24h | None = None,
) -> pl.DataFrame:
    """One ``btc_spot_windows`` row: spot at the window end, window OHLC, 24 h stats
    (``range_stats`` for one window). Empty when the window has no klines (nothing is
    invented)."""
    return range_stats(all_klines, [(window_start, window_end)], ticker)


def range_klines(
    all_klines: pl.DataFrame, windows: Sequence[tuple[datetime, datetime]]
) -> pl.DataFrame:
    """The klines opening inside the run's windows, each tagged with its window."""
    start, end = windows[0][0], windows[-1][1]
    inside = all_klines.filter((pl.col("open_time") >= start) & (pl.col("open_time") < end))
    return inside.with_columns(pl.col("open_time").dt.truncate("15m").alias("window_start")).select(
        list(KLINE_SCHEMA)
    )


def range_stats(
    all_klines: pl.DataFrame,
    windows: Sequence[tuple[datetime, datetime]],
    ticker: Ticker24h | None = None,
) -> pl.DataFrame:
    """``btc_spot_windows`` rows of the run's windows: spot at each window end, the
    window's OHLC and the 24 h stats (from ``ticker`` for a live window, else from the
    klines of the 24 h before the window end). A window without klines gets no row."""
    inside = range_klines(all_klines, windows).sort("open_time")
    ohlc = (
        inside.group_by("window_start", maintain_order=True)
        .agg(
            pl.col("open").first().alias("window_open"),
            pl.col("high").max().alias("window_high"),
            pl.col("low").min().alias("window_low"),
            pl.col("close").last().alias("window_close"),
        )
        .with_columns((pl.col("window_start") + WINDOW).alias("window_end"))
    )
    if ticker is not None:
        day = ohlc.select(
            "window_start",
            pl.lit(ticker.timestamp, dtype=pl.Datetime("us")).alias("as_of"),
            pl.lit(ticker.last, dtype=pl.Float64).alias("spot_price"),
            pl.lit(ticker.change_pct, dtype=pl.Float64).alias("change_24h_pct"),
            pl.lit(ticker.high, dtype=pl.Float64).alias("high_24h"),
            pl.lit(ticker.low, dtype=pl.Float64).alias("low_24h"),
            pl.lit(ticker.base_volume, dtype=pl.Float64).alias("volume_24h"),
            pl.lit("ticker").alias("source"),
        )
    else:
        # Each window end against the klines of the 24 h before it (<= 96 x 2,880 pairs).
        ends = ohlc.select("window_start", "window_end", "window_close")
        day = (
            ends.join(all_klines.sort("open_time"), how="cross")
            .filter(
                (pl.col("open_time") >= pl.col("window_end") - DAY)
                & (pl.col("open_time") < pl.col("window_end"))
            )
            .group_by("window_start", maintain_order=True)
            .agg(
                pl.col("window_end").first().alias("as_of"),
                pl.col("window_close").first().alias("spot_price"),
                pl.col("open").first().alias("day_open"),
                pl.col("high").max().alias("high_24h"),
                pl.col("low").min().alias("low_24h"),
                pl.col("volume").sort_by("open_time").sum().alias("volume_24h"),
            )
            .select(
                "window_start",
                "as_of",
                "spot_price",
                ((pl.col("spot_price") - pl.col("day_open")) / pl.col("day_open") * 100.0).alias(
                    "change_24h_pct"
                ),
                "high_24h",
                "low_24h",
                "volume_24h",
                pl.lit("klines").alias("source"),
            )
        )
    return (
        ohlc.join(day, on="window_start", how="left")
        .select(list(WINDOW_SCHEMA))
        .cast(WINDOW_SCHEMA)
    )
