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


def window_klines(
    all_klines: pl.DataFrame, window_start: datetime, window_end: datetime
) -> pl.DataFrame:
    """The klines opening inside [window_start, window_end), tagged with the window."""
    inside = all_klines.filter(
        (pl.col("open_time") >= window_start) & (pl.col("open_time") < window_end)
    )
    return inside.with_columns(
        pl.lit(window_start, dtype=pl.Datetime("us")).alias("window_start")
    ).select(list(KLINE_SCHEMA))


def window_stats(
    all_klines: pl.DataFrame,
    window_start: datetime,
    window_end: datetime,
    ticker: Ticker24h | None = None,
) -> pl.DataFrame:
    """One ``btc_spot_windows`` row: spot at the window end, window OHLC, 24 h stats.

    Empty when the window has no klines (nothing is invented).
    """
    inside = window_klines(all_klines, window_start, window_end)
    if inside.is_empty():
        return pl.DataFrame(schema=WINDOW_SCHEMA)
    day = all_klines.filter(
        (pl.col("open_time") >= window_end - DAY) & (pl.col("open_time") < window_end)
    )
    close = float(inside["close"][-1])
    if ticker is not None:
        row = {
            "as_of": ticker.timestamp,
            "spot_price": ticker.last,
            "change_24h_pct": ticker.change_pct,
            "high_24h": ticker.high,
            "low_24h": ticker.low,
            "volume_24h": ticker.base_volume,
            "source": "ticker",
        }
    else:
        day_open = float(day["open"][0])
        row = {
            "as_of": window_end,
            "spot_price": close,
            "change_24h_pct": (close - day_open) / day_open * 100.0,
            "high_24h": float(day["high"].max()),
            "low_24h": float(day["low"].min()),
            "volume_24h": float(day["volume"].sum()),
            "source": "klines",
        }
    row |= {
        "window_start": window_start,
        "window_end": window_end,
        "window_open": float(inside["open"][0]),
        "window_high": float(inside["high"].max()),
        "window_low": float(inside["low"].min()),
        "window_close": close,
    }
    return pl.DataFrame([row], schema=WINDOW_SCHEMA)
