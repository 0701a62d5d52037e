"""After a training: the newest edge report recomputed with the new model."""

from __future__ import annotations

import dagster as dg

from btc_tracker_pipeline.defs.model.inputs import newest_indicator_window
from btc_tracker_pipeline.defs.resources import WarehouseResource
from btc_tracker_pipeline.defs.schedules import edge_refresh_job, train_job
from btc_tracker_pipeline.partitions import key_of


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[train_job],
    request_job=edge_refresh_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "When train_job succeeds (schedule or UI), recompute the newest window's edge report "
        "with the new model, so the latest edges show the model's view, not no_model rows."
    ),
)
def edges_after_training(
    context: dg.RunStatusSensorContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    """A run of edge_refresh_job for the newest window that has indicators."""
    with warehouse.connect(read_only=True) as conn:
        newest = newest_indicator_window(conn)
    if newest is None:
        return dg.SkipReason("no indicators yet: nothing to report on")
    return dg.RunRequest(
        run_key=f"edges-after-{context.dagster_run.run_id}", partition_key=key_of(newest)
    )
