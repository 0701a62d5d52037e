"""market_paths against the replay server: every minute of every up/down market in the
window, priced as the world's prices-history has it, beside the world's BTC closes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets
from btc_tracker_pipeline.defs.markets.paths import market_paths
from btc_tracker_pipeline.defs.resources import (
    BinanceResource,
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.faults import FaultSpec
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 0, 0)
ASSETS = [tracked_markets, market_snapshots, btc_spot_prices, market_paths]
KEY = "2026-02-28-23:30"  # history: the clock is the wall clock, long after the world's now
START = datetime(2026, 2, 28, 23, 30)
LIVE_KEY = "2026-02-28-23:45"
PATH_COLUMNS = "market_id, family, minute_ts, offset_min, minutes_left, price, quote_ts, btc_close"


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return SimulatedWorld(
        seed=7,
        days=2,
        now=NOW,
        updown_5m=True,
        updown_lead=timedelta(hours=3),
        strikes_per_ladder=3,
    )


@pytest.fixture(scope="module")
def server(world: SimulatedWorld) -> Iterator[ReplayServer]:
    with ReplayServer(world) as replay:
        yield replay


@pytest.fixture
def resources(server: ReplayServer, tmp_path) -> dict:
    return {
        "polymarket": PolymarketResource(
            gamma_url=f"{server.url}/gamma", clob_url=f"{server.url}/clob"
        ),
        "binance": BinanceResource(base_url=f"{server.url}/binance"),
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        "clock": ClockResource(),
    }


def rows(resources: dict, sql: str) -> list[tuple]:
    with duckdb.connect(resources["warehouse"].path, read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_every_minute_of_every_up_down_market_in_the_window(resources, world):
    result = dg.materialize(ASSETS, partition_key=KEY, resources=resources)
    assert result.success
    checks = {
        e.check_name: e.passed
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] == "market_paths"
    }
    assert checks == {
        "minutes_within_market_life": True,
        "path_prices_in_unit_interval": True,
        "path_coverage": True,
    }
    per_family = rows(
        resources,
        "SELECT family, count(DISTINCT market_id), count(*), count(price), "
        "min(offset_min), max(offset_min) FROM market_paths GROUP BY 1 ORDER BY 1",
    )
    # 23:30-23:45: three 5-minute markets, one 15-minute one, and minutes 30-44 of the hour.
    assert per_family == [
        ("updown_15m", 1, 15, 15, 0, 14),
        ("updown_1h", 1, 15, 15, 30, 44),
        ("updown_5m", 3, 15, 15, 0, 4),
    ]
    path = rows(resources, f"SELECT {PATH_COLUMNS}, yes_token_id FROM market_paths ORDER BY ALL")
    first_ms = _epoch(START - timedelta(minutes=1)) * 1000
    closes = {
        datetime(1970, 1, 1) + timedelta(milliseconds=k[0]): float(k[4])
        for k in world.klines("1m", first_ms, None, 20)
    }
    for _market_id, family, minute, offset, left, price, quote_ts, btc, token in path:
        assert START <= minute < START + timedelta(minutes=15)
        history = world.price_history(token, int(_epoch(minute)) - 1800, int(_epoch(minute)), 1)
        newest = [p for p in history if p["t"] <= _epoch(minute)][-1]
        assert price == pytest.approx(newest["p"]) and _epoch(quote_ts) == newest["t"]
        assert left == pytest.approx(
            {"updown_5m": 5, "updown_15m": 15, "updown_1h": 60}[family] - offset
        )
        assert btc == pytest.approx(closes[minute - timedelta(minutes=1)])


def _epoch(ts: datetime) -> int:
    return int((ts - datetime(1970, 1, 1)).total_seconds())


def test_live_ticks_ask_once_per_token_and_keep_markets_that_closed_inside_the_window(tmp_path):
    """Live ticks, the world's clock moving with them: the tick for 23:45 lists the
    markets open at 00:00:30, which no longer include the 5-minute markets of 23:45 and
    23:50 nor the 15-minute one; their paths come from the tick before, which listed
    them."""
    now = [datetime(2026, 2, 28, 23, 30, 30)]
    world = SimulatedWorld(
        seed=7,
        days=2,
        clock=lambda: now[0],
        updown_5m=True,
        updown_lead=timedelta(hours=3),
        strikes_per_ladder=3,
    )
    with ReplayServer(world) as server:
        base = {
            "polymarket": PolymarketResource(
                gamma_url=f"{server.url}/gamma", clob_url=f"{server.url}/clob"
            ),
            "binance": BinanceResource(base_url=f"{server.url}/binance"),
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        }
        for minute in (15, 30, 45):
            key = f"2026-02-28-23:{minute}"
            tick = datetime(2026, 2, 28, 23, minute, 30) + timedelta(minutes=15)
            now[0] = tick
            at_tick = base | {"clock": ClockResource(now_utc=tick.isoformat())}
            assert dg.materialize(ASSETS[:3], partition_key=key, resources=at_tick).success
            server.reset_stats()
            result = dg.materialize([market_paths], partition_key=key, resources=at_tick)
            routes = server.stats()["routes"]
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            assert result.success and all(checks.values()) and len(checks) == 3, checks
            sql = "SELECT count(DISTINCT yes_token_id) FROM market_paths WHERE window_start = "
            tokens = rows(at_tick, f"{sql}'{key[:10]} {key[11:]}'")[0][0]
            # One request per token; from the second tick on: three 5-minute markets, the
            # 15-minute one and the hour (the first tick only knows those open at 23:30:30).
            assert routes.get("/clob/prices-history") == tokens
            assert tokens == 5 or minute == 15
        live = (
            f"SELECT {PATH_COLUMNS}, source FROM market_paths "
            "WHERE window_start = '2026-02-28 23:45'"
        )
        first = rows(at_tick, f"{live} ORDER BY ALL")
        assert {r[-1] for r in first} == {"live"} and len(first) == 45
        assert all(r[5] is not None and r[7] is not None for r in first)
        # The same window again gives the same rows.
        assert dg.materialize([market_paths], partition_key=LIVE_KEY, resources=at_tick).success
        assert rows(at_tick, f"{live} ORDER BY ALL") == first


def test_a_clob_outage_keeps_the_window_and_says_why(resources, server):
    assert dg.materialize(ASSETS, partition_key=KEY, resources=resources).success
    before = rows(resources, "SELECT * FROM market_paths ORDER BY ALL")
    server.set_faults(FaultSpec(down=frozenset({"clob"})))
    try:
        result = dg.materialize(
            [market_paths], partition_key=KEY, resources=resources, raise_on_error=False
        )
    finally:
        server.set_faults(None)
    assert not result.success
    assert rows(resources, "SELECT * FROM market_paths ORDER BY ALL") == before
    status, errors = rows(
        resources,
        "SELECT status, errors FROM collection_runs WHERE asset = 'market_paths' "
        "ORDER BY finished_at DESC LIMIT 1",
    )[0]
    assert status == "failed" and "503" in str(errors)


def test_an_unknown_family_is_refused_in_one_line(resources):
    assert dg.materialize(ASSETS[:3], partition_key=KEY, resources=resources).success
    config = {"ops": {"market_paths": {"config": {"path_families": ["updown_15m", "updown_2m"]}}}}
    with pytest.raises(dg.Failure, match=r"path_families: unknown family updown_2m; known: "):
        dg.materialize([market_paths], partition_key=KEY, resources=resources, run_config=config)


def test_a_rerun_where_one_token_fails_keeps_that_market_s_rows(resources, server):
    assert dg.materialize(ASSETS, partition_key=KEY, resources=resources).success
    before = rows(resources, "SELECT * FROM market_paths ORDER BY ALL")
    market, token = rows(
        resources,
        "SELECT market_id, yes_token_id FROM market_paths WHERE family = 'updown_5m' "
        "ORDER BY market_id LIMIT 1",
    )[0]
    server.set_faults(FaultSpec(history_down=frozenset({token})))
    try:
        # A window older than the cache's reach: the tokens are fetched again.
        result = dg.materialize([market_paths], partition_key=KEY, resources=resources)
    finally:
        server.set_faults(None)
    assert result.success
    assert rows(resources, "SELECT * FROM market_paths ORDER BY ALL") == before
    errors = json.loads(
        rows(
            resources,
            "SELECT errors FROM collection_runs WHERE asset = 'market_paths' "
            "ORDER BY finished_at DESC LIMIT 1",
        )[0][0]
    )
    assert any(e.startswith(f"market {market}: ") and "503" in e for e in errors), errors
