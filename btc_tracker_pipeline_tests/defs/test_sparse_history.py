"""Hourly prices-history (thin markets, exported histories): the staleness limit decides
which windows get a quote, and every snapshot keeps the quote's age."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets
from btc_tracker_pipeline.defs.resources import (
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

pytestmark = pytest.mark.integration

# Reach/dip markets of this world have one history point an hour (at :00, + 0–4 s).
WORLD_NOW = datetime(2026, 3, 1, 0, 0)
RANGE = ("2026-02-28-20:00", "2026-02-28-21:45")  # 8 windows
BARRIER = "family IN ('reach', 'dip')"


@pytest.fixture(scope="module")
def sparse_url() -> Iterator[str]:
    world = SimulatedWorld(seed=7, days=2, now=WORLD_NOW, sparse_history_step=timedelta(hours=1))
    with ReplayServer(world) as server:
        yield server.url


def collect(url: str, path: str, **snapshot_config: object) -> dg.ExecuteInProcessResult:
    """One run over RANGE (a backfill run: the prices-history cache is used)."""
    return dg.materialize(
        [tracked_markets, market_snapshots],
        resources={
            "polymarket": PolymarketResource(gamma_url=f"{url}/gamma", clob_url=f"{url}/clob"),
            "warehouse": WarehouseResource(path=path),
            "clock": ClockResource(),
        },
        tags={
            "dagster/asset_partition_range_start": RANGE[0],
            "dagster/asset_partition_range_end": RANGE[1],
        },
        run_config={"ops": {"market_snapshots": {"config": snapshot_config}}}
        if snapshot_config
        else None,
    )


def barrier_quotes(path: str) -> tuple[int, int, list[tuple]]:
    """(barrier markets quoted in the range, windows, [(minute of window end, quote age s)])."""
    with duckdb.connect(path, read_only=True) as conn:
        # Barriers still trading in the range: one that touched its strike before it has
        # closed, and its history stops at the touch (tracked to its endDate, unquoted).
        (markets,) = conn.execute(
            "SELECT count(DISTINCT market_id) FROM market_snapshots "
            f"JOIN tracked_markets USING (window_start, market_id) WHERE {BARRIER}"
        ).fetchone()
        (windows,) = conn.execute(
            f"SELECT count(DISTINCT window_start) FROM tracked_markets WHERE {BARRIER}"
        ).fetchone()
        rows = conn.execute(
            "SELECT minute(s.window_end), s.quote_age_s, "
            "date_diff('microsecond', s.quote_ts, s.snapshot_ts) / 1e6 "
            "FROM market_snapshots s JOIN tracked_markets t USING (window_start, market_id) "
            f"WHERE t.{BARRIER} ORDER BY s.window_start, s.market_id"
        ).fetchall()
    return markets, windows, rows


def test_hourly_history_under_the_default_limit_quotes_only_recent_points(sparse_url, tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    assert collect(sparse_url, path).success
    markets, windows, rows = barrier_quotes(path)
    assert markets > 5 and windows == 8
    # Ends at :15 and :30 see the :00 point (15 and 30 min old, less its 0–4 s jitter);
    # at :45 and :00 the newest point is 45 and 60 min old: no snapshot (unless the
    # :00 point came without jitter, then it is the quote at :00, 0 s old).
    by_minute = {m: [age for minute, age, _ in rows if minute == m] for m in (0, 15, 30, 45)}
    assert len(by_minute[15]) == len(by_minute[30]) == markets * windows // 4
    assert by_minute[45] == [] and all(age == 0 for age in by_minute[0])
    for minute, age, from_times in rows:
        assert age == from_times
        assert minute * 60 - 4 <= age <= minute * 60


def test_a_raised_limit_quotes_every_window_and_keeps_the_age(sparse_url, tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    result = collect(sparse_url, path, max_quote_age_min=90)
    assert result.success
    markets, windows, rows = barrier_quotes(path)
    assert len(rows) == markets * windows
    for minute, age, from_times in rows:
        expected = (minute or 60) * 60  # at :00 the point of the hour before (jittered)
        assert age == from_times
        assert expected - 4 <= age <= expected or (minute == 0 and age <= 4)
    meta = result.asset_materializations_for_node("market_snapshots")[0].metadata
    assert meta["max_quote_age_min"].value == 90.0


def test_the_limit_comes_from_the_resource_and_is_checked(sparse_url, tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    resources = {
        "polymarket": PolymarketResource(
            gamma_url=f"{sparse_url}/gamma", clob_url=f"{sparse_url}/clob", max_quote_age_min=90
        ),
        "warehouse": WarehouseResource(path=path),
        "clock": ClockResource(),
    }
    key = "2026-02-28-20:30"  # a :45 end: only a 90-minute limit quotes barrier markets
    assert dg.materialize(
        [tracked_markets, market_snapshots], partition_key=key, resources=resources
    )
    _, _, rows = barrier_quotes(path)
    assert rows and all(minute == 45 for minute, _, _ in rows)
    bad = dg.materialize(
        [tracked_markets, market_snapshots],
        partition_key=key,
        resources=resources,
        run_config={"ops": {"market_snapshots": {"config": {"max_quote_age_min": 0}}}},
        raise_on_error=False,
    )
    assert not bad.success
    failure = bad.failure_data_for_node("market_snapshots")
    assert "max_quote_age_min=0" in str(failure.error)
