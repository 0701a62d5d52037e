"""Prices-history for backfill runs, cached in the warehouse across runs and processes.

A backfill is one run per day of windows; a token quoted for a week would otherwise be
fetched by each of its day-runs. Instead, a run that fetches a token asks for as much of
its history as the same ≤15-day requests bring (docs/apis.md §2.1) — up to settlement
(expiry + 2 h), never the newest ``CACHE_MIN_AGE`` — and stores:

- ``history_spans``: the token's fetched span [span_start, span_end];
- ``history_quotes``: the ``quote_at`` point at every quarter-hour window end that span
  decides exactly as a fetch by any later run would (no row there: no quote), and for a
  token with a minute path (``collect.paths``) at every minute of its path the span
  decides, between the span's ``minutes_start`` and ``minutes_end``.

So ``market_snapshots`` fetches an up/down token once and ``market_paths`` in the same
backfill run reads the token's minutes from the cache instead of fetching it again.

A later run whose whole need (``history_span``) lies in a span reads those quotes and
fetches nothing for the token. Only successful fetches are stored, in one transaction of
their own; a cache that cannot be written costs requests later, never rows.

Every row names its source (``ClobClient.source``: the CLOB base URL and the world a
replay server serves, asked once per run) and a run reads only rows of its own source.
Storing drops the rows of every other source: the cache follows the API last used. A
run with another staleness limit than ``MAX_QUOTE_AGE`` decides other quotes, so its
source also names the limit (``cache_source``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import NamedTuple

import duckdb
import polars as pl

from btc_tracker_pipeline.collect.paths import MINUTE, PATH_FAMILIES, path_minutes
from btc_tracker_pipeline.collect.snapshots import (
    MAX_QUOTE_AGE,
    SETTLE_AFTER_EXPIRY,
    Histories,
    fetch_histories,
    from_unix,
    history_span,
    newest_point,
    to_unix,
)
from btc_tracker_pipeline.partitions import WINDOW, floor_to_window
from btc_tracker_pipeline.sources.clob import MAX_HISTORY_SPAN, ClobClient, history_windows
from btc_tracker_pipeline.sources.errors import ApiError
from btc_tracker_pipeline.sources.models import PricePoint
from btc_tracker_pipeline.warehouse.tables import polars_schema
from btc_tracker_pipeline.warehouse.write import registered, transaction

# The newest minutes may not be in prices-history (or klines) yet: never cached.
CACHE_MIN_AGE = timedelta(hours=1)

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

SPAN_SCHEMA: dict[str, pl.DataType] = polars_schema("history_spans")
QUOTE_SCHEMA: dict[str, pl.DataType] = polars_schema("history_quotes")

log = logging.getLogger(__name__)


class HistoryNeed(NamedTuple):
    """The history one run needs for a token (``history_span``), the token's life, the
    minutes [first, last] of its path in the run, and its whole path window
    [reference_start, expiry) (both None: no path, quarter hours only).

    A fetch caches the quote at every minute of the path window it decides, so a later
    run finds a market listed ahead already fetched for its minutes."""

    lo: datetime
    hi: datetime
    start_date: datetime | None
    expiry: datetime | None
    minutes: tuple[datetime, datetime] | None = None
    path_window: tuple[datetime, datetime] | None = None


def cache_source(source: str, max_age: timedelta) -> str:
    """The cache key of ``source`` read with staleness limit ``max_age``: ``source`` itself
    for the default limit (caches written before the limit was configurable stay good)."""
    if max_age == MAX_QUOTE_AGE:
        return source
    return f"{source}|max_quote_age_s={int(max_age.total_seconds())}"


def history_needs(
    tracked: pl.DataFrame,
    range_start: datetime,
    range_end: datetime,
    max_age: timedelta = MAX_QUOTE_AGE,
    path_families: Sequence[str] = PATH_FAMILIES,
) -> dict[str, HistoryNeed]:
    """Per YES token of ``tracked`` (a run's tracked_markets rows): the history it needs
    to quote its windows with staleness limit ``max_age``, and for the markets of
    ``path_families`` the minutes of their paths (``collect.paths.path_minutes``)."""
    path_range: dict[str, tuple[datetime, datetime]] = {}
    path_window: dict[str, tuple[datetime, datetime]] = {}
    if "family" in tracked.columns:
        minutes = path_minutes(tracked, path_families)
        path_range = {
            token: (first, last)
            for token, first, last in minutes.group_by("yes_token_id")
            .agg(pl.col("minute_ts").min(), pl.col("minute_ts").max().alias("last"))
            .iter_rows()
        }
        path_window = {
            token: (start, end)
            for token, start, end in tracked.filter(
                pl.col("family").is_in(list(path_families))
                & pl.col("reference_start").is_not_null()
                & pl.col("expiry").is_not_null()
            )
            .group_by("yes_token_id")
            .agg(pl.col("reference_start").min(), pl.col("expiry").max())
            .iter_rows()
        }
    needs: dict[str, HistoryNeed] = {}
    for token, start_date, expiry in (
        tracked.group_by("yes_token_id")
        .agg(pl.col("start_date").min(), pl.col("expiry").max())
        .iter_rows()
    ):
        span = history_span(start_date, expiry, range_start, range_end, max_age)
        if token and span:
            needs[token] = HistoryNeed(
                *span, start_date, expiry, path_range.get(token), path_window.get(token)
            )
    return needs


def fetch_end(need: HistoryNeed, now: datetime) -> datetime:
    """How far to fetch a token: past ``need.hi`` as far as the requests ``need`` costs
    anyway reach, but not past settlement nor into the last ``CACHE_MIN_AGE``."""
    requests = len(history_windows(need.lo, need.hi))
    end = from_unix(to_unix(need.lo) + requests * int(MAX_HISTORY_SPAN.total_seconds()))
    end = min(end, now - CACHE_MIN_AGE)
    if need.expiry is not None:
        end = min(end, need.expiry + SETTLE_AFTER_EXPIRY)
    return max(need.hi, end)


def quarter_hours(first: datetime, last: datetime) -> list[datetime]:
    """Every quarter hour in [first, last]."""
    at = floor_to_window(first)
    at = at if at >= first else at + WINDOW
    out = []
    while at <= last:
        out.append(at)
        at += WINDOW
    return out


def decided_window_ends(
    need: HistoryNeed, span_end: datetime, max_age: timedelta = MAX_QUOTE_AGE
) -> list[datetime]:
    """The window ends whose quote points fetched over [need.lo, span_end] decide as any
    run's own fetch would: the quote looks back ``max_age`` (so not before need.lo +
    max_age unless need.lo is the listing) and after settlement sees nothing new."""
    listed = need.start_date is not None and need.lo <= need.start_date
    first = need.lo if listed else need.lo + max_age
    settled = need.expiry is not None and span_end >= need.expiry + SETTLE_AFTER_EXPIRY
    last = span_end + max_age if settled else span_end
    return quarter_hours(first, last)


def decided_minutes(
    need: HistoryNeed, span_end: datetime, max_age: timedelta = MAX_QUOTE_AGE
) -> tuple[datetime, datetime] | None:
    """The part [first, last] of ``need``'s path window whose minute quotes points
    fetched over [need.lo, span_end] decide (the same bounds as
    ``decided_window_ends``); None if none."""
    if need.path_window is None:
        return None
    listed = need.start_date is not None and need.lo <= need.start_date
    first = max(need.path_window[0], need.lo if listed else need.lo + max_age)
    settled = need.expiry is not None and span_end >= need.expiry + SETTLE_AFTER_EXPIRY
    last = min(
        need.path_window[1] - timedelta(microseconds=1),
        span_end + max_age if settled else span_end,
    )
    return (first, last) if first <= last else None


def every_minute(first: datetime, last: datetime) -> list[datetime]:
    """Every whole minute in [first, last]."""
    at = first.replace(second=0, microsecond=0)
    at = at if at >= first else at + MINUTE
    out = []
    while at <= last:
        out.append(at)
        at += MINUTE
    return out


def cache_frames(
    source: str,
    points: Mapping[str, list[PricePoint]],
    needs: Mapping[str, HistoryNeed],
    ends: Mapping[str, datetime],
    now: datetime,
    max_age: timedelta = MAX_QUOTE_AGE,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(``history_spans`` rows, ``history_quotes`` rows) for the tokens fetched from
    ``source`` over [needs[t].lo, ends[t]] (only successful fetches are in ``points``)."""
    spans, quotes = [], []
    for token, token_points in points.items():
        need = needs[token]
        span_end = min(ends[token], now - CACHE_MIN_AGE)
        if span_end <= need.lo:
            continue
        minutes = decided_minutes(need, span_end, max_age)
        spans.append((source, token, need.lo, span_end, now, *(minutes or (None, None))))
        times = [p.t for p in token_points]
        at = set(decided_window_ends(need, span_end, max_age))
        if minutes is not None:
            at.update(every_minute(*minutes))
        for moment in sorted(at):
            point = newest_point(token_points, times, moment, max_age)
            if point is not None:
                quotes.append((source, token, moment, point.t, point.p))
    return (
        pl.DataFrame(spans, schema=SPAN_SCHEMA, orient="row"),
        pl.DataFrame(quotes, schema=QUOTE_SCHEMA, orient="row"),
    )


