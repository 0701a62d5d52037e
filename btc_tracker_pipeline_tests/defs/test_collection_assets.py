"""The three collection assets against the replay server, into a temporary DuckDB."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets
from btc_tracker_pipeline.defs.resources import ClockResource

pytestmark = pytest.mark.integration

ASSETS = [tracked_markets, market_snapshots, btc_spot_prices]
KEY = "2026-02-28-23:30"
TABLES = {
    "tracked_markets": "window_start, market_id",
    "market_snapshots": "window_start, market_id",
    "btc_spot_prices": "open_time",
    "btc_spot_windows": "window_start",
}


def dump(path: str) -> dict[str, list[tuple]]:
    with duckdb.connect(path, read_only=True) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in TABLES.items()
        }


def test_one_window_writes_every_table(resources):
    result = dg.materialize(ASSETS, partition_key=KEY, resources=resources)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "tracked_coverage": True,
        "prices_in_unit_interval": True,
        "outcome_prices_sum_to_one": True,
        "coverage": True,
    }
    tables = dump(resources["warehouse"].path)
    tracked, snaps = tables["tracked_markets"], tables["market_snapshots"]
    assert len(tracked) > 20
    # Snapshots cover (nearly) every tracked market, priced in [0, 1], from history.
    assert len(snaps) >= 0.9 * len(tracked)
    with duckdb.connect(resources["warehouse"].path, read_only=True) as conn:
        lo, hi, sources = conn.execute(
            "SELECT min(yes_price), max(yes_price), list(DISTINCT source) FROM market_snapshots"
        ).fetchone()
        families = {
            r[0] for r in conn.execute("SELECT DISTINCT family FROM tracked_markets").fetchall()
        }
        runs = conn.execute(
            "SELECT asset, status, markets_tried, markets_ok FROM collection_runs ORDER BY asset"
        ).fetchall()
        spot = conn.execute(
            "SELECT count(*), min(open_time), max(open_time) FROM btc_spot_prices"
        ).fetchone()
    assert 0.0 <= lo <= hi <= 1.0
    assert sources == ["history"]
    assert {"updown_15m", "updown_1h", "above"} <= families
    assert [r[0] for r in runs] == ["btc_spot_prices", "market_snapshots", "tracked_markets"]
    assert (
        spot[0] == 15
        and spot[1].strftime("%H:%M") == "23:30"
        and spot[2].strftime("%H:%M") == "23:44"
    )


def test_same_window_twice_gives_identical_rows(resources):
    assert dg.materialize(ASSETS, partition_key=KEY, resources=resources).success
    first = dump(resources["warehouse"].path)
    assert dg.materialize(ASSETS, partition_key=KEY, resources=resources).success
    assert dump(resources["warehouse"].path) == first


def test_explicit_market_ids_replace_only_their_tracked_rows(resources):
    assert dg.materialize(ASSETS, partition_key=KEY, resources=resources).success
    with duckdb.connect(resources["warehouse"].path, read_only=True) as conn:
        count = conn.execute("SELECT count(*) FROM tracked_markets").fetchone()[0]
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT market_id FROM tracked_markets ORDER BY market_id LIMIT 2"
            ).fetchall()
        ]
    config = {"ops": {"tracked_markets": {"config": {"market_ids": ids}}}}
    assert dg.materialize(ASSETS, partition_key=KEY, resources=resources, run_config=config).success
    with duckdb.connect(resources["warehouse"].path, read_only=True) as conn:
        by_ids = conn.execute(
            "SELECT market_id FROM tracked_markets WHERE discovered_by = 'ids' ORDER BY 1"
        ).fetchall()
        after = conn.execute("SELECT count(*) FROM tracked_markets").fetchone()[0]
    assert [r[0] for r in by_ids] == ids
    assert after == count


def test_window_that_just_ended_is_collected_live_with_the_same_columns(resources):
    # The replay world stands at 2026-03-01 00:00; the tick runs 3 minutes later.
    at_tick = resources | {"clock": ClockResource(now_utc="2026-03-01T00:03:00")}
    live_key = "2026-02-28-23:45"
    assert dg.materialize(ASSETS, partition_key=live_key, resources=at_tick).success
    assert dg.materialize(ASSETS, partition_key=KEY, resources=resources).success
    with duckdb.connect(resources["warehouse"].path, read_only=True) as conn:
        by_source = conn.execute(
            "SELECT source, count(*), count(best_bid), count(volume), min(yes_price), "
            "max(yes_price) FROM market_snapshots GROUP BY source ORDER BY source"
        ).fetchall()
        spot_sources = conn.execute(
            "SELECT window_start, source FROM btc_spot_windows ORDER BY window_start"
        ).fetchall()
    (hist, *_), (live, n_live, bids, volumes, lo, hi) = by_source[0], by_source[1]
    assert (hist, live) == ("history", "live")
    assert n_live > 20 and bids > 0.5 * n_live and volumes == n_live
    assert 0.0 <= lo <= hi <= 1.0
    assert [s for _, s in spot_sources] == ["klines", "ticker"]
