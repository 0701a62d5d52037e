"""Run the real `btc-tracker` command in a subprocess against an in-test replay server,
and look at the Dagster instance and warehouse it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from btc_tracker_pipeline.environment import replay_variables
from btc_tracker_pipeline.replay import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
POOL = "duckdb_write"


def cli_env(server: ReplayServer, folder: Path) -> dict[str, str]:
    """Environment pointing every client at ``server`` and all state into ``folder``."""
    return os.environ | {
        **replay_variables(server.url),
        "BTC_TRACKER_WAREHOUSE": str(folder / "warehouse.duckdb"),
        "BTC_TRACKER_DAGSTER_STORAGE": str(folder / "dagster"),
        "BTC_TRACKER_MODELS": str(folder / "models"),
        "COLUMNS": "200",
    }


def _default_signals() -> None:
    # Children of a background job start with SIGINT ignored; a user's terminal does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_cli(env: dict[str, str], *args: str, **popen: object) -> subprocess.Popen:
    """Start ``btc-tracker *args`` with default signal handlers, output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "btc_tracker_pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_signals,
        **popen,
    )


def run_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``btc-tracker *args`` to the end, stdout and stderr captured apart."""
    return subprocess.run(
        [sys.executable, "-m", "btc_tracker_pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_history_requests(server: ReplayServer, proc: subprocess.Popen) -> None:
    """Block until a run is fetching quotes (past discovery, holding the writer pool)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        routes = server.stats()["routes"]
        if any("prices-history" in route for route in routes) or proc.poll() is not None:
            return
        time.sleep(0.05)
    raise AssertionError("the backfill never reached market_snapshots")


def instance(env: dict[str, str]) -> dg.DagsterInstance:
    """The Dagster instance the CLI used (the repo's dagster.yaml, storage from ``env``)."""
    os.environ["BTC_TRACKER_DAGSTER_STORAGE"] = env["BTC_TRACKER_DAGSTER_STORAGE"]
    return dg.DagsterInstance.from_config(str(ROOT))


def runs(env: dict[str, str]) -> list[dg.DagsterRun]:
    """Every run in the instance, oldest first."""
    with instance(env) as inst:
        return list(reversed(inst.get_runs()))


def claimed_slots(env: dict[str, str]) -> list[str]:
    """Run ids holding a slot of the DuckDB writer pool."""
    with instance(env) as inst:
        info = inst.event_log_storage.get_concurrency_info(POOL)
        return [slot.run_id for slot in info.claimed_slots]


def snapshot_rows(env: dict[str, str]) -> dict[datetime, list[tuple]]:
    """market_snapshots rows (window, market, price, quote time) grouped by window."""
    with duckdb.connect(env["BTC_TRACKER_WAREHOUSE"], read_only=True) as conn:
        rows = conn.execute(
            "SELECT window_start, market_id, yes_price, quote_ts FROM market_snapshots "
            "ORDER BY window_start, market_id"
        ).fetchall()
    by_window: dict[datetime, list[tuple]] = {}
    for row in rows:
        by_window.setdefault(row[0], []).append(row)
    return by_window
