"""Resolution labels: which BTC markets settled in a window, who won, and a check of
each label against BTC/USDT 1-minute klines. Pure code, no Dagster import.

A market is *resolved* when Gamma shows it closed with one-hot ``outcomePrices``
(docs/apis.md §1.7); ``umaResolutionStatus`` confirms that but is often absent, so it
is recorded, never required. Closed markets with 50/50 or all-zero prices are
*void*; any other closed market (e.g. prices still 0.995/0.005) is *unsettled*.

The settle time is ``closedTime`` (``endDate`` when Gamma omits it). Listing is one
keyset pass over a whole range of windows, ordered by ``closedTime`` so that a barrier
that resolved weeks before its ``endDate`` is found like any other; each window then
takes the markets whose settle time falls in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import polars as pl

from btc_tracker_pipeline.collect.discovery import BITCOIN_TAG_ID, is_btc_market
from btc_tracker_pipeline.features.market_terms import parse_market_terms
from btc_tracker_pipeline.partitions import WINDOW, floor_to_window
from btc_tracker_pipeline.sources.gamma import MARKETS_PAGE_LIMIT, GammaClient
from btc_tracker_pipeline.sources.models import GammaMarket
from btc_tracker_pipeline.warehouse.tables import polars_schema

ResolutionStatus = Literal["resolved", "void", "unsettled"]

# docs/apis.md §1.7: one price >= 0.999 and the rest <= 0.001 counts as one-hot
# (nautilus_trader's strict rule); 0.995/0.005 is a pre-settlement drift, not a result.
WINNER_MIN = 0.999
LOSER_MAX = 0.001
SOURCE = "gamma"
UPDOWN_FAMILIES = ("updown_5m", "updown_15m", "updown_1h", "updown_4h", "updown_daily")
# docs/apis.md §1.8: these settle on Chainlink BTC/USD, so Binance klines are a proxy.
CHAINLINK_FAMILIES = ("updown_5m", "updown_15m", "updown_4h")
MINUTE = timedelta(minutes=1)
# A Chainlink-settled label the Binance klines contradict is a *close call* (a feed
# difference, the label stands) when the Binance move over the window is at most
# CLOSE_CALL_USD dollars or at most CLOSE_CALL_BPS basis points of the start price;
# beyond both it is a disagreement. Why these bounds: at one instant Chainlink's BTC/USD
# (a median over exchanges, reported at the second; a 60-second TWAP since Aug 2026) and
# Binance's BTC/USDT 1m open/close (one exchange's first/last trade of the minute) differ
# by the spread between exchanges (1-3 bp), the price moved while their timestamps
# differ (about 1 bp per second in a busy minute; a 60 s average vs a point: about 5 bp
# at 60 % volatility) and the USDT/USD basis (which cancels between the two ends of a
# window). A few bp per print, so up to about 10 bp on a move measured between two
# prints. The dollar floor covers low prices, where a few dollars of spread and rounding
# exceed 10 bp. The close calls measured on real markets were moves of a few dollars
# (docs/apis.md §3.8), far inside both bounds.
CLOSE_CALL_USD = 25.0
CLOSE_CALL_BPS = 10.0

# market_resolutions rows as Gamma gives them: the labels asset adds the label_check
# columns (defs/labels LABEL_SCHEMA, the whole table).
RESOLUTION_SCHEMA: dict[str, pl.DataType] = polars_schema(
    "market_resolutions", exclude=("label_check", "label_check_detail")
)

CROSSCHECK_SCHEMA: dict[str, pl.DataType] = {
    "market_id": pl.String(),
    "family": pl.String(),
    "rule": pl.String(),
    "label_yes_won": pl.Boolean(),
    "klines_yes_won": pl.Boolean(),
    "agrees": pl.Boolean(),
    "verdict": pl.String(),
    "move_usd": pl.Float64(),
    "move_bps": pl.Float64(),
    "detail": pl.String(),
}
LabelCheck = Literal["agrees", "close_call", "disagrees", "uncheckable"]


# --------------------------------------------------------------------------- labels


def classify_resolution(m: GammaMarket) -> tuple[ResolutionStatus, int | None] | None:
    """``(status, winner index)`` of a closed market, None when it is not closed.

    ``resolved`` with the index of the single price >= 0.999 when every other price is
    <= 0.001; ``void`` for 50/50 or all-zero prices; ``unsettled`` otherwise (§1.7).
    """
    if not m.closed:
        return None
    prices = m.outcome_prices or ()
    winners = [i for i, p in enumerate(prices) if p >= WINNER_MIN]
    if len(winners) == 1 and all(p <= LOSER_MAX for i, p in enumerate(prices) if i != winners[0]):
        return "resolved", winners[0]
    if prices and all(p <= LOSER_MAX for p in prices):
        return "void", None  # §0: legacy ["0","0"]
    if len(prices) == 2 and all(abs(p - 0.5) <= LOSER_MAX for p in prices):
        return "void", None  # §0: ["0.5","0.5"] is a 50/50 (void) settlement
    return "unsettled", None


def settle_time(m: GammaMarket) -> datetime | None:
    """When the market settled for windowing: ``closedTime``, else ``endDate``."""
    return m.closed_time or m.end_date


def settled_in_window(m: GammaMarket, window_start: datetime, window_end: datetime) -> bool:
    """True when the market's settle time (:func:`settle_time`) is in [start, end)."""
    settled = settle_time(m)
    return settled is not None and window_start <= settled < window_end


