"""The backfill caches against fake APIs: consecutive runs read exactly the quotes and
klines their own fetches would give, in about the fewest requests the APIs allow; failed
fetches are not cached; the warehouse of an older version upgrades in place."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from btc_tracker_pipeline.collect import history_cache, kline_cache
from btc_tracker_pipeline.collect.history_cache import (
    HistoryNeed,
    backfill_histories,
    decided_window_ends,
    fetch_end,
)
from btc_tracker_pipeline.collect.kline_cache import backfill_klines, prefetch_end, uncovered
from btc_tracker_pipeline.collect.snapshots import fetch_histories, history_span, to_unix
from btc_tracker_pipeline.collect.spot import klines_frame
from btc_tracker_pipeline.partitions import WINDOW, windows_between
from btc_tracker_pipeline.sources.clob import history_windows
from btc_tracker_pipeline.sources.errors import ServerError
from btc_tracker_pipeline.sources.models import Kline, PricePoint
from btc_tracker_pipeline.warehouse import open_warehouse, warehouse
from btc_tracker_pipeline.warehouse.schema import SCHEMA_VERSION, migrate

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


class FakeClob:
    """prices-history of a few tokens: a point every ``every`` minutes (t jittered 0–4 s)
    from listing to closing, none after ``now``; counts requests as the real client."""

    def __init__(
        self,
        tokens: dict[str, tuple[datetime, datetime | None, int]],
        now: datetime,
        name: str = "fake://clob",
        salt: int = 0,
    ):
        self.tokens, self.now, self.name, self.salt = tokens, now, name, salt
        self.requests = 0
        self.failing: set[str] = set()

    def source(self) -> str:
        return self.name

    def prices_history(
        self, token_id: str, start: datetime, end: datetime, fidelity_min: int = 1
    ) -> list[PricePoint]:
        self.requests += len(history_windows(start, end))
        if token_id in self.failing:
            raise ServerError("503 from the fake", "fake://prices-history")
        listed, closed, every = self.tokens[token_id]
        hi = min(to_unix(end), to_unix(self.now), to_unix(closed) if closed else 1 << 40)
        points = []
        for minute in range(to_unix(listed) // 60, hi // 60 + 1, every):
            t = minute * 60 + (minute * 7 + len(token_id)) % 5
            if to_unix(start) <= t <= hi and t >= to_unix(listed):
                points.append(PricePoint(t, ((minute * 7919 + self.salt) % 997) / 997))
        return points


class FakeBinance:
    """1-minute klines up to ``now`` with a few missing minutes; ceil(n / 1000) requests."""

    def __init__(
        self, now: datetime, missing: set[datetime], name: str = "fake://binance", salt: int = 0
    ):
        self.now, self.missing, self.name, self.salt = now, missing, name, salt
        self.requests = 0

    def source(self) -> str:
        return self.name

    def klines(self, start: datetime, end: datetime, timeframe: str = "1m") -> list[Kline]:
        self.requests += max(1, math.ceil((end - start) / timedelta(minutes=1) / 1000))
        out, at = [], start
        while at < min(end, self.now):
            if at not in self.missing:
                x = float((to_unix(at) + self.salt) % 9973)
                out.append(Kline(at, x, x + 2.0, x - 1.0, x + 0.5, x / 100))
            at += timedelta(minutes=1)
        return out


@pytest.fixture
def connect(tmp_path: Path) -> Callable:
    path = tmp_path / "w.duckdb"
    return lambda: warehouse(path)


def day_runs(first: datetime, days: int, hours: int = 24) -> Iterator[tuple[datetime, datetime]]:
    at = first
    while at < first + days * DAY:
        yield at, at + hours * HOUR
        at += hours * HOUR


TOKENS = {
    # token: (listed, expiry or None, minutes between points)
    "forever": (T0 - 40 * DAY, None, 1),
    "week": (T0 + 2 * DAY + timedelta(minutes=7), T0 + 9 * DAY + 10 * HOUR, 1),
    "sparse": (T0, T0 + 18 * DAY, 37),
    "hours": (T0 + DAY + timedelta(seconds=30), T0 + DAY + 3 * HOUR, 1),
}


def needs_of(range_start: datetime, range_end: datetime) -> dict[str, HistoryNeed]:
    needs = {}
    for token, (listed, expiry, _) in TOKENS.items():
        start = listed if token != "forever" else None
        if (span := history_span(start, expiry, range_start, range_end)) and listed < range_end:
            needs[token] = HistoryNeed(*span, start, expiry)
    return needs


def closing(expiry: datetime | None) -> datetime | None:
    return expiry + HOUR if expiry else None


def test_day_runs_read_the_quotes_their_own_fetch_would_give_in_few_requests(connect):
    now = T0 + 20 * DAY + timedelta(minutes=20)
    world = {t: (listed, closing(exp), every) for t, (listed, exp, every) in TOKENS.items()}
    cached_api, plain_api = FakeClob(world, now), FakeClob(world, now)
    compared = from_cache = 0
    for rs, re in day_runs(T0, 20):
        needs = needs_of(rs, re)
        cached, hits = backfill_histories(cached_api, needs, connect, (rs, re), now)
        plain = fetch_histories(plain_api, {t: (n.lo, n.hi) for t, n in needs.items()})
        from_cache += hits
        for token in needs:
            for _, we in windows_between(rs, re):
                assert cached.quote(token, we) == plain.quote(token, we), (token, we)
                compared += 1
    assert compared > 4000 and from_cache > 40
    # Whole range: one request per token per 15 days of need (forever: 20 days → 2).
    minimum = 2 + 1 + 2 + 1
    assert plain_api.requests > 40, cached_api.requests
    # The last day ends 20 min before now: its newest hour is never cached, so "forever"
    # (the one token still quoted) is fetched once more for it.
    assert cached_api.requests <= minimum + 1, cached_api.requests


def test_failed_fetch_is_not_cached_and_is_fetched_again(connect):
    now = T0 + 30 * DAY
    world = {t: (listed, closing(exp), every) for t, (listed, exp, every) in TOKENS.items()}
    api = FakeClob(world, now)
    api.failing = {"forever"}
    rs, re = T0 + 3 * DAY, T0 + 4 * DAY
    first, _ = backfill_histories(api, needs_of(rs, re), connect, (rs, re), now)
    assert "forever" in first.errors and "forever" not in first.points
    with connect() as conn:
        tokens = {r[0] for r in conn.execute("SELECT yes_token_id FROM history_spans").fetchall()}
    assert tokens == {"week", "sparse"}
    api.failing, before = set(), api.requests
    again, hits = backfill_histories(api, needs_of(rs, re), connect, (rs, re), now)
    assert hits == 2 and api.requests == before + 1 and not again.errors


def test_a_cache_that_cannot_be_written_loses_nothing(connect, monkeypatch):
    def broken(*args: object) -> None:
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(history_cache, "store", broken)
    monkeypatch.setattr(kline_cache, "store", broken)
    now = T0 + 30 * DAY
    world = {t: (listed, closing(exp), every) for t, (listed, exp, every) in TOKENS.items()}
    warnings: list[str] = []
    rs, re = T0 + 3 * DAY, T0 + 4 * DAY
    got, _ = backfill_histories(
        FakeClob(world, now), needs_of(rs, re), connect, (rs, re), now, warnings.append
    )
    plain = fetch_histories(
        FakeClob(world, now), {t: (n.lo, n.hi) for t, n in needs_of(rs, re).items()}
    )
    for token in plain.points:
        for _, we in windows_between(rs, re):
            assert got.quote(token, we) == plain.quote(token, we)
    api = FakeBinance(now, set())
    klines = backfill_klines(api, rs - DAY, re, connect, now, warnings.append)
    assert klines.equals(klines_frame(api.klines(rs - DAY, re)))
    assert len(warnings) == 2 and all("No space left" in w for w in warnings)


def test_day_runs_read_the_klines_their_own_fetch_would_give_in_whole_pages(connect):
    now = T0 + 10 * DAY + timedelta(minutes=30)
    missing = {T0 + timedelta(minutes=m) for m in (5, 1439, 1440, 3000, 7777)}
    cached_api, plain_api = FakeBinance(now, missing), FakeBinance(now, missing)
    for rs, re in day_runs(T0, 10):
        got = backfill_klines(cached_api, rs - DAY, re, connect, now)
        assert got.equals(klines_frame(plain_api.klines(rs - DAY, re))), rs
    whole = math.ceil((1440 + 10 * 1440) / 1000)
    assert plain_api.requests == 10 * 3
    # Every fetch is whole pages from where the cache ends; the last hour is never cached.
    assert cached_api.requests <= whole + 1


def sources(connect: Callable, *tables: str) -> set[str]:
    with connect() as conn:
        return {
            source
            for table in tables
            for (source,) in conn.execute(f"SELECT DISTINCT source FROM {table}").fetchall()
        }


def test_a_cache_is_read_only_by_runs_of_its_own_source(connect):
    now = T0 + 30 * DAY
    world = {t: (listed, closing(exp), every) for t, (listed, exp, every) in TOKENS.items()}
    a, b = FakeClob(world, now, "http://a/clob"), FakeClob(world, now, "http://b/clob", salt=1)
    first, second = (T0 + 3 * DAY, T0 + 4 * DAY), (T0 + 3 * DAY + 6 * HOUR, T0 + 4 * DAY)
    backfill_histories(a, needs_of(*first), connect, first, now)
    got, hits = backfill_histories(b, needs_of(*second), connect, second, now)
    plain = fetch_histories(
        FakeClob(world, now, salt=1), {t: (n.lo, n.hi) for t, n in needs_of(*second).items()}
    )
    assert hits == 0 and b.requests == len(needs_of(*second))
    for token in plain.points:
        for _, we in windows_between(*second):
            assert got.quote(token, we) == plain.quote(token, we), (token, we)
    assert sources(connect, "history_spans", "history_quotes") == {"http://b/clob"}
    # The same source again reads its cache.
    _, hits = backfill_histories(b, needs_of(*second), connect, second, now)
    assert hits == len(needs_of(*second))

    ka, kb = FakeBinance(now, set(), "http://a/binance"), FakeBinance(now, set(), "x", salt=1)
    backfill_klines(ka, first[0] - DAY, first[1], connect, now)
    klines = backfill_klines(kb, second[0] - DAY, second[1], connect, now)
    fresh = FakeBinance(now, set(), salt=1).klines(second[0] - DAY, second[1])
    assert klines.equals(klines_frame(fresh))
    assert sources(connect, "kline_spans", "kline_cache") == {"x"}
    before = kb.requests
    backfill_klines(kb, second[0] - DAY, second[1], connect, now)
    assert kb.requests == before


def test_a_source_that_cannot_be_asked_costs_the_cache_not_the_rows(connect):
    class Unreachable(FakeClob):
        def source(self) -> str:
            raise ServerError("503 from the fake", "fake://time")

    now = T0 + 30 * DAY
    world = {t: (listed, closing(exp), every) for t, (listed, exp, every) in TOKENS.items()}
    rs, re = T0 + 3 * DAY, T0 + 4 * DAY
    warnings: list[str] = []
    got, hits = backfill_histories(
        Unreachable(world, now), needs_of(rs, re), connect, (rs, re), now, warnings.append
    )
    plain = fetch_histories(
        FakeClob(world, now), {t: (n.lo, n.hi) for t, n in needs_of(rs, re).items()}
    )
    assert hits == 0 and got.points == plain.points
    assert len(warnings) == 1 and "source unknown" in warnings[0]
    assert sources(connect, "history_spans") == set()


def test_fetch_end_costs_no_more_requests_than_the_need():
    lo = datetime(2026, 1, 1, 0, 29, 59, 500_000)
    need = HistoryNeed(lo, lo + DAY, lo, None)
    end = fetch_end(need, now=lo + 100 * DAY)
    assert len(history_windows(lo, end)) == 1 and end > lo + 14 * DAY
    assert fetch_end(need, now=lo + 2 * DAY) == lo + 2 * DAY - HOUR
    assert fetch_end(need._replace(expiry=lo + 3 * HOUR), now=lo + 100 * DAY) == lo + DAY
    assert fetch_end(need._replace(expiry=lo + 3 * DAY), lo + 100 * DAY) == lo + 3 * DAY + 2 * HOUR


def test_decided_window_ends_start_one_quote_age_in_unless_at_the_listing():
    lo = datetime(2026, 1, 1, 9, 30)
    ends = decided_window_ends(HistoryNeed(lo, lo + HOUR, None, None), lo + HOUR)
    assert ends == [lo + timedelta(minutes=30), lo + timedelta(minutes=45), lo + HOUR]
    listed = decided_window_ends(HistoryNeed(lo, lo + HOUR, lo, None), lo + HOUR)
    assert listed[0] == lo
    settled = HistoryNeed(lo, lo + HOUR, lo, lo - HOUR)
    assert decided_window_ends(settled, lo + HOUR)[-1] == lo + HOUR + 2 * WINDOW


def test_uncovered_and_prefetch_end():
    m = timedelta(minutes=1)
    spans = [(T0 + 10 * m, T0 + 20 * m), (T0 + 15 * m, T0 + 30 * m), (T0 + 40 * m, T0 + 50 * m)]
    assert uncovered(T0, T0 + 60 * m, spans) == [
        (T0, T0 + 10 * m),
        (T0 + 30 * m, T0 + 40 * m),
        (T0 + 50 * m, T0 + 60 * m),
    ]
    assert uncovered(T0 + 12 * m, T0 + 28 * m, spans) == []
    assert prefetch_end(T0, T0 + 1440 * m, now=T0 + 10 * DAY) == T0 + 2000 * m
    assert prefetch_end(T0, T0 + 1440 * m, now=T0 + 1500 * m) == T0 + 1440 * m


def test_a_version_3_warehouse_upgrades_in_place(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as conn:
        assert migrate(conn, target=3) == 3
        conn.execute(
            "INSERT INTO btc_spot_windows (window_start, window_end, as_of, spot_price, "
            "source) VALUES ('2026-01-01', '2026-01-01 00:15', '2026-01-01', 1, 'x')"
        )
    conn = open_warehouse(path)
    try:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (
            SCHEMA_VERSION,
        )
        for table in ("history_spans", "history_quotes", "kline_spans", "kline_cache"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM btc_spot_windows").fetchone() == (1,)
    finally:
        conn.close()


def test_a_version_5_cache_of_unknown_source_is_dropped_and_the_data_kept(tmp_path):
    path = tmp_path / "v5.duckdb"
    with duckdb.connect(str(path)) as conn:
        assert migrate(conn, target=5) == 5
        conn.execute("INSERT INTO kline_spans VALUES ('2026-01-01', '2026-01-02', '2026-01-03')")
        conn.execute("INSERT INTO history_spans VALUES ('t', '2026-01-01', '2026-01-02', now())")
        conn.execute(
            "INSERT INTO btc_spot_windows (window_start, window_end, as_of, spot_price, "
            "source) VALUES ('2026-01-01', '2026-01-01 00:15', '2026-01-01', 1, 'x')"
        )
    conn = open_warehouse(path)
    try:
        for table in ("history_spans", "history_quotes", "kline_spans", "kline_cache"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
            assert "source" in [c[0] for c in conn.execute(f"DESCRIBE {table}").fetchall()]
        assert conn.execute("SELECT count(*) FROM btc_spot_windows").fetchone() == (1,)
    finally:
        conn.close()
