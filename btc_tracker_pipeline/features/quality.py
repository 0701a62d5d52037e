"""Data-quality score of one snapshot (the seed's "quality ≥ 0.8" check, made explicit).

Five components, each 0 or 1 (a null input counts as 0), and their mean:

| column | 1 when |
|---|---|
| ``q_fields`` | ``yes_price``, ``volume`` and ``liquidity`` are all present |
| ``q_fresh`` | abs(``quote_age_s``) ≤ 5 minutes (``snapshot_ts`` − ``quote_ts``, seconds) |
| ``q_spread`` | ``best_ask`` − ``best_bid`` is in (0, 0.10] |
| ``q_two_sided`` | ``best_bid`` and ``best_ask`` are present and ``best_bid`` < ``best_ask`` |
| ``q_spot`` | the window has a spot row and its ``as_of`` is within 2 minutes of the window end |
| ``quality_score`` | mean of the five, in {0, 0.2, …, 1} |

History snapshots (CLOB prices-history: no book, volume or liquidity) score at most
0.4 (fresh + spot) by construction: they are genuinely less informative than a
live quote, and the score says so rather than hiding it. A history quote older than
5 minutes (an hourly history read with a raised staleness limit) loses ``q_fresh`` too:
0.2 at most, and the model sees its ``quote_age_s`` besides.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from btc_tracker_pipeline.warehouse.tables import polars_schema

FRESH_QUOTE_AGE = timedelta(minutes=5)
MAX_SPREAD = 0.10
MAX_SPOT_LAG = timedelta(minutes=2)
# Prices are decimal cents in binary floats: 0.55 − 0.45 = 0.10000000000000009.
_SPREAD_TOLERANCE = 1e-9

COMPONENTS = ("q_fields", "q_fresh", "q_spread", "q_two_sided", "q_spot")
# The quality columns of market_indicators.
QUALITY_SCHEMA: dict[str, pl.DataType] = polars_schema(
    "market_indicators", (*COMPONENTS, "quality_score")
)


def _flag(condition: pl.Expr) -> pl.Expr:
    return condition.fill_null(False).cast(pl.Int8)


def quote_age_expr() -> pl.Expr:
    """``quote_age_s``: (``snapshot_ts`` − ``quote_ts``) in seconds; negative when the
    quote was taken after the snapshot time (live quotes, fetched just after the window
    end), null without a quote time."""
    age = pl.col("snapshot_ts") - pl.col("quote_ts")
    return (age.dt.total_microseconds() / 1e6).alias("quote_age_s")


def quality_exprs() -> list[pl.Expr]:
    """The five components (see the module docstring), as Int8 0/1 expressions.

    Reads ``yes_price, volume, liquidity, quote_ts, snapshot_ts, best_bid, best_ask,
    window_end`` and ``spot_as_of`` (the window's ``btc_spot_windows.as_of``, null
    when the window has no spot row).
    """
    bid, ask = pl.col("best_bid"), pl.col("best_ask")
    spread = ask - bid
    return [
        _flag(
            pl.col("yes_price").is_not_null()
            & pl.col("volume").is_not_null()
            & pl.col("liquidity").is_not_null()
        ).alias("q_fields"),
        _flag(quote_age_expr().abs() <= FRESH_QUOTE_AGE.total_seconds()).alias("q_fresh"),
        _flag((spread > 0) & (spread <= MAX_SPREAD + _SPREAD_TOLERANCE)).alias("q_spread"),
        _flag(bid.is_not_null() & ask.is_not_null() & (bid < ask)).alias("q_two_sided"),
        _flag((pl.col("spot_as_of") - pl.col("window_end")).abs() <= MAX_SPOT_LAG).alias("q_spot"),
    ]


def add_quality(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the QUALITY_SCHEMA columns added (inputs: see ``quality_exprs``)."""
    return frame.with_columns(quality_exprs()).with_columns(
        (pl.sum_horizontal(*COMPONENTS).cast(pl.Float64) / len(COMPONENTS)).alias("quality_score")
    )