def settled_at(m: GammaMarket) -> datetime | None:
    """The recorded settle instant: ``closedTime``, else ``umaEndDate``, else None."""
    # GammaMarket has no umaEndDate field yet; read it when parse_market provides it.
    return m.closed_time or getattr(m, "uma_end_date", None)


def _price_text(p: float) -> str:
    text = repr(p)
    return text[:-2] if text.endswith(".0") else text


def outcome_prices_json(m: GammaMarket) -> str | None:
    """The outcome prices as a JSON list of strings, Gamma style (``["0", "1"]``)."""
    if m.outcome_prices is None:
        return None
    return json.dumps([_price_text(p) for p in m.outcome_prices])


def resolution_row(m: GammaMarket, window_start: datetime, window_end: datetime) -> dict[str, Any]:
    """One ``market_resolutions`` row for a closed market (ValueError if it is open)."""
    classified = classify_resolution(m)
    if classified is None:
        raise ValueError(f"market {m.id} is not closed: no resolution")
    status, winner = classified
    won = winner is not None
    return {
        "window_start": window_start,
        "window_end": window_end,
        "market_id": m.id,
        "condition_id": m.condition_id,
        "family": parse_market_terms(m).family,
        "question": m.question,
        "expiry": m.end_date,
        "settled_at": settled_at(m),
        "status": status,
        "winner_outcome": m.outcomes[winner] if won and winner < len(m.outcomes) else None,
        "winning_token_id": m.token_ids[winner] if won and winner < len(m.token_ids) else None,
        "yes_won": (winner == 0) if won else None,
        "outcome_prices": outcome_prices_json(m),
        "uma_resolution_status": m.uma_resolution_status,
        "source": SOURCE,
    }


def resolutions_frame(
    markets: Iterable[GammaMarket], window_start: datetime, window_end: datetime
) -> pl.DataFrame:
    """``market_resolutions`` rows (RESOLUTION_SCHEMA) of the closed markets among
    ``markets`` whose settle time is in [window_start, window_end), by market id
    (``resolutions_range`` for one window)."""
    return resolutions_range(markets, [(window_start, window_end)])


