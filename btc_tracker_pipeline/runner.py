"""Run the collection job in this process for one window or a range of windows.

A range is cut into runs of up to a day (96 windows) — the same runs a UI backfill
makes under the assets' BackfillPolicy — each recorded in the Dagster instance so
it shows in the UI. In-process execution avoids ~10 s of start-up per run
(docs/dagster.md §3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from btc_tracker_pipeline import failures, stopping
from btc_tracker_pipeline.orphans import OrphanedRun, free_orphaned_runs, owner_tags
from btc_tracker_pipeline.partitions import WINDOWS_PER_RUN, fifteen_minute_partitions

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Dagster's console logger prints every event of every window and each step failure with
# its trace (at ERROR); WARNING keeps the failures (--verbose), QUIET prints nothing.
VERBOSE = "WARNING"
QUIET = "CRITICAL"


@dataclass(frozen=True)
class ChunkOutcome:
    """One run over consecutive windows."""

    first_key: str
    last_key: str
    windows: int
    success: bool
    run_id: str
    error: str | None
    hint: str | None = None
    unknown_market_ids: tuple[str, ...] = ()


def partition_keys(first_key: str, last_key: str) -> list[str]:
    """Every partition key from ``first_key`` to ``last_key`` inclusive; ValueError if invalid."""
    valid = fifteen_minute_partitions.get_partition_keys()
    for key in (first_key, last_key):
        if not fifteen_minute_partitions.has_partition_key(key):
            raise ValueError(
                f"{key!r} is not a partition key between {valid[0]} and {valid[-1]} "
                "(format YYYY-MM-DD-HH:MM on a quarter hour, UTC)"
            )
    keys = fifteen_minute_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(first_key, last_key)
    )
    if not keys:
        raise ValueError(f"empty range: {first_key} is after {last_key}")
    return keys


def chunks(keys: Sequence[str], size: int = WINDOWS_PER_RUN) -> list[list[str]]:
    """Consecutive runs of at most ``size`` keys."""
    return [list(keys[i : i + size]) for i in range(0, len(keys), size)]


def outcome_of(chunk: Sequence[str], result: dg.ExecuteInProcessResult) -> ChunkOutcome:
    """What a run over ``chunk`` did: success, or its root cause on one line."""
    cause = None if result.success else failures.run_cause(result)
    return ChunkOutcome(
        chunk[0],
        chunk[-1],
        len(chunk),
        result.success,
        result.run_id,
        cause.text if cause else None,
        cause.hint if cause else None,
        tuple(failures.unknown_market_ids(result)),
    )


def _execute(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    config: dict[str, Any],
    tags: dict[str, str],
    partition_key: str | None = None,
) -> dg.ExecuteInProcessResult:
    """One in-process run, tagged with this process, in a worker thread (see ``stopping``)."""
    return stopping.in_worker_thread(
        lambda: job.execute_in_process(
            instance=instance,
            run_config=config,
            raise_on_error=False,
            partition_key=partition_key,
            tags=tags | owner_tags(),
        )
    )


def free_orphans(
    instance: dg.DagsterInstance, on_orphan: Callable[[OrphanedRun], None] | None = None
) -> list[OrphanedRun]:
    """Free the pool slots of runs whose process died (see ``orphans``), reporting each."""
    freed = free_orphaned_runs(instance)
    for orphan in freed:
        if on_orphan:
            on_orphan(orphan)
    return freed


def run_windows(
    keys: Sequence[str],
    *,
    job_name: str = "collect_job",
    run_config: dict[str, Any] | None = None,
    chunk_size: int = WINDOWS_PER_RUN,
    on_chunk: Callable[[ChunkOutcome], None] | None = None,
    on_orphan: Callable[[OrphanedRun], None] | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str = VERBOSE,
) -> list[ChunkOutcome]:
    """Materialize ``job_name`` for ``keys`` in runs of ``chunk_size`` windows.

    A failing run is reported and the next one still runs (nothing healthy is skipped).
    Runs orphaned by a killed process are freed first. After a stop request
    (``stopping``) no further run starts.
    """
    from btc_tracker_pipeline.definitions import defs

    job = defs().resolve_job_def(job_name)
    config = {"loggers": {"console": {"config": {"log_level": log_level}}}} | (run_config or {})
    instance = instance or dg.DagsterInstance.get()
    free_orphans(instance, on_orphan)
    outcomes = []
    for chunk in chunks(keys, chunk_size):
        if stopping.requested():
            break
        if len(chunk) == 1:
            result = _execute(job, instance, config, {}, partition_key=chunk[0])
        else:
            tags = {RANGE_START_TAG: chunk[0], RANGE_END_TAG: chunk[-1]}
            result = _execute(job, instance, config, tags)
        outcome = outcome_of(chunk, result)
        outcomes.append(outcome)
        if on_chunk:
            on_chunk(outcome)
    return outcomes


def run_job(
    job_name: str,
    *,
    run_config: dict[str, Any] | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str = VERBOSE,
) -> dg.ExecuteInProcessResult:
    """Run an unpartitioned job (e.g. ``train_job``) in this process, recorded in the instance."""
    from btc_tracker_pipeline.definitions import defs

    job = defs().resolve_job_def(job_name)
    config = {"loggers": {"console": {"config": {"log_level": log_level}}}} | (run_config or {})
    instance = instance or dg.DagsterInstance.get()
    free_orphans(instance)
    return _execute(job, instance, config, {})


def refresh_newest_edges(
    *, instance: dg.DagsterInstance | None = None, log_level: str = VERBOSE
) -> ChunkOutcome | None:
    """Recompute the newest window's edge report with the newest model (``edge_refresh_job``,
    as the ``edges_after_training`` sensor does after a scheduled or UI training); None
    when no window has indicators yet."""
    from btc_tracker_pipeline import environment
    from btc_tracker_pipeline.defs.model.inputs import newest_indicator_window
    from btc_tracker_pipeline.partitions import key_of
    from btc_tracker_pipeline.warehouse import warehouse

    with warehouse(environment.warehouse_path(), read_only=True, wait_s=30) as conn:
        newest = newest_indicator_window(conn)
    if newest is None:
        return None
    outcomes = run_windows(
        [key_of(newest)], job_name="edge_refresh_job", instance=instance, log_level=log_level
    )
    return outcomes[0] if outcomes else None
