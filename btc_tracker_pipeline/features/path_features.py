"""In-window features of up/down markets, minute by minute, from their minute paths.

What a desk watches inside a short up/down window, for each path minute t of a market
with open time t₀ and expiry T (``collect.paths``):

- ``open_price``: BTC as of the open, the close of the 1-minute candle ending at t₀
  (the price to beat; Chainlink's open is within a few dollars of it).
- ``path_sigma``: BTC's annualised realised volatility over the 24 h before t₀
  (``structural.realized_vol``), fixed for the whole window so it uses nothing after
  the open.
- ``minutes_left`` = T − t in minutes; τ = ``minutes_left`` / 525,600 years.
- ``move_sigma`` = ln(S_t / ``open_price``) / (σ √τ): the move since the open in units
  of what is left to move. Up wins iff S_T ≥ S_open, so with no drift
  P(Up) = Φ(``move_sigma``): ``structural_probability``.
- ``market_probability``: the market's YES price as of t (``market_paths.price``).
- the market's lag against spot, for k = 1, 3, 5 minutes: ``spot_move_{k}m`` (the
  change of logit Φ(z) over the last k minutes, i.e. what spot alone moved the fair
  value by), ``market_move_{k}m`` (the change of the market's logit price over the same
  minutes) and ``lag_{k}m`` = spot move − market move: positive when the market has not
  yet followed a rise of spot. Null where t − k is before the open (no in-window
  history yet) or a price is missing.

Every value of a row uses only data timestamped at or before its minute t: prices as
of t, candles that closed by t, and a volatility that closed at t₀.

Training and the live edge first take spot and time left **as of the quote**
(``as_of_quote``): a prices-history quote is up to a minute old, and spot at the row's
minute against a price a minute older would show a lag of the data, not of the market
(a fill gets that older price). Measured on a lag world, that mistake made the model
beat the oracle.
"""

from __future__ import annotations

import polars as pl

from btc_tracker_pipeline.features.structural import MINUTES_PER_YEAR, normal_cdf, realized_vol

LAG_MINUTES: tuple[int, ...] = (1, 3, 5)
# Logits of probabilities clipped to [0.005, 0.995] (as model.dataset.logit).
_CLIP = 0.005

PATH_FEATURES: list[str] = [
    "minutes_left",
    "move_sigma",
    *(f"{kind}_{k}m" for k in LAG_MINUTES for kind in ("spot_move", "market_move", "lag")),
]
# The columns of ``path_features``' result, besides the path's own.
PATH_FEATURE_COLUMNS: list[str] = [
    "open_price",
    "path_sigma",
    "market_probability",
    "structural_probability",
    *PATH_FEATURES,
]


def _logit(expr: pl.Expr) -> pl.Expr:
    p = expr.cast(pl.Float64).clip(_CLIP, 1.0 - _CLIP)
    return (p / (1.0 - p)).log()


def as_of_quote(paths: pl.DataFrame, klines: pl.DataFrame) -> pl.DataFrame:
    """``paths`` with ``btc_close`` and ``minutes_left`` as of each row's quote: the
    close of the candle ending at the quote's minute (``quote_ts`` floored to the minute;
    the row's minute when it has no quote) and the minutes from then to ``expiry``.
    ``klines``: open_time, close; a missing candle gives a null close."""
    spot_ts = pl.coalesce(pl.col("quote_ts").dt.truncate("1m"), pl.col("minute_ts"))
    closes = klines.select(
        (pl.col("open_time") + pl.duration(minutes=1)).cast(pl.Datetime("us")).alias("_spot_ts"),
        pl.col("close").cast(pl.Float64).alias("btc_close"),
    ).unique("_spot_ts", keep="last")
    return (
        paths.drop("btc_close", strict=False)
        .with_columns(spot_ts.cast(pl.Datetime("us")).alias("_spot_ts"))
        .join(closes, on="_spot_ts", how="left", maintain_order="left")
        .with_columns(
            ((pl.col("expiry") - pl.col("_spot_ts")).dt.total_seconds() / 60.0).alias(
                "minutes_left"
            )
        )
        .drop("_spot_ts")
    )


def path_features(paths: pl.DataFrame, klines: pl.DataFrame) -> pl.DataFrame:
    """``paths`` (``market_paths`` rows, plus ``reference_start`` and ``expiry`` of each
    market) with the columns of ``PATH_FEATURE_COLUMNS`` added, one row per (market,
    minute), sorted by market then minute.

    ``klines``: BTC 1-minute klines (open_time, open, high, low, close) covering the 24 h
    before the earliest open to the latest minute. A minute in two windows' rows is
    kept once.
    """
    rows = paths.unique(["market_id", "minute_ts"], keep="last").sort("market_id", "minute_ts")
    if rows.is_empty():
        return rows.with_columns(
            [pl.lit(None, dtype=pl.Float64).alias(name) for name in PATH_FEATURE_COLUMNS]
        )
    opens = rows["reference_start"].unique().sort()
    sigma = realized_vol(klines, opens).rename(
        {"window_end": "reference_start", "realized_vol": "path_sigma"}
    )
    open_close = klines.select(
        (pl.col("open_time") + pl.duration(minutes=1))
        .cast(pl.Datetime("us"))
        .alias("reference_start"),
        pl.col("close").alias("open_price"),
    ).unique("reference_start", keep="last")
    tau = pl.col("minutes_left") / MINUTES_PER_YEAR
    z = (pl.col("btc_close") / pl.col("open_price")).log() / (pl.col("path_sigma") * tau.sqrt())
    framed = (
        rows.join(sigma, on="reference_start", how="left")
        .join(open_close, on="reference_start", how="left")
        .with_columns(
            pl.col("price").alias("market_probability"),
            pl.when(pl.col("minutes_left") > 0).then(z).alias("move_sigma"),
        )
        .with_columns(normal_cdf(pl.col("move_sigma")).alias("structural_probability"))
        .with_columns(
            _logit(pl.col("structural_probability")).alias("_ls"),
            _logit(pl.col("market_probability")).alias("_lp"),
        )
    )
    lags = []
    for k in LAG_MINUTES:
        earlier = framed.select(
            "market_id",
            (pl.col("minute_ts") + pl.duration(minutes=k)).alias("minute_ts"),
            pl.col("_ls").alias(f"_ls{k}"),
            pl.col("_lp").alias(f"_lp{k}"),
        )
        framed = framed.join(earlier, on=["market_id", "minute_ts"], how="left")
        spot, market = pl.col("_ls") - pl.col(f"_ls{k}"), pl.col("_lp") - pl.col(f"_lp{k}")
        lags += [
            spot.alias(f"spot_move_{k}m"),
            market.alias(f"market_move_{k}m"),
            (spot - market).alias(f"lag_{k}m"),
        ]
    return (
        framed.with_columns(lags)
        .drop("_ls", "_lp", *(f"_l{s}{k}" for k in LAG_MINUTES for s in ("s", "p")))
        .sort("market_id", "minute_ts")
    )
