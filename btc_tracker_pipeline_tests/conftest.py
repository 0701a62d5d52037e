"""Shared pytest fixtures, and the check that every test is of exactly one kind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Every test is of exactly one kind (the markers registered in pyproject.toml): `pytest -m
# unit` is the quick run, and a test of no kind would silently fall out of it.
KINDS = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: every collected test is checked
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test with none or several of KINDS is a collection error naming it, and nothing
    runs (pytest-xdist reports a worker's collection error but would run the rest)."""
    wrong = []
    for item in items:
        kinds = sorted({m.name for m in item.iter_markers() if m.name in KINDS})
        if len(kinds) != 1:
            has = f"is marked {' and '.join(kinds)}" if kinds else "has no kind marker"
            message = (
                f"{item.name} {has}: a test needs exactly one of {', '.join(KINDS)} "
                "(pytest.mark.<kind> on it, or pytestmark in its module)"
            )
            wrong.append(pytest.CollectReport(item.nodeid, "failed", message, result=[]))
    for report in wrong:
        config.hook.pytest_collectreport(report=report)
    if wrong:
        items.clear()


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

    from btc_tracker_pipeline.environment import replay_variables
    from btc_tracker_pipeline.replay import ReplayServer
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld

    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    with ReplayServer(world) as server:
        env = {
            **replay_variables(server.url),
            "BTC_TRACKER_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env