def resolutions_range(
    markets: Iterable[GammaMarket], windows: Sequence[tuple[datetime, datetime]]
) -> pl.DataFrame:
    """``market_resolutions`` rows (RESOLUTION_SCHEMA) of every window of a run: each
    closed market in the window its settle time falls in, by window then market id."""
    start, end = windows[0][0], windows[-1][1]
    settled = {m.id: m for m in markets if m.closed and settled_in_window(m, start, end)}
    rows = []
    for market_id in sorted(settled, key=_id_key):
        window_start = floor_to_window(settle_time(settled[market_id]))  # type: ignore[arg-type]
        rows.append(resolution_row(settled[market_id], window_start, window_start + WINDOW))
    return pl.DataFrame(rows, schema=RESOLUTION_SCHEMA).sort("window_start", maintain_order=True)


def _id_key(market_id: str) -> tuple[int, str]:
    # Gamma ids are decimal strings: order them as numbers.
    return len(market_id), market_id


# --------------------------------------------------------------------------- listing


def find_resolutions(
    gamma: GammaClient,
    range_start: datetime,
    range_end: datetime,
    *,
    max_settle_lag: timedelta = timedelta(days=9),
    market_ids: Sequence[str] = (),
) -> tuple[list[GammaMarket], list[str]]:
    """Closed BTC markets whose settle time is in [range_start, range_end), by id, and
    the messages of market objects that did not parse (skipped, never fatal).

    One ``closed=true`` keyset listing by the bitcoin tag, ordered by ``closedTime``,
    covers the whole range (:func:`closed_in_range`). It has no upper bound on
    ``endDate``: a monthly or yearly barrier ("reach"/"dip", "immediately resolve")
    closes on its touch, weeks or months before its ``endDate``, and is found whatever
    that lead. ``end_date_min = range_start - max_settle_lag`` (settlement can lag
    ``endDate`` by UMA disputes). Explicit ``market_ids`` replace the tag listing.
    """
    skipped: list[str] = []

    def skip(raw: object, exc: Exception) -> None:
        market_id = raw.get("id", "?") if isinstance(raw, dict) else "?"
        skipped.append(f"market {market_id}: skipped, {exc}")

    if market_ids:
        listed: Iterable[GammaMarket] = gamma.get_markets_by_ids(list(market_ids), skip)
    else:
        listed = closed_in_range(
            gamma, skip, range_start, range_end, end_date_min=range_start - max_settle_lag
        )
    found: dict[str, GammaMarket] = {}
    for m in listed:
        if m.closed and settled_in_window(m, range_start, range_end) and is_btc_market(m):
            found[m.id] = m
    return [found[i] for i in sorted(found, key=_id_key)], list(dict.fromkeys(skipped))


def closed_in_range(
    gamma: GammaClient,
    on_malformed: Callable[[object, Exception], None],
    range_start: datetime,
    range_end: datetime,
    *,
    end_date_min: datetime,
) -> Iterator[GammaMarket]:
    """Closed bitcoin-tag markets with ``endDate >= end_date_min``, read by ``closedTime``
    only as far as [range_start, range_end) needs (a superset: filter the result).

    Newest closures first, stopping at the first one before ``range_start``: a live
    tick reads one page. When a full page of closures after ``range_end`` comes first
    (a backfill of the past), the walk starts again oldest first and stops at the first
    closure at or after ``range_end``: it reads the closures since ``end_date_min``,
    never the weeks of markets that closed after the range.
    """
    filters = {
        "closed": True,  # §0/§1.2: closed markets are hidden unless closed=true is sent
        "tag_id": BITCOIN_TAG_ID,
        "end_date_min": end_date_min,
        "order": "closedTime",
    }
    later = 0
    for m in gamma.iter_markets(on_malformed, ascending=False, **filters):
        # A closed market without closedTime (the field is absent on some, §1.6) has no
        # place in the order: a Postgres-style DESC puts such rows first. It is yielded
        # (settled_in_window places it by endDate) and the walk goes on, never stops.
        if m.closed_time is None:
            yield m
            continue
        if m.closed_time < range_start:
            return
        if m.closed_time < range_end:
            yield m
            continue
        later += 1
        if later >= MARKETS_PAGE_LIMIT:
            break
    else:
        return
    for m in gamma.iter_markets(on_malformed, ascending=True, **filters):
        if m.closed_time is not None and m.closed_time >= range_end:
            return
        yield m


