"""Which BTC markets were open during a window, and their ``tracked_markets`` rows.

Discovery lists Gamma markets by the bitcoin tag, re-sending the date filters on
every keyset page; history windows add ``closed=true`` because the listing hides
closed markets by default (docs/apis.md §1.2). Explicit ids (the seed's
``--market-ids``) replace the tag search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from btc_tracker_pipeline.features.market_terms import parse_market_terms, settles_on_twap
from btc_tracker_pipeline.sources.gamma import GammaClient
from btc_tracker_pipeline.sources.models import GammaMarket
from btc_tracker_pipeline.warehouse.tables import polars_schema

BITCOIN_TAG_ID = 235
DEFAULT_KEYWORDS = ("bitcoin", "btc")

TRACKED_SCHEMA: dict[str, pl.DataType] = polars_schema("tracked_markets")

MARKETS_SCHEMA: dict[str, pl.DataType] = polars_schema("markets")


@dataclass(frozen=True)
class Discovery:
    """Markets found for a range of windows, and how they were found."""

    markets: list[GammaMarket]
    discovered_by: str
    missing_ids: list[str]
    # "market <id>: <field error>" for market objects that did not parse (skipped).
    malformed: list[str]


def is_btc_market(m: GammaMarket, keywords: Sequence[str] = DEFAULT_KEYWORDS) -> bool:
    """True when the question, slug or event title names Bitcoin (the tag also covers
    a few markets *about* bitcoin companies; the family parse flags those as ``other``)."""
    text = f"{m.question} {m.slug} {m.event_title or ''}".lower()
    return any(k.lower() in text for k in keywords)


def open_during(m: GammaMarket, start: datetime, end: datetime) -> bool:
    """A market is tracked in [start, end) when it was created before the window ended
    and had neither expired nor closed before the window began (a barrier closes the
    day its strike is touched, often weeks before its end date)."""
    created_ok = m.start_date is None or m.start_date < end
    not_expired = m.end_date is None or m.end_date > start
    not_closed = m.closed_time is None or m.closed_time > start
    return created_ok and not_expired and not_closed


def discover(
    gamma: GammaClient,
    range_start: datetime,
    range_end: datetime,
    *,
    include_closed: bool,
    market_ids: Sequence[str] = (),
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
) -> Discovery:
    """Find every BTC market open at some point in [range_start, range_end).

    One keyset listing per ``closed`` state (the two side by side) covers the whole range,
    not one per window.
    A market object that does not parse is skipped and reported, never fatal.
    """
    skipped: list[str] = []

    def skip(raw: object, exc: Exception) -> None:
        market_id = raw.get("id", "?") if isinstance(raw, dict) else "?"
        skipped.append(f"market {market_id}: skipped, {exc}")

    if market_ids:
        found = gamma.get_markets_by_ids(list(market_ids), on_malformed=skip)
        seen = {m.id for m in found}
        missing = [i for i in market_ids if i not in seen]
        return Discovery(found, "ids", missing, skipped)
    filters = {
        "tag_id": BITCOIN_TAG_ID,
        "end_date_min": range_start,
        "start_date_max": range_end,
    }
    listings = (False, True) if include_closed else (False,)
    # The open and the closed listing are independent keyset walks: run them side by
    # side, then merge in the sequential order (closed answers win, skips in order).
    with ThreadPoolExecutor(max_workers=len(listings)) as pool:
        answers = list(pool.map(lambda closed: _listing(gamma, closed, filters), listings))
    markets: dict[str, GammaMarket] = {}
    for found, bad in answers:
        for raw, exc in bad:
            skip(raw, exc)
        for m in found:
            if is_btc_market(m, keywords):
                markets[m.id] = m
    return Discovery(sorted(markets.values(), key=lambda m: int(m.id)), "tag", [], skipped)


def _listing(
    gamma: GammaClient, closed: bool, filters: dict[str, object]
) -> tuple[list[GammaMarket], list[tuple[object, Exception]]]:
    """Every market of one keyset listing, and the objects that did not parse."""
    bad: list[tuple[object, Exception]] = []
    found = list(
        gamma.iter_markets(lambda raw, exc: bad.append((raw, exc)), closed=closed, **filters)
    )
    return found, bad


def tracked_frame(
    markets: Iterable[GammaMarket], window_start: datetime, window_end: datetime, discovered_by: str
) -> pl.DataFrame:
    """``tracked_markets`` rows for one window: the markets open during it, with their terms."""
    return tracked_range(list(markets), [(window_start, window_end)], discovered_by)


def tracked_range(
    markets: Sequence[GammaMarket],
    windows: Sequence[tuple[datetime, datetime]],
    discovered_by: str,
) -> pl.DataFrame:
    """``tracked_markets`` rows for every window of a run: each market in each window it
    was open during (``open_during``, as a polars filter), its terms parsed once."""
    if not markets:
        return pl.DataFrame(schema=TRACKED_SCHEMA)
    spans = pl.DataFrame(
        {"ws": [ws for ws, _ in windows], "we": [we for _, we in windows]},
        schema={"ws": pl.Datetime("us"), "we": pl.Datetime("us")},
    )
    return (
        spans.join(_market_rows(markets, discovered_by), how="cross")
        .filter(
            (pl.col("start_date").is_null() | (pl.col("start_date") < pl.col("we")))
            & (pl.col("end_date").is_null() | (pl.col("end_date") > pl.col("ws")))
            & (pl.col("closed_time").is_null() | (pl.col("closed_time") > pl.col("ws")))
        )
        .rename({"ws": "window_start", "we": "window_end"})
        .select(list(TRACKED_SCHEMA))
    )


def _market_rows(markets: Sequence[GammaMarket], discovered_by: str) -> pl.DataFrame:
    """One row per market: its ``tracked_markets`` columns but the window, and the end and
    close times ``open_during`` reads."""
    rows = []
    for m in markets:
        terms = parse_market_terms(m)
        rows.append(
            {
                "market_id": m.id,
                "slug": m.slug,
                "question": m.question,
                "family": terms.family,
                "direction": terms.direction,
                "strike": terms.strike,
                "strike_high": terms.strike_high,
                "reference_start": terms.reference_start,
                "expiry": terms.expiry,
                "parse_source": terms.parse_source,
                "yes_token_id": m.token_ids[0] if m.token_ids else None,
                "no_token_id": m.token_ids[1] if len(m.token_ids) > 1 else None,
                "condition_id": m.condition_id,
                "event_slug": m.event_slug,
                "series_slug": m.series_slug,
                "start_date": m.start_date,
                "active": m.active,
                "closed": m.closed,
                "fees_enabled": m.fees_enabled,
                "fee_rate": m.fee_rate,
                "fee_exponent": m.fee_exponent,
                "price_to_beat": m.price_to_beat,
                "discovered_by": discovered_by,
                "neg_risk": m.neg_risk,
                "neg_risk_market_id": m.neg_risk_market_id,
                "twap_settled": settles_on_twap(m),
                "end_date": m.end_date,
                "closed_time": m.closed_time,
            }
        )
    schema = {k: v for k, v in TRACKED_SCHEMA.items() if k not in ("window_start", "window_end")}
    return pl.DataFrame(
        rows,
        schema=schema | {"end_date": pl.Datetime("us"), "closed_time": pl.Datetime("us")},
    )


def markets_frame(markets: Iterable[GammaMarket]) -> pl.DataFrame:
    """Rows of the ``markets`` dimension (static facts, keyed by market id)."""
    rows = [
        {
            "market_id": m.id,
            "slug": m.slug,
            "question": m.question,
            "description": m.description,
            "condition_id": m.condition_id,
            "outcomes": ",".join(m.outcomes),
            "yes_token_id": m.token_ids[0] if m.token_ids else None,
            "no_token_id": m.token_ids[1] if len(m.token_ids) > 1 else None,
            "event_id": m.event_id,
            "event_slug": m.event_slug,
            "event_title": m.event_title,
            "series_slug": m.series_slug,
            "start_date": m.start_date,
            "end_date": m.end_date,
            "resolution_source": m.resolution_source,
        }
        for m in markets
    ]
    return pl.DataFrame(rows, schema=MARKETS_SCHEMA)
