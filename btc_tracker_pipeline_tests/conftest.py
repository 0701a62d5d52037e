"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The recorded API responses: ``$BTC_TRACKER_FIXTURES``, else ``shared/fixtures``
    beside the repository (CI clones the repo next to a read-only ``shared/``)."""
    configured = os.environ.get("BTC_TRACKER_FIXTURES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture
def replay_env(tmp_path, monkeypatch):
    """A replay server (seed 7, 2 days to 2026-03-01) with the API variables pointing at it
    and a temporary warehouse; yields the variables."""
    from datetime import datetime

    from btc_tracker_pipeline.replay import ReplayServer
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld

    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    with ReplayServer(world) as server:
        env = {
            "BTC_TRACKER_GAMMA_URL": f"{server.url}/gamma",
            "BTC_TRACKER_CLOB_URL": f"{server.url}/clob",
            "BTC_TRACKER_BINANCE_URL": f"{server.url}/binance",
            "BTC_TRACKER_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env