def read_cached(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    needs: Mapping[str, HistoryNeed],
    range_start: datetime,
    range_end: datetime,
) -> dict[str, list[PricePoint]]:
    """For each token whose need a span of ``source`` covers (its path minutes too, when
    it has any): its cached quotes at the times in [range_start, range_end], as points
    (``quote_at`` on them gives the quote at any window end or path minute)."""
    if not needs:
        return {}
    wanted = pl.DataFrame(
        [(t, n.lo, n.hi, *(n.minutes or (None, None))) for t, n in needs.items()],
        schema={
            "yes_token_id": pl.String(),
            "lo": pl.Datetime("us"),
            "hi": pl.Datetime("us"),
            "minutes_lo": pl.Datetime("us"),
            "minutes_hi": pl.Datetime("us"),
        },
        orient="row",
    )
    with registered(conn, wanted) as name:
        found = conn.execute(
            f"""
            WITH covered AS (
                SELECT DISTINCT n.yes_token_id FROM {name} n JOIN history_spans s
                ON s.source = $source AND s.yes_token_id = n.yes_token_id
                    AND s.span_start <= n.lo AND s.span_end >= n.hi
                    AND (n.minutes_lo IS NULL OR (s.minutes_start <= n.minutes_lo
                        AND s.minutes_end >= n.minutes_hi))
            )
            SELECT DISTINCT c.yes_token_id, q.quote_t, q.price FROM covered c
            LEFT JOIN history_quotes q ON q.source = $source
                AND q.yes_token_id = c.yes_token_id
                AND q.window_end >= $range_start AND q.window_end <= $range_end
            ORDER BY 1, 2
            """,
            {"source": source, "range_start": range_start, "range_end": range_end},
        ).fetchall()
    cached: dict[str, list[PricePoint]] = {}
    for token, t, p in found:
        token_points = cached.setdefault(token, [])
        if t is None:
            continue
        if token_points and token_points[-1].t == t:
            token_points[-1] = PricePoint(t=t, p=p)
        else:
            token_points.append(PricePoint(t=t, p=p))
    return cached


