"""`btc-tracker collect --market-ids X` on a collected window (the next step `btc-tracker
markets` prints): X's rows are replaced, the window keeps every other market, and the
command says so."""

from __future__ import annotations

import json

import duckdb
import pytest

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline_tests.cli_process import cli_env, run_cli
from btc_tracker_pipeline_tests.defs.conftest import WORLD_NOW

pytestmark = pytest.mark.integration

KEY = "2026-02-28-23:30"
TABLES = ("tracked_markets", "market_snapshots", "market_indicators", "edge_report")


def counts(path: str) -> dict[str, int]:
    with duckdb.connect(path, read_only=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_collect_for_one_market_keeps_the_rest_of_the_window(tmp_path):
    with ReplayServer(SimulatedWorld(seed=7, days=2, now=WORLD_NOW)) as server:
        env = cli_env(server, tmp_path)
        assert run_cli(env, "collect", "--partition", KEY).returncode == 0
        before = counts(env["BTC_TRACKER_WAREHOUSE"])
        with duckdb.connect(env["BTC_TRACKER_WAREHOUSE"], read_only=True) as conn:
            (one,) = conn.execute("SELECT min(market_id) FROM market_snapshots").fetchone()
        chosen = run_cli(env, "collect", "--partition", KEY, "--market-ids", one)
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    assert "only their rows are added or replaced" in chosen.stdout
    assert before["tracked_markets"] > 100
    assert counts(env["BTC_TRACKER_WAREHOUSE"]) == before
    stats = run_cli(env, "stats", "--json")
    assert json.loads(stats.stdout)["thin_windows"] == []
