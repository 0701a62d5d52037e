"""A replay server and a throwaway warehouse for asset tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from btc_tracker_pipeline.defs.resources import (
    BinanceResource,
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

# The reference world: btc-tracker replay --seed 7 --days 2 --now 2026-03-01T00:00:00Z
WORLD_NOW = datetime(2026, 3, 1, 0, 0)


@pytest.fixture(scope="session")
def replay_url() -> Iterator[str]:
    world = SimulatedWorld(seed=7, days=2, now=WORLD_NOW)
    with ReplayServer(world) as server:
        yield server.url


@pytest.fixture
def resources(replay_url: str, tmp_path) -> dict:
    return {
        "polymarket": PolymarketResource(
            gamma_url=f"{replay_url}/gamma", clob_url=f"{replay_url}/clob"
        ),
        "binance": BinanceResource(base_url=f"{replay_url}/binance"),
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        "clock": ClockResource(),
    }
