"""One API down: the healthy part of the tick lands, the failure is recorded, nothing is wiped."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets
from btc_tracker_pipeline.defs.resources import (
    BinanceResource,
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.replay import FaultSpec, ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

from .conftest import WORLD_NOW

pytestmark = pytest.mark.integration

KEY = "2026-02-28-23:30"


def test_clob_down_keeps_old_snapshots_and_records_why(tmp_path):
    world = SimulatedWorld(seed=7, days=2, now=WORLD_NOW)
    path = str(tmp_path / "w.duckdb")
    assets = [tracked_markets, market_snapshots, btc_spot_prices]

    def resources(url: str) -> dict:
        return {
            "polymarket": PolymarketResource(
                gamma_url=f"{url}/gamma", clob_url=f"{url}/clob", max_attempts=1
            ),
            "binance": BinanceResource(base_url=f"{url}/binance"),
            "warehouse": WarehouseResource(path=path),
            "clock": ClockResource(),
        }

    with ReplayServer(world) as healthy:
        assert dg.materialize(assets, partition_key=KEY, resources=resources(healthy.url)).success
    with duckdb.connect(path, read_only=True) as conn:
        before = conn.execute("SELECT * FROM market_snapshots ORDER BY market_id").fetchall()

    with ReplayServer(world, faults=FaultSpec.parse("down=clob")) as broken:
        result = dg.materialize(
            assets, partition_key=KEY, resources=resources(broken.url), raise_on_error=False
        )
    assert not result.success
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    succeeded = {e.step_key for e in result.all_events if e.is_step_success}
    assert failed == {"market_snapshots"}
    assert succeeded == {"tracked_markets", "btc_spot_prices"}

    with duckdb.connect(path, read_only=True) as conn:
        after = conn.execute("SELECT * FROM market_snapshots ORDER BY market_id").fetchall()
        status, tried, ok, errors = conn.execute(
            "SELECT status, markets_tried, markets_ok, errors FROM collection_runs "
            "WHERE asset = 'market_snapshots' ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
    assert after == before
    assert (status, ok) == ("failed", 0) and tried > 20
    reasons = json.loads(errors)
    assert len(reasons) == tried and all("ServerError" in r for r in reasons)
