"""Backfill runs share fetches through the warehouse (collect/history_cache.py,
collect/kline_cache.py) and write exactly the rows of runs that share nothing: a warehouse
whose cache an overlapping earlier backfill filled ends with the same rows as one built
without any cache, in fewer requests."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from btc_tracker_pipeline.collect import fetch
from btc_tracker_pipeline.collect.snapshots import fetch_histories
from btc_tracker_pipeline.collect.spot import klines_frame
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_windows
from btc_tracker_pipeline_tests.window_tables import COLLECTED, window_rows

pytestmark = pytest.mark.integration

TABLES = (*COLLECTED, "edge_report")
FIRST, LAST = "2026-02-28-16:00", "2026-02-28-17:45"
# The warehouse with a cache first backfills the first hour, then the rest overlapping it
# by half an hour, then the first hour again; in runs of an hour, as day-runs at scale.
EARLIER = (FIRST, "2026-02-28-16:45")
LATER = ("2026-02-28-16:30", LAST)
RUN = 4


def uncached_histories(clob, needs, connect, window_range, now, warn=None, max_age=None):
    """What market_snapshots fetched before the cache: each token's need, every run."""
    spans = {t: (n.lo, n.hi) for t, n in needs.items()}
    limit = {} if max_age is None else {"max_age": max_age}
    return fetch_histories(clob, spans, **limit), 0


def uncached_klines(client, lo, hi, connect, now, warn=None):
    """What btc_spot_prices fetched before the cache: the lookback and the run, every run."""
    return klines_frame(client.klines(lo, hi, "1m"))


def world() -> SimulatedWorld:
    """Every family, few markets (a quick test): short up/down leads, 3 strikes a ladder."""
    return SimulatedWorld(
        seed=7,
        days=2,
        now=datetime(2026, 3, 1),
        strikes_per_ladder=3,
        updown_lead=timedelta(hours=3),
    )


def backfill(folder: Path, *ranges: tuple[str, str]) -> tuple[dict, list[dict]]:
    """Backfill ``ranges`` in turn; (rows of TABLES, server route counts per range)."""
    requests = []
    with replay_session(world(), folder) as session:
        for first, last in ranges:
            session.server.reset_stats()
            outcomes = run_windows(
                partition_keys(first, last), instance=session.instance, chunk_size=RUN
            )
            assert all(o.success for o in outcomes), [o.error for o in outcomes]
            requests.append(dict(session.server.stats()["routes"]))
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        rows = window_rows(conn, TABLES)
    return rows, requests


@pytest.fixture(scope="module")
def without_cache(tmp_path_factory) -> tuple[dict, list[dict]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fetch, "backfill_histories", uncached_histories)
        patch.setattr(fetch, "backfill_klines", uncached_klines)
        return backfill(tmp_path_factory.mktemp("without"), (FIRST, LAST))


def test_a_warehouse_with_a_filled_cache_gets_the_rows_of_one_without(tmp_path, without_cache):
    expected, [plain] = without_cache
    got, [earlier, later, again] = backfill(tmp_path, EARLIER, LATER, EARLIER)
    assert all(expected[t] for t in TABLES if t not in ("market_resolutions", "edge_report"))
    assert got == expected
    # The later backfill found the klines it needs already cached, and most tokens.
    history, klines = "/clob/prices-history", "/binance/api/v3/klines"
    assert klines not in later
    assert later[history] < earlier[history] / 2 < plain[history] / 2
    # A range again (idempotent): everything from the cache, the same rows.
    assert history not in again and klines not in again
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        (spans,) = conn.execute("SELECT count(*) FROM history_spans").fetchone()
        (quotes,) = conn.execute("SELECT count(*) FROM history_quotes").fetchone()
    assert spans == earlier[history] + later[history] and quotes > 100
