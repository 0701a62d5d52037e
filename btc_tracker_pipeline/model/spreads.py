"""The spread to assume where a row has no book: estimated from the warehouse's live books.

History snapshots (CLOB prices-history) carry a price but no bid or ask. Trading them at
that price would be optimistic: real books on BTC up/down markets are 2–3¢ wide on
average (6,747 recorded quotes of hourly up/down markets: mean 2.7¢, max 15¢, 71 %
wider than 2¢). So the edge report and paper trades assume a spread around the price:

1. **Estimated** from the warehouse's own live snapshots (``market_snapshots`` rows with
   ``source = 'live'`` and a two-sided book, ``best_ask > best_bid``): the mean
   ``best_ask − best_bid`` per family and price level. The level counts the mid's
   distance d from 0.5 in 10¢ steps: 0 for d < 0.05, 1 for 0.05 ≤ d < 0.15, …, 5 for
   d ≥ 0.45 (a mid below 0.05 or above 0.95). YES at p and NO at 1 − p are the same
   book, so the two sides of 0.5 share a level. A (family, level) with fewer than ``MIN_QUOTES``
   quotes falls back to the family's mean over all levels (again ≥ ``MIN_QUOTES``).
2. **Default** otherwise: ``DEFAULT_SPREAD`` = 3¢, a little above the recorded mean so
   a warehouse without live books errs towards costs that are too high, not too low.

Estimates are never below one tick (1¢). Families are not pooled with each other: thin
markets (far strikes, weekly barriers) are wider than up/down books, and borrowing the
up/down estimate for them would understate their cost.
"""

from __future__ import annotations

import duckdb
import polars as pl

DEFAULT_SPREAD = 0.03
TICK = 0.01
LEVEL_WIDTH = 0.1
N_LEVELS = 6
MIN_QUOTES = 20

ESTIMATE_SCHEMA: dict[str, pl.DataType] = {
    "family": pl.String(),
    "level": pl.Int8(),  # null: the family over all levels
    "spread": pl.Float64(),
    "n_quotes": pl.Int64(),
}

# Two-sided live books beside their market's family, counted per distinct (bid, ask):
# prices are on the tick, so a few hundred rows stand for months of live snapshots and
# every edge report (each tick) reads those, not every snapshot. Ordered, so the means
# come out the same to the last bit on every run.
LIVE_BOOKS_SQL = """
SELECT t.family, s.best_bid, s.best_ask, count(*) AS n
FROM market_snapshots s
JOIN tracked_markets t USING (window_start, market_id)
WHERE s.source = 'live' AND s.best_bid IS NOT NULL AND s.best_ask IS NOT NULL
  AND s.best_ask > s.best_bid
GROUP BY ALL
ORDER BY ALL
"""


def level_expr(price: pl.Expr) -> pl.Expr:
    """Price level of ``price``: floor((|price − 0.5| + 0.05) / 0.1), 0 … 5 (module docstring)."""
    # round(…, 9): 0.65 − 0.5 is 0.15000000000000002 in floats; a level boundary is a tick.
    distance = ((price - 0.5).abs() + LEVEL_WIDTH / 2).round(9)
    return (distance / LEVEL_WIDTH).floor().clip(0, N_LEVELS - 1).cast(pl.Int8)


def live_books(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``family, best_bid, best_ask, n``: the two-sided live snapshots of the warehouse,
    ``n`` of each book."""
    return conn.execute(LIVE_BOOKS_SQL).pl()


def estimate_spreads(books: pl.DataFrame, min_quotes: int = MIN_QUOTES) -> pl.DataFrame:
    """Mean spread per (family, level) and per family (``level`` null), from ``books``
    (``family, best_bid, best_ask``, and ``n``: how many quotes each row stands for, 1 if
    absent); only cells with at least ``min_quotes`` quotes.
    Columns: ESTIMATE_SCHEMA, sorted by family then level (family rows first)."""
    count = pl.col("n") if "n" in books.columns else pl.lit(1)
    quotes = books.filter(pl.col("best_ask") > pl.col("best_bid")).select(
        pl.col("family").cast(pl.String),
        level_expr((pl.col("best_bid") + pl.col("best_ask")) / 2).alias("level"),
        (pl.col("best_ask") - pl.col("best_bid")).alias("spread"),
        count.cast(pl.Int64).alias("n"),
    )
    cells = [
        quotes.group_by("family", "level"),
        quotes.with_columns(pl.lit(None, dtype=pl.Int8).alias("level")).group_by("family", "level"),
    ]
    return (
        pl.concat(
            [
                g.agg(
                    ((pl.col("spread") * pl.col("n")).sum() / pl.col("n").sum()).alias("spread"),
                    pl.col("n").sum().alias("n_quotes"),
                )
                for g in cells
            ]
        )
        .filter(pl.col("n_quotes") >= min_quotes)
        .with_columns(pl.col("spread").clip(lower_bound=TICK))
        .select([pl.col(name).cast(dtype) for name, dtype in ESTIMATE_SCHEMA.items()])
        .sort("family", "level", nulls_last=False)
    )


def with_spread_estimates(rows: pl.DataFrame, estimates: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (``family``, ``market_prob``) with ``spread_estimate``: the (family, level)
    estimate at the row's price, else the family's, else null (the edge report then
    assumes ``EdgeConfig.default_spread``)."""
    by_level = estimates.filter(pl.col("level").is_not_null()).select(
        "family", "level", pl.col("spread").alias("_by_level")
    )
    by_family = estimates.filter(pl.col("level").is_null()).select(
        "family", pl.col("spread").alias("_by_family")
    )
    return (
        rows.with_columns(
            pl.col("family").cast(pl.String).alias("_family"),
            level_expr(pl.col("market_prob")).alias("_level"),
        )
        .join(
            by_level,
            left_on=["_family", "_level"],
            right_on=["family", "level"],
            how="left",
            maintain_order="left",
        )
        .join(by_family, left_on="_family", right_on="family", how="left", maintain_order="left")
        .with_columns(pl.coalesce("_by_level", "_by_family").alias("spread_estimate"))
        .drop("_family", "_level", "_by_level", "_by_family")
    )


def warehouse_spread_estimates(conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> pl.DataFrame:
    """``with_spread_estimates`` with the estimates of the warehouse behind ``conn``."""
    return with_spread_estimates(rows, estimate_spreads(live_books(conn)))
