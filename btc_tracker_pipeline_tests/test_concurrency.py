"""A backfill, schedule ticks and CLI readers at the same time: nobody sees a lock error,
no run fails because of another, and every window ends up whole."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline_tests.cli_process import (
    claimed_slots,
    cli_env,
    runs,
    start_cli,
    wait_for_history_requests,
)

pytestmark = pytest.mark.integration

BACKFILL = ("2026-02-28-00:00", "2026-02-28-11:45")  # 48 windows, one run
READERS = (["stats", "--json"], ["markets", "--json", "--closed"], ["stats"])


def tick_partitions(times: list[datetime]) -> list[str]:
    """The partitions the real 15-minute schedule requests at these tick times."""
    from btc_tracker_pipeline.definitions import defs

    d = defs()
    schedule = d.resolve_schedule_def("collect_job_schedule")
    keys = []
    for at in times:
        with dg.build_schedule_context(
            scheduled_execution_time=at, repository_def=d.get_repository_def()
        ) as context:
            keys += [r.partition_key for r in schedule.evaluate_tick(context).run_requests]
    return keys


def read_until(stop: threading.Event, env: dict[str, str], results: list) -> None:
    """Run the read-only commands in a loop, as a user watching a long backfill would."""
    while not stop.is_set():
        for args in READERS:
            proc = start_cli(env, *args)
            out, _ = proc.communicate(timeout=120)
            results.append((args, proc.returncode, out))


def test_backfill_ticks_and_readers_run_together(tmp_path):
    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    ticks = tick_partitions(
        [datetime(2026, 2, 28, 23, 45, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)]
    )
    assert ticks == ["2026-02-28-23:30", "2026-02-28-23:45"]
    with ReplayServer(world) as server:
        env = cli_env(server, tmp_path)
        backfill = start_cli(env, "backfill", "--from", BACKFILL[0], "--to", BACKFILL[1])
        wait_for_history_requests(server, backfill)
        tick_procs = [start_cli(env, "collect", "--partition", key) for key in ticks]
        stop, reads = threading.Event(), []
        reader = threading.Thread(target=read_until, args=(stop, env, reads))
        reader.start()
        try:
            outputs = [p.communicate(timeout=600)[0] for p in (backfill, *tick_procs)]
        finally:
            stop.set()
            reader.join(timeout=300)

    codes = [p.returncode for p in (backfill, *tick_procs)]
    assert codes == [0, 0, 0], outputs
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs(env))
    assert len(runs(env)) == 3 and claimed_slots(env) == []
    assert reads, "the readers never ran"
    for args, code, out in reads:
        assert code == 0, (args, out)
        assert "lock" not in out.lower() or "waiting" in out.lower(), (args, out)

    # Every window of the backfill and both ticks is whole: one quote per tracked market.
    with duckdb.connect(env["BTC_TRACKER_WAREHOUSE"], read_only=True) as conn:
        per_window = conn.execute(
            "SELECT t.window_start, count(*) AS tracked, count(s.market_id) AS quoted "
            "FROM tracked_markets t LEFT JOIN market_snapshots s USING (window_start, market_id) "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        failed = conn.execute(
            "SELECT count(*) FROM collection_runs WHERE status <> 'ok'"
        ).fetchone()[0]
    windows = [w for w, _, _ in per_window]
    first = datetime(2026, 2, 28)
    assert windows == [first + i * timedelta(minutes=15) for i in range(48)] + [
        datetime(2026, 2, 28, 23, 30),
        datetime(2026, 2, 28, 23, 45),
    ]
    assert all(tracked == quoted > 0 for _, tracked, quoted in per_window)
    assert failed == 0
