"""How deep the book is, and what a stake of a given size pays above the best price.

A taker order larger than the best level walks the book: a $200 buy into a market
with $500 resting near the price fills several ticks above the ask. Our snapshots
keep no book levels, but Gamma's ``liquidity`` (the dollars resting on a market's
book, both sides; ~$14k on a recorded 15-minute up/down market, ~$20k on a 5-minute
one) says how deep it is. The model here, deliberately simple and conservative:

* the book's ``liquidity`` L rests evenly on both sides over ``DEPTH_TICKS`` ticks a
  side (10¢ each way), so each tick of one side holds D = L / (2·DEPTH_TICKS) dollars;
* a stake of S dollars takes S / D ticks of the side it buys, and fills on average
  halfway up them: ``slippage`` = TICK · S / (2·D) per share above the best price.

At the recorded $14k a $200 stake pays 0.14¢ a share; in a thin $500 market, 4¢.

Where a row has no ``liquidity`` (history snapshots have none) the family's median over
the warehouse's live snapshots is assumed (``estimated``; at least ``MIN_SNAPSHOTS``
of them), else ``DEFAULT_LIQUIDITY`` (``default``): $2,000, well under the recorded
books, so a warehouse without live snapshots errs towards costs that are too high.
"""

from __future__ import annotations

import duckdb
import polars as pl

TICK = 0.01
DEPTH_TICKS = 10
DEFAULT_LIQUIDITY = 2_000.0
MIN_SNAPSHOTS = 20
PRICE_MAX = 0.999

# The median live liquidity per family, ordered so the estimate is the same on every run.
LIVE_LIQUIDITY_SQL = """
SELECT t.family, median(s.liquidity) AS liquidity, count(*) AS n_snapshots
FROM market_snapshots s
JOIN tracked_markets t USING (window_start, market_id)
WHERE s.source = 'live' AND s.liquidity > 0
GROUP BY ALL
ORDER BY ALL
"""


def live_liquidity(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """``family, liquidity, n_snapshots``: the median live ``liquidity`` of each family
    with at least MIN_SNAPSHOTS live snapshots."""
    return conn.execute(LIVE_LIQUIDITY_SQL).pl().filter(pl.col("n_snapshots") >= MIN_SNAPSHOTS)


def with_book_liquidity(rows: pl.DataFrame, estimates: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (``family``, optional ``liquidity``) with ``book_liquidity`` (the row's own
    liquidity, else its family's live median, else DEFAULT_LIQUIDITY) and
    ``liquidity_source`` (``book``, ``estimated``, ``default``)."""
    own = (
        pl.col("liquidity").cast(pl.Float64)
        if "liquidity" in rows.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    own = pl.when(own > 0).then(own)
    family = estimates.select(
        pl.col("family").cast(pl.String).alias("_family"), pl.col("liquidity").alias("_estimate")
    )
    return (
        rows.with_columns(pl.col("family").cast(pl.String).alias("_family"), own.alias("_own"))
        .join(family, on="_family", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("_own", "_estimate", pl.lit(DEFAULT_LIQUIDITY)).alias("book_liquidity"),
            pl.when(pl.col("_own").is_not_null())
            .then(pl.lit("book"))
            .when(pl.col("_estimate").is_not_null())
            .then(pl.lit("estimated"))
            .otherwise(pl.lit("default"))
            .alias("liquidity_source"),
        )
        .drop("_family", "_own", "_estimate")
    )


def warehouse_book_liquidity(conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> pl.DataFrame:
    """``with_book_liquidity`` with the live estimates of the warehouse behind ``conn``."""
    return with_book_liquidity(rows, live_liquidity(conn))


def slippage(stake: float, liquidity: float | None) -> float:
    """Average price paid above the best level, per share, by a ``stake`` ($) taking a
    book of ``liquidity`` ($, both sides): TICK·stake / (2·D), D = liquidity / (2·DEPTH_TICKS)
    dollars per tick and side (module docstring). DEFAULT_LIQUIDITY when unknown."""
    depth = (liquidity if liquidity and liquidity > 0 else DEFAULT_LIQUIDITY) / (2 * DEPTH_TICKS)
    return TICK * max(stake, 0.0) / (2.0 * depth)
