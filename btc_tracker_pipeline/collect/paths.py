"""Minute paths: each up/down market's YES price at every minute of a window that lies
inside the market's own window, beside BTC spot at that minute.

A 15-minute cadence sees a 15-minute market once, at its open, and a 5-minute market
never. ``market_paths`` keeps what happened inside each window instead: one row per
(market, minute) with ``minute_ts`` in [max(window_start, reference_start),
min(window_end, expiry)) on whole minutes, so a 15-minute market has 15 rows in its
window (offsets 0–14), a 5-minute market 5, an hourly market 15 in each of its 4 windows.

- ``price``: the newest CLOB prices-history point (1-minute fidelity) at or before
  ``minute_ts``, no older than the run's quote age limit; ``quote_ts`` and
  ``quote_age_s`` say which point it was. No such point: ``price`` is null.
- ``btc_close``: the close of the Binance 1-minute candle that ends at ``minute_ts``
  (opens one minute before), the spot as of that minute; null where the candle is
  missing.

Only data at or before ``minute_ts`` is in a row, so a row can be used as of its minute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import polars as pl

from btc_tracker_pipeline.collect.snapshots import EPOCH, Histories
from btc_tracker_pipeline.sources.models import PricePoint
from btc_tracker_pipeline.warehouse.tables import polars_schema

# The families whose paths are collected unless the run's config names others.
PATH_FAMILIES: tuple[str, ...] = (
    "updown_5m",
    "updown_15m",
    "updown_1h",
    "updown_4h",
    "updown_daily",
)
MINUTE = timedelta(minutes=1)

PATH_SCHEMA: dict[str, pl.DataType] = polars_schema("market_paths")
_MINUTE_KEYS = ("window_start", "window_end", "market_id", "family", "yes_token_id")


def path_candidates(
    tracked: pl.DataFrame, windows: Sequence[tuple[datetime, datetime]]
) -> pl.DataFrame:
    """Every (window, market) of ``windows`` whose own window [reference_start, expiry)
    overlaps it, for the markets of ``tracked`` (``tracked_markets`` rows from any window:
    ``warehouse.read.path_terms``; the newest row of a market gives its terms), as rows
    of the run's windows.

    A live tick's ``tracked_markets`` lists the markets open at the tick: a 5-minute
    market that closed inside the window just ended is not among them, but an earlier
    tick listed it (up/down markets are created ahead), so its path is still taken.
    """
    terms = (
        tracked.filter(pl.col("reference_start").is_not_null() & pl.col("expiry").is_not_null())
        .sort("window_start")
        .unique("market_id", keep="last", maintain_order=True)
        .drop("window_start", "window_end")
    )
    frame = pl.DataFrame(
        list(windows),
        schema={"window_start": pl.Datetime("us"), "window_end": pl.Datetime("us")},
        orient="row",
    )
    return (
        frame.join(terms, how="cross")
        .filter(
            (pl.col("reference_start") < pl.col("window_end"))
            & (pl.col("expiry") > pl.col("window_start"))
        )
        .sort("window_start", "market_id")
    )


def path_minutes(tracked: pl.DataFrame, families: Sequence[str] = PATH_FAMILIES) -> pl.DataFrame:
    """Every (window, market, minute) a path row is due for: the ``tracked_markets`` rows
    of ``families`` with a reference start, an expiry and a YES token, one row per whole
    minute in [max(window_start, reference_start), min(window_end, expiry)).

    Columns: window_start, window_end, market_id, family, yes_token_id, minute_ts,
    offset_min (whole minutes since reference_start), minutes_left (to expiry).
    """
    rows = tracked.filter(
        pl.col("family").is_in(list(families))
        & pl.col("reference_start").is_not_null()
        & pl.col("expiry").is_not_null()
        & pl.col("yes_token_id").is_not_null()
    ).with_columns(
        pl.max_horizontal("window_start", "reference_start").dt.truncate("1m").alias("_lo"),
        pl.min_horizontal("window_end", "expiry").alias("_hi"),
    )
    # A start between whole minutes: its first minute is the next whole one.
    rows = rows.with_columns(
        pl.when(pl.col("_lo") < pl.max_horizontal("window_start", "reference_start"))
        .then(pl.col("_lo") + pl.duration(minutes=1))
        .otherwise(pl.col("_lo"))
        .alias("_lo")
    ).filter(pl.col("_lo") < pl.col("_hi"))
    minutes = (
        rows.with_columns(
            pl.datetime_ranges("_lo", "_hi", interval="1m", closed="left", time_unit="us").alias(
                "minute_ts"
            )
        )
        .explode("minute_ts")
        .select(
            *_MINUTE_KEYS,
            "minute_ts",
            ((pl.col("minute_ts") - pl.col("reference_start")).dt.total_seconds() // 60)
            .cast(pl.Int32)
            .alias("offset_min"),
            ((pl.col("expiry") - pl.col("minute_ts")).dt.total_seconds() / 60.0).alias(
                "minutes_left"
            ),
        )
    )
    return minutes.sort("window_start", "market_id", "minute_ts")


def points_frame(points: Mapping[str, Sequence[PricePoint]]) -> pl.DataFrame:
    """Prices-history points per token as one frame (yes_token_id, t, p), sorted by t;
    of equal timestamps the last wins, as a bisect over the points does."""
    frame = pl.DataFrame(
        [(token, p.t, p.p) for token, token_points in points.items() for p in token_points],
        schema={"yes_token_id": pl.String, "t": pl.Int64, "p": pl.Float64},
        orient="row",
    )
    return frame.unique(["yes_token_id", "t"], keep="last", maintain_order=True).sort("t")


def path_rows(
    minutes: pl.DataFrame, histories: Histories, klines: pl.DataFrame, source: str = "history"
) -> pl.DataFrame:
    """``market_paths`` rows for ``minutes`` (``path_minutes``): the price as of each
    minute from ``histories`` (no older than ``histories.max_age``) and the close of the
    1-minute kline ending at the minute from ``klines`` (open_time, close).

    Every minute gets a row, priced or not, unless its token's fetch failed
    (``histories.errors``): those minutes get none, so a rerun of the window can fill
    them.
    """
    failed = list(histories.errors)
    due = minutes.filter(~pl.col("yes_token_id").is_in(failed))
    at = (pl.col("minute_ts") - pl.lit(EPOCH)).dt.total_seconds().cast(pl.Int64)
    quoted = (
        due.with_columns(at.alias("_at"))
        .sort("_at")
        .join_asof(
            points_frame(histories.points),
            left_on="_at",
            right_on="t",
            by="yes_token_id",
            strategy="backward",
            check_sortedness=False,  # both sides are sorted on the asof key
        )
        .with_columns(
            (
                pl.col("t").is_not_null()
                & (pl.col("_at") - pl.col("t") <= histories.max_age.total_seconds())
            ).alias("_fresh")
        )
    )
    spot = klines.select(
        (pl.col("open_time") + pl.duration(minutes=1)).cast(pl.Datetime("us")).alias("minute_ts"),
        pl.col("close").alias("btc_close"),
    ).unique("minute_ts", keep="last")
    return (
        quoted.join(spot, on="minute_ts", how="left")
        .select(
            "window_start",
            "window_end",
            "market_id",
            "minute_ts",
            "family",
            "yes_token_id",
            "offset_min",
            "minutes_left",
            pl.when("_fresh").then(pl.col("p")).alias("price"),
            pl.when("_fresh")
            .then(pl.from_epoch("t", time_unit="s").cast(pl.Datetime("us")))
            .alias("quote_ts"),
            pl.when("_fresh")
            .then((pl.col("_at") - pl.col("t")).cast(pl.Float64))
            .alias("quote_age_s"),
            "btc_close",
            pl.lit(source).alias("source"),
        )
        .cast(PATH_SCHEMA)
        .sort("window_start", "market_id", "minute_ts")
    )


def path_errors(minutes: pl.DataFrame, histories: Histories) -> pl.DataFrame:
    """One (window_start, error) per (window, market) whose token's fetch failed."""
    reasons = pl.DataFrame(
        {"yes_token_id": list(histories.errors), "reason": list(histories.errors.values())},
        schema={"yes_token_id": pl.String, "reason": pl.String},
    )
    return (
        minutes.select("window_start", "market_id", "yes_token_id")
        .unique(maintain_order=True)
        .join(reasons, on="yes_token_id", how="inner", maintain_order="left")
        .select("window_start", pl.format("market {}: {}", "market_id", "reason").alias("error"))
    )
