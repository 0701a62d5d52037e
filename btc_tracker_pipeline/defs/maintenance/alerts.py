"""Alerts for a pipeline left running: a failed run, and windows that stopped arriving.

Both go through one hook (``btc_tracker_pipeline.alerts``): a log line always, and a
Slack-compatible webhook when BTC_TRACKER_ALERT_WEBHOOK is set (docs/operations.md,
"Alerts").
"""

from __future__ import annotations

import dagster as dg

from btc_tracker_pipeline.alerts import Alert, notify
from btc_tracker_pipeline.defs.resources import AlertResource, ClockResource, WarehouseResource
from btc_tracker_pipeline.staleness import judge, lag, newest_collected
from btc_tracker_pipeline.warehouse import WarehouseError
from btc_tracker_pipeline.warehouse import warehouse as read_warehouse

# The stale-data sensor waits this long for a running collection's write lock, then
# tries again at its next evaluation.
READ_WAIT_S = 20.0
STALE_EVERY_S = 300
SCHEDULE_PAGE = "locations/btc_tracker_pipeline/schedules/collect_job_schedule"


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "A run of any of this project's jobs launched through the daemon or the UI failed "
        "(a tick, a backfill, a launch from the UI): one alert with the job, its window, the "
        "run id and the first failed step's error. A run the daemon retries alerts again if "
        "the retry fails too. (btc-tracker collect/backfill run in their own process and "
        "report their failure there.)"
    ),
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertResource) -> None:
    """Send one alert for the failed run."""
    run = context.dagster_run
    notify(
        Alert(
            what="run failed",
            job=run.job_name,
            window=_window(run.tags),
            run_id=run.run_id,
            detail=_first_error(context),
            url=alerts.page(f"runs/{run.run_id}"),
        ),
        alerts.webhook_url,
        context.log,
    )


def _window(tags: dict[str, str]) -> str | None:
    """The run's window key, or ``first…last`` for a ranged (backfill) run."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    first = tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/asset_partition_range_end")
    return f"{first}…{last}" if first and last else None


def _first_error(context: dg.RunFailureSensorContext) -> str:
    """``step: error message`` of the first failed step, else the run's failure message."""
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None:
            return f"{event.step_key}: {error.message.strip()}"
    return context.failure_event.message or "run failed"


@dg.sensor(
    name="stale_data_alert",
    minimum_interval_seconds=STALE_EVERY_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every 5 minutes: when the newest window in the warehouse lags the clock by "
        "BTC_TRACKER_ALERT_STALE_WINDOWS (default 2) or more missed 15-minute windows, one "
        "alert per incident; it closes when windows arrive again, so the next stall alerts "
        "anew."
    ),
)
def stale_data_alert(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    alerts: AlertResource,
    clock: ClockResource,
) -> dg.SkipReason:
    """Compare the newest collected window with the clock; alert when an incident opens."""
    limit = alerts.limit()
    try:
        with read_warehouse(warehouse.path, read_only=True, wait_s=READ_WAIT_S) as conn:
            newest = newest_collected(conn)
    except WarehouseError as exc:
        return dg.SkipReason(f"not checked: {exc}")
    if newest is None:
        return dg.SkipReason("no window collected yet")
    current = lag(newest, clock.now())
    verdict = judge(current, limit, context.cursor)
    context.update_cursor(verdict.cursor)
    if verdict.alert:
        notify(
            Alert(
                what="windows missed",
                job="collect_job",
                detail=f"{current.describe()}; btc-tracker stats lists the gaps",
                url=alerts.page(SCHEDULE_PAGE),
            ),
            alerts.webhook_url,
            context.log,
        )
    elif verdict.recovered:
        context.log.info(f"btc-tracker: windows arrive again: {current.describe()}")
    return dg.SkipReason(current.describe())
