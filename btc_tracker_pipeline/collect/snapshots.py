"""One ``market_snapshots`` row per tracked market per window.

Two paths give the same columns:
- live (the window just ended): Gamma's own quote fields, fetched now;
- history (older windows): the CLOB prices-history point at or before the window
  end, fetched once per token for a whole run (≤15-day requests, docs/apis.md §2.1).
History has no book, volume or liquidity: those columns are null there.

Every row keeps ``quote_age_s`` = ``snapshot_ts`` − ``quote_ts`` in seconds: up to the
staleness limit on history rows (``MAX_QUOTE_AGE`` by default, a run can raise it for
hourly histories), a few seconds below zero on live rows (fetched just after the window
end).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from btc_tracker_pipeline.sources.clob import ClobClient
from btc_tracker_pipeline.sources.errors import ApiError
from btc_tracker_pipeline.sources.models import GammaMarket, PricePoint
from btc_tracker_pipeline.warehouse.tables import polars_schema

# A history point older than this at the window end is no quote at all (the default;
# ``market_snapshots`` takes another limit from its run config or the environment).
MAX_QUOTE_AGE = timedelta(minutes=30)
# Quotes go on until settlement a little after expiry.
SETTLE_AFTER_EXPIRY = timedelta(hours=2)
EPOCH = datetime(1970, 1, 1)

SNAPSHOT_SCHEMA: dict[str, pl.DataType] = polars_schema("market_snapshots")


@dataclass
class Histories:
    """Prices-history per YES token for a run, and the tokens that failed (with why);
    ``max_age`` is the staleness limit ``quote`` applies."""

    points: dict[str, list[PricePoint]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    max_age: timedelta = MAX_QUOTE_AGE
    _times: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def quote(self, token: str, at: datetime) -> PricePoint | None:
        """``quote_at`` on the token's points, with their times indexed once per token."""
        points = self.points.get(token, [])
        times = self._times.get(token)
        if times is None or len(times) != len(points):
            times = self._times[token] = [p.t for p in points]
        return newest_point(points, times, at, self.max_age)


def to_unix(ts: datetime) -> int:
    """Naive-UTC datetime → unix seconds."""
    return int((ts - EPOCH).total_seconds())


def from_unix(t: int) -> datetime:
    """Unix seconds → naive-UTC datetime."""
    return EPOCH + timedelta(seconds=t)


def age_seconds(snapshot_ts: datetime, quote_ts: datetime) -> float:
    """``quote_age_s``: how old the quote is at the snapshot (negative: taken after it)."""
    return (snapshot_ts - quote_ts).total_seconds()


def live_snapshot_frame(
    markets: Sequence[GammaMarket],
    window_start: datetime,
    window_end: datetime,
    fetched_at: datetime,
) -> pl.DataFrame:
    """Snapshot rows from Gamma's live quote fields (docs/apis.md §1.6)."""
    rows = []
    for m in markets:
        yes = no = None
        if m.outcome_prices and len(m.outcome_prices) >= 2:
            yes, no = m.outcome_prices[0], m.outcome_prices[1]
        elif m.last_trade_price is not None:
            yes, no = m.last_trade_price, 1.0 - m.last_trade_price
        if yes is None:
            continue
        rows.append(
            {
                "window_start": window_start,
                "window_end": window_end,
                "market_id": m.id,
                "yes_token_id": m.token_ids[0] if m.token_ids else None,
                "snapshot_ts": window_end,
                "quote_ts": fetched_at,
                "yes_price": yes,
                "no_price": no,
                "best_bid": m.best_bid,
                "best_ask": m.best_ask,
                "spread": m.spread,
                "last_trade_price": m.last_trade_price,
                "volume": m.volume,
                "volume_24h": m.volume_24h,
                "liquidity": m.liquidity,
                "source": "live",
                "quote_age_s": age_seconds(window_end, fetched_at),
            }
        )
    return pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA)


def history_span(
    start_date: datetime | None,
    expiry: datetime | None,
    range_start: datetime,
    range_end: datetime,
    max_age: timedelta = MAX_QUOTE_AGE,
) -> tuple[datetime, datetime] | None:
    """The part of [range_start − max_age, range_end] a token's history is needed for."""
    lo = range_start - max_age
    if start_date is not None:
        lo = max(lo, start_date)
    hi = range_end
    if expiry is not None:
        hi = min(hi, expiry + SETTLE_AFTER_EXPIRY)
    return (lo, hi) if lo < hi else None


def fetch_histories(
    clob: ClobClient,
    spans: Mapping[str, tuple[datetime, datetime]],
    *,
    max_workers: int = 8,
    max_age: timedelta = MAX_QUOTE_AGE,
) -> Histories:
    """Fetch 1-minute prices-history for every token over its span, concurrently.

    A failing token is recorded in ``errors`` and never aborts the others; quotes are
    then taken no older than ``max_age``.
    """
    result = Histories(max_age=max_age)

    def one(token: str) -> tuple[str, list[PricePoint] | None, str | None]:
        lo, hi = spans[token]
        try:
            return token, clob.prices_history(token, lo, hi, fidelity_min=1), None
        except ApiError as exc:
            return token, None, f"{exc.__class__.__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for token, points, error in pool.map(one, sorted(spans)):
            if error is not None:
                result.errors[token] = error
            else:
                result.points[token] = points or []
    return result


