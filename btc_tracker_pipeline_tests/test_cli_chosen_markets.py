"""`btc-tracker collect --market-ids X` on a collected window (the next step `btc-tracker
markets` prints): X's rows are replaced, the window keeps every other market, and the
command says so."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline_tests.cli_process import ROOT, cli_env
from btc_tracker_pipeline_tests.defs.conftest import WORLD_NOW

KEY = "2026-02-28-23:30"
TABLES = ("tracked_markets", "market_snapshots", "market_indicators", "edge_report")


def btc_tracker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "btc_tracker_pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def counts(path: str) -> dict[str, int]:
    with duckdb.connect(path, read_only=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_collect_for_one_market_keeps_the_rest_of_the_window(tmp_path):
    with ReplayServer(SimulatedWorld(seed=7, days=2, now=WORLD_NOW)) as server:
        env = cli_env(server, tmp_path)
        assert btc_tracker(env, "collect", "--partition", KEY).returncode == 0
        before = counts(env["BTC_TRACKER_WAREHOUSE"])
        with duckdb.connect(env["BTC_TRACKER_WAREHOUSE"], read_only=True) as conn:
            (one,) = conn.execute("SELECT min(market_id) FROM market_snapshots").fetchone()
        chosen = btc_tracker(env, "collect", "--partition", KEY, "--market-ids", one)
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    assert "only their rows are added or replaced" in chosen.stdout
    assert before["tracked_markets"] > 100
    assert counts(env["BTC_TRACKER_WAREHOUSE"]) == before
    stats = btc_tracker(env, "stats", "--json")
    assert json.loads(stats.stdout)["thin_windows"] == []
