"""Runs whose process died (kill -9, power loss) and the pool slots they still hold.

Every warehouse writer is in one Dagster pool with limit 1. A run killed while it holds
the slot stays STARTED and keeps the slot, so every later run waits forever
(docs/dagster.md, "Pools"); Dagster's own ``report_run_failed`` does not free it. We
find such runs by the process that started them and free them at start-up of every
CLI write and from a sensor in the daemon.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg

HOST_TAG = "btc_tracker/host"
PID_TAG = "btc_tracker/pid"
_LIVE_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]


@dataclass(frozen=True)
class OrphanedRun:
    """A run that was marked failed and had its pool slots freed."""

    run_id: str
    job_name: str
    pid: int | None
    why: str


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the one executing a run (for in-process runs)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _run_process(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[str | None, int | None]:
    """(host, pid) of the process executing ``run``, or (None, None) when unknown.

    Our own runs carry tags; any other run (the daemon's, ``dagster asset materialize``)
    is known by the pid on its RUN_START event, which is only meaningful when the
    instance is local to this host (SQLite storage).
    """
    if PID_TAG in run.tags:
        return run.tags.get(HOST_TAG), int(run.tags[PID_TAG])
    if "sqlite" not in type(instance.run_storage).__name__.lower():
        return None, None
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    if not records or records[0].event_log_entry.dagster_event is None:
        return None, None
    return socket.gethostname(), records[0].event_log_entry.dagster_event.pid


def _why_orphaned(
    instance: dg.DagsterInstance, run: dg.DagsterRun | None
) -> tuple[str | None, int | None]:
    """(why the run is orphaned or None when it is not, the pid that ran it if known)."""
    if run is None:
        return "run no longer exists", None
    host, pid = _run_process(instance, run)
    if run.is_finished:
        return f"run already {run.status.value}", pid
    if pid is None or host != socket.gethostname():
        return None, pid  # another host's run, or one we cannot judge: leave it alone
    if pid == os.getpid() or process_alive(pid):
        return None, pid
    return f"process {pid} that ran it is gone", pid


def free_orphaned_runs(instance: dg.DagsterInstance) -> list[OrphanedRun]:
    """Mark runs whose process died as failed and free every pool slot they hold.

    Looks at the runs holding or waiting for a pool slot and at STARTED runs; a run
    whose process is alive (or on another host) is never touched.
    """
    storage = instance.event_log_storage
    holders: set[str] = set()
    for key in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(key)
        holders |= {slot.run_id for slot in info.claimed_slots}
        holders |= {step.run_id for step in info.pending_steps}
    started = instance.get_runs(filters=dg.RunsFilter(statuses=_LIVE_STATUSES), limit=200)
    candidates = {run.run_id: run for run in started}
    for run_id in holders - set(candidates):
        candidates[run_id] = instance.get_run_by_id(run_id)

    freed = []
    for run_id, run in candidates.items():
        why, pid = _why_orphaned(instance, run)
        if why is None:
            continue
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"orphaned: {why}; marked failed by btc-tracker")
        if run_id in holders:
            storage.free_concurrency_slots_for_run(run_id)
        freed.append(OrphanedRun(run_id, run.job_name if run else "?", pid, why))
    return freed