def quote_at(
    points: Sequence[PricePoint], at: datetime, max_age: timedelta = MAX_QUOTE_AGE
) -> PricePoint | None:
    """The newest point with ``t <= at`` no older than ``max_age`` (points sorted by t)."""
    return newest_point(points, [p.t for p in points], at, max_age)


def newest_point(
    points: Sequence[PricePoint],
    times: Sequence[int],
    at: datetime,
    max_age: timedelta = MAX_QUOTE_AGE,
) -> PricePoint | None:
    """``quote_at`` given ``times`` = the points' ``t`` (to bisect many times on one list)."""
    i = bisect.bisect_right(times, to_unix(at))
    if i == 0:
        return None
    point = points[i - 1]
    if to_unix(at) - point.t > max_age.total_seconds():
        return None
    return point


def history_snapshot_frame(
    tracked: pl.DataFrame,
    histories: Histories,
    window_start: datetime,
    window_end: datetime,
) -> pl.DataFrame:
    """Snapshot rows for one window from prices-history (``tracked``: that window's rows)
    (``history_snapshots`` for one window)."""
    one_window = tracked.select("market_id", "yes_token_id").with_columns(
        pl.lit(window_start, dtype=pl.Datetime("us")).alias("window_start"),
        pl.lit(window_end, dtype=pl.Datetime("us")).alias("window_end"),
    )
    return history_snapshots(one_window, histories)


def history_snapshots(tracked: pl.DataFrame, histories: Histories) -> pl.DataFrame:
    """Snapshot rows for every tracked (window, market) of a run from prices-history: the
    newest point at or before the window end, no older than ``histories.max_age``.
    ``tracked``: the run's ``tracked_markets`` rows (window_start, window_end, market_id,
    yes_token_id); a market with no such point gets no row."""
    rows = tracked.select("window_start", "window_end", "market_id", "yes_token_id")
    points = pl.DataFrame(
        [
            (token, p.t, p.p)
            for token, token_points in histories.points.items()
            for p in token_points
        ],
        schema={"yes_token_id": pl.String, "t": pl.Int64, "p": pl.Float64},
        orient="row",
    )
    # The last of equal timestamps wins, as a bisect over the points does.
    points = points.unique(["yes_token_id", "t"], keep="last", maintain_order=True).sort(
        "yes_token_id", "t"
    )
    at = (pl.col("window_end") - pl.lit(EPOCH)).dt.total_seconds()
    quoted = (
        rows.with_columns(at.cast(pl.Int64).alias("at"))
        .sort("at")
        .join_asof(
            points.sort("t"),
            left_on="at",
            right_on="t",
            by="yes_token_id",
            strategy="backward",
            check_sortedness=False,  # both sides are sorted on the asof key just above
        )
        .filter(pl.col("t").is_not_null())
        .filter(pl.col("at") - pl.col("t") <= histories.max_age.total_seconds())
    )
    return (
        quoted.select(
            "window_start",
            "window_end",
            "market_id",
            "yes_token_id",
            pl.col("window_end").alias("snapshot_ts"),
            pl.from_epoch("t", time_unit="s").cast(pl.Datetime("us")).alias("quote_ts"),
            pl.col("p").alias("yes_price"),
            (1.0 - pl.col("p")).alias("no_price"),
            *(
                pl.lit(None, dtype=SNAPSHOT_SCHEMA[c]).alias(c)
                for c in (
                    "best_bid",
                    "best_ask",
                    "spread",
                    "last_trade_price",
                    "volume",
                    "volume_24h",
                    "liquidity",
                )
            ),
            pl.lit("history").alias("source"),
            (pl.col("at") - pl.col("t")).cast(pl.Float64).alias("quote_age_s"),
        )
        .cast(SNAPSHOT_SCHEMA)
        .sort("window_start", "market_id")
    )


def missing_quote_errors(
    tracked: pl.DataFrame,
    snapshots: pl.DataFrame,
    token_errors: Mapping[str, str],
    max_age: timedelta,
) -> pl.DataFrame:
    """One (window_start, error) per tracked market of a window that got no snapshot: the
    token's fetch error, the run's (``token_errors["*"]``), or "no quote within …"."""
    missing = tracked.join(
        snapshots.select("window_start", "market_id"), on=["window_start", "market_id"], how="anti"
    )
    fallback = token_errors.get("*") or (
        f"no quote within {max_age.total_seconds() / 60:g} min of the window end"
    )
    reasons = pl.DataFrame(
        {"yes_token_id": list(token_errors), "reason": list(token_errors.values())},
        schema={"yes_token_id": pl.String, "reason": pl.String},
    )
    return (
        missing.sort("window_start", maintain_order=True)
        .join(reasons, on="yes_token_id", how="left", maintain_order="left")
        .select(
            "window_start",
            pl.format(
                "market {}: {}", "market_id", pl.col("reason").fill_null(pl.lit(fallback))
            ).alias("error"),
        )
    )