# --------------------------------------------------------------------------- cross-check


def _fmt(ts: datetime | None) -> str:
    return "?" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def _candle_lookup(klines: pl.DataFrame) -> dict[datetime, tuple[float, float]]:
    frame = klines.select("open_time", "open", "close").unique("open_time", keep="last")
    return {t: (o, c) for t, o, c in frame.iter_rows()}


class _Check(NamedTuple):
    """One market's label recomputed from klines; the move is the up/down window's."""

    rule: str
    yes: bool | None  # the side by the klines, None when not checkable
    detail: str
    move_usd: float | None = None
    move_bps: float | None = None


def _move(first: float, last: float) -> tuple[float, float]:
    """(last - first in dollars, the same in basis points of ``first``)."""
    return round(last - first, 2), round((last - first) / first * 1e4, 2)


def _check_one(
    family: str,
    strike: float | None,
    reference_start: datetime | None,
    expiry: datetime | None,
    candles: dict[datetime, tuple[float, float]],
) -> _Check:
    """The label's rule recomputed on 1m candles (see :func:`crosscheck`)."""
    end = None if expiry is None else expiry.replace(second=0, microsecond=0)
    if family == "updown_daily":
        # §1.8 (reported, not in the simulated world): the Binance 1m close at 12:00 ET
        # (the candle opening at E) against the same candle of the day before (at R).
        rule = "close(E) >= close(R)"
        if reference_start is None or end is None:
            return _Check(rule, None, "no reference start or expiry")
        first, last = candles.get(reference_start), candles.get(end)
        if first is None or last is None:
            gap = reference_start if first is None else end
            return _Check(rule, None, f"no 1m candle at {_fmt(gap)}")
        detail = f"close {first[1]} at {_fmt(reference_start)}, close {last[1]} at {_fmt(end)}"
        return _Check(rule, last[1] >= first[1], detail, *_move(first[1], last[1]))
    if family in UPDOWN_FAMILIES:
        # §1.8: "Up" if the end price >= the start price. On 1m candles: the close of
        # the candle opening at E - 1 min (the price at E) vs the open of the candle
        # opening at R (the price at R) — exactly a Binance 1h candle's close vs open.
        rule = "close(E-1m) >= open(R)"
        if reference_start is None or end is None:
            return _Check(rule, None, "no reference start or expiry")
        first, last = candles.get(reference_start), candles.get(end - MINUTE)
        if first is None or last is None:
            gap = reference_start if first is None else end - MINUTE
            return _Check(rule, None, f"no 1m candle at {_fmt(gap)}")
        detail = (
            f"open {first[0]} at {_fmt(reference_start)}, close {last[1]} at {_fmt(end - MINUTE)}"
        )
        if family in CHAINLINK_FAMILIES:
            detail += " (settles on Chainlink; Binance is a proxy)"
        return _Check(rule, last[1] >= first[0], detail, *_move(first[0], last[1]))
    if family in ("above", "below"):
        # Ladder rules text: the Binance 1m candle *at* 12:00 ET (opening at endDate),
        # its final "Close" strictly higher than the strike; "below" mirrors it.
        rule = "close(E) > K" if family == "above" else "close(E) < K"
        if strike is None or end is None:
            return _Check(rule, None, "no strike or expiry")
        candle = candles.get(end)
        if candle is None:
            return _Check(rule, None, f"no 1m candle at {_fmt(end)}")
        close = candle[1]
        yes = close > strike if family == "above" else close < strike
        return _Check(rule, yes, f"close {close} at {_fmt(end)} vs strike {strike:g}")
    if family in ("reach", "dip"):
        return _Check("barrier", None, "barrier over the whole week/month: not cross-checked")
    return _Check("none", None, f"family {family!r}: no klines rule")