def store(conn: duckdb.DuckDBPyConnection, spans: pl.DataFrame, quotes: pl.DataFrame) -> None:
    """Add spans and their quotes (all of one source) in one transaction: a quote
    fetched again replaces, and the rows of any other source are dropped."""
    if spans.is_empty():
        return
    source = spans["source"][0]
    with registered(conn, spans) as s, registered(conn, quotes) as q, transaction(conn):
        for table in ("history_spans", "history_quotes"):
            conn.execute(f"DELETE FROM {table} WHERE source <> ?", [source])
        conn.execute(
            f"DELETE FROM history_quotes h USING {q} n "
            "WHERE h.yes_token_id = n.yes_token_id AND h.window_end = n.window_end"
        )
        conn.execute(f"INSERT INTO history_quotes BY NAME SELECT * FROM {q}")
        conn.execute(f"INSERT INTO history_spans BY NAME SELECT * FROM {s}")


def backfill_histories(
    clob: ClobClient,
    needs: Mapping[str, HistoryNeed],
    connect: Connect,
    window_range: tuple[datetime, datetime],
    now: datetime,
    warn: Callable[[str], None] = log.warning,
    max_age: timedelta = MAX_QUOTE_AGE,
) -> tuple[Histories, int]:
    """Histories for a backfill run's windows in ``window_range``: cached quotes where a
    span covers a token's need, a fetch (stored for later runs) for the rest; quotes no
    older than ``max_age`` (``needs`` must come from ``history_needs`` with the same limit).

    Returns the histories and how many tokens came from the cache.
    """
    try:
        source = cache_source(clob.source(), max_age)
    except ApiError as exc:  # the fetches below will tell whether the API is there
        warn(f"prices-history cache not used: source unknown ({exc.__class__.__name__}: {exc})")
        spans = {t: (n.lo, n.hi) for t, n in needs.items()}
        return fetch_histories(clob, spans, max_age=max_age), 0
    with connect() as conn:
        cached = read_cached(conn, source, needs, *window_range)
    ends = {t: fetch_end(n, now) for t, n in needs.items() if t not in cached}
    histories = fetch_histories(
        clob, {t: (needs[t].lo, end) for t, end in ends.items()}, max_age=max_age
    )
    spans, quotes = cache_frames(source, histories.points, needs, ends, now, max_age)
    try:
        with connect() as conn:
            store(conn, spans, quotes)
    except Exception as exc:  # the windows are written regardless; later runs refetch
        warn(f"prices-history cache not written ({exc.__class__.__name__}: {exc})")
    histories.points.update(cached)
    return histories, len(cached)
