"""Runs whose process died are marked failed and their pool slot freed; live runs are not."""

from __future__ import annotations

import subprocess
import sys
import uuid

import dagster as dg
import pytest

from btc_tracker_pipeline.orphans import HOST_TAG, PID_TAG, free_orphaned_runs, owner_tags

pytestmark = pytest.mark.integration

POOL = "duckdb_write"


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        # What Dagster does before a step of the pool first claims a slot.
        inst.event_log_storage.initialize_concurrency_limit_to_default(POOL)
        yield inst


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(
        dg.DagsterRun(
            job_name="collect_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags
        )
    )
    return run_id


def claimed(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return {slot.run_id for slot in info.claimed_slots}


def test_a_killed_run_holding_the_slot_is_failed_and_its_slot_freed(instance):
    run_id = started_run(instance, {**owner_tags(), PID_TAG: str(dead_pid())})
    status = instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "market_snapshots")
    assert status.is_claimed and claimed(instance) == {run_id}
    # Without the repair, a run of this live process could never get the slot.
    waiting = started_run(instance, owner_tags())
    storage = instance.event_log_storage
    assert not storage.claim_concurrency_slot(POOL, waiting, "tracked_markets").is_claimed

    freed = free_orphaned_runs(instance)

    assert [o.run_id for o in freed] == [run_id]
    assert "is gone" in freed[0].why
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(waiting).status == dg.DagsterRunStatus.STARTED
    assert storage.claim_concurrency_slot(POOL, waiting, "tracked_markets").is_claimed


def test_runs_of_live_processes_and_other_hosts_are_left_alone(instance):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = started_run(instance, {**owner_tags(), PID_TAG: str(sleeper.pid)})
        elsewhere = started_run(instance, {HOST_TAG: "another-host", PID_TAG: str(dead_pid())})
        instance.event_log_storage.claim_concurrency_slot(POOL, live, "market_snapshots")

        assert free_orphaned_runs(instance) == []
        assert instance.get_run_by_id(live).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(elsewhere).status == dg.DagsterRunStatus.STARTED
        assert claimed(instance) == {live}
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_finished_run_still_holding_a_slot_releases_it(instance):
    run_id = started_run(instance, owner_tags())
    instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "btc_spot_prices")
    instance.report_run_failed(instance.get_run_by_id(run_id), "failed elsewhere")

    freed = free_orphaned_runs(instance)

    assert [o.run_id for o in freed] == [run_id] and "already FAILURE" in freed[0].why
    assert claimed(instance) == set()


def test_the_daemon_sensor_frees_orphans(instance):
    from btc_tracker_pipeline.definitions import defs

    run_id = started_run(instance, {**owner_tags(), PID_TAG: str(dead_pid())})
    instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "market_snapshots")
    sensor = defs().resolve_sensor_def("orphaned_runs_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))

    assert run_id[:8] in result.skip_message
    assert claimed(instance) == set()