def is_feed_difference(move_usd: float | None, move_bps: float | None) -> bool:
    """True when a Binance move this small can be a Chainlink/Binance feed difference:
    at most ``CLOSE_CALL_USD`` dollars or at most ``CLOSE_CALL_BPS`` basis points."""
    if move_usd is None or move_bps is None:
        return False
    return abs(move_usd) <= CLOSE_CALL_USD or abs(move_bps) <= CLOSE_CALL_BPS


def label_check(family: str | None, agrees: bool | None, check: _Check) -> LabelCheck:
    """``agrees``, ``uncheckable``, ``close_call`` (a Chainlink-settled market the klines
    contradict on a move within :func:`is_feed_difference`; the label stands) or
    ``disagrees`` (any other contradiction, and every one of a Binance-settled market)."""
    if agrees is None:
        return "uncheckable"
    if agrees:
        return "agrees"
    if family in CHAINLINK_FAMILIES and is_feed_difference(check.move_usd, check.move_bps):
        return "close_call"
    return "disagrees"


def _verdict_detail(verdict: LabelCheck, check: _Check) -> str:
    if verdict not in ("close_call", "disagrees") or check.move_usd is None:
        return check.detail
    move = f"Binance moved {check.move_usd:+.2f} $ ({check.move_bps:+.2f} bp)"
    if verdict == "close_call":
        return (
            f"close call: {move}, within the Chainlink/Binance feed difference "
            f"({CLOSE_CALL_USD:g} $ or {CLOSE_CALL_BPS:g} bp); {check.detail}"
        )
    return f"{move}; {check.detail}"


def crosscheck(
    resolutions: pl.DataFrame, tracked_terms: pl.DataFrame, klines: pl.DataFrame
) -> pl.DataFrame:
    """Each resolved market's label against the rule recomputed from 1m klines
    (CROSSCHECK_SCHEMA), one row per resolved market, by market id.

    Rules (R = reference_start, E = expiry, K = strike; "at T" = the candle opening at T):
    up/down ``close(E-1m) >= open(R)``; daily up/down ``close(E) >= close(R)``;
    above ``close(E) > K``; below ``close(E) < K``; reach/dip are not checked.

    ``tracked_terms``: ``market_id, family, strike, reference_start, expiry`` (any
    number of rows per market); ``klines``: ``open_time, open, close`` (1m candles).
    Rows that cannot be checked (no terms, no candle, barrier or unknown family) have
    ``klines_yes_won`` and ``agrees`` null and say why in ``detail``. ``verdict`` is the
    label check (:func:`label_check`): up/down markets of the Chainlink families are
    checked on Binance as a proxy, so a contradiction on a tiny move is a ``close_call``,
    not a ``disagrees``. ``move_usd``/``move_bps``: the Binance move of an up/down window.
    """
    resolved = (
        resolutions.filter(pl.col("status") == "resolved")
        .select("market_id", "family", "yes_won")
        .unique("market_id", keep="first", maintain_order=True)
    )
    terms = {
        row["market_id"]: row
        for row in tracked_terms.select(
            "market_id", "family", "strike", "reference_start", "expiry"
        )
        .unique("market_id", keep="last", maintain_order=True)
        .iter_rows(named=True)
    }
    candles = _candle_lookup(klines)
    rows = []
    for market_id, family, label in resolved.iter_rows():
        term = terms.get(market_id)
        if term is None:
            check = _Check("none", None, "no tracked terms")
        else:
            family = term["family"] or family
            check = _check_one(
                family, term["strike"], term["reference_start"], term["expiry"], candles
            )
        agrees = None if check.yes is None or label is None else check.yes == label
        verdict = label_check(family, agrees, check)
        rows.append(
            {
                "market_id": market_id,
                "family": family,
                "rule": check.rule,
                "label_yes_won": label,
                "klines_yes_won": check.yes,
                "agrees": agrees,
                "verdict": verdict,
                "move_usd": check.move_usd,
                "move_bps": check.move_bps,
                "detail": _verdict_detail(verdict, check),
            }
        )
    rows.sort(key=lambda row: _id_key(row["market_id"]))
    return pl.DataFrame(rows, schema=CROSSCHECK_SCHEMA)
