"""Our own process stopped from outside: Ctrl+C / SIGTERM stop cleanly, kill -9 is repaired.

Each test runs the real `btc-tracker backfill` in a subprocess against a replay server
and signals it while a run is writing the warehouse.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import pytest

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline_tests.cli_process import (
    claimed_slots,
    cli_env,
    runs,
    snapshot_rows,
    start_cli,
    wait_for_history_requests,
)

pytestmark = pytest.mark.integration

# 97 windows: one run of a day (96) and a second run of one window.
FIRST, LAST = "2026-02-27-23:45", "2026-02-28-23:45"


@pytest.fixture
def world_env(tmp_path) -> Iterator[tuple[ReplayServer, dict[str, str]]]:
    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    with ReplayServer(world) as server:
        yield server, cli_env(server, tmp_path)


# The resume (a second backfill) is checked once; it is the slow part.
@pytest.mark.parametrize(("sig", "resume_too"), [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_a_signal_stops_a_backfill_at_a_window_boundary(world_env, monkeypatch, sig, resume_too):
    server, env = world_env
    monkeypatch.setenv("BTC_TRACKER_DAGSTER_STORAGE", env["BTC_TRACKER_DAGSTER_STORAGE"])
    proc = start_cli(env, "backfill", "--from", FIRST, "--to", LAST)
    wait_for_history_requests(server, proc)
    time.sleep(1.0)  # well inside the window writes
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)

    assert proc.returncode == 128 + sig, out
    assert f"stopped by {sig.name}" in out
    assert f"resume with: btc-tracker backfill --from {FIRST} --to {LAST}" in out
    # The run is failed (not left STARTED), no second run started, the slot is free.
    assert [r.status for r in runs(env)] == [dg.DagsterRunStatus.FAILURE]
    assert claimed_slots(env) == []
    before = snapshot_rows(env)
    if not resume_too:
        return

    resume = start_cli(env, "backfill", "--from", FIRST, "--to", LAST)
    out, _ = resume.communicate(timeout=300)
    assert resume.returncode == 0, out
    after = snapshot_rows(env)
    assert len(after) == 97
    # Every window written before the stop was whole: the same rows as the finished one.
    assert all(before[w] == after[w] for w in before)


def test_kill_9_mid_run_does_not_block_the_next_run(world_env, monkeypatch):
    server, env = world_env
    proc = start_cli(env, "backfill", "--from", FIRST, "--to", LAST)
    wait_for_history_requests(server, proc)
    proc.kill()
    proc.wait()
    killed = runs(env)
    assert [r.status for r in killed] == [dg.DagsterRunStatus.STARTED]
    assert claimed_slots(env) == [killed[0].run_id]  # without repair: every later run waits

    tick = start_cli(env, "collect", "--partition", "2026-02-28-23:30")
    out, _ = tick.communicate(timeout=180)

    assert tick.returncode == 0, out
    assert f"run {killed[0].run_id[:8]} (collect_job) was orphaned" in out
    statuses = {r.run_id: r.status for r in runs(env)}
    assert statuses.pop(killed[0].run_id) == dg.DagsterRunStatus.FAILURE
    assert list(statuses.values()) == [dg.DagsterRunStatus.SUCCESS]
    assert claimed_slots(env) == []
    assert datetime(2026, 2, 28, 23, 30) in snapshot_rows(env)
