"""Housekeeping the daemon does for the instance itself."""

from __future__ import annotations

import dagster as dg

from btc_tracker_pipeline.orphans import free_orphaned_runs


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every minute: runs whose process was killed (kill -9, OOM, power loss) are marked "
        "failed and their DuckDB writer-pool slot is freed, so later runs do not wait forever."
    ),
)
def orphaned_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Free the pool slots of runs whose process died (see ``orphans``)."""
    freed = free_orphaned_runs(context.instance)
    for orphan in freed:
        context.log.warning(f"run {orphan.run_id} ({orphan.job_name}) orphaned: {orphan.why}")
    if not freed:
        return dg.SkipReason("no orphaned runs")
    return dg.SkipReason("freed " + ", ".join(f"{o.run_id[:8]} ({o.why})" for o in freed))
