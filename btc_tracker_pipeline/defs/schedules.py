"""The collection job and its 15-minute schedule, the daily training job, and the job
that refreshes an edge report with a new model (all on by default)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from btc_tracker_pipeline import market_selection
from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.features.assets import market_indicators
from btc_tracker_pipeline.defs.health.assets import health
from btc_tracker_pipeline.defs.labels.assets import market_resolutions
from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets
from btc_tracker_pipeline.defs.markets.paths import market_paths
from btc_tracker_pipeline.defs.model.assets import edge_report, paper_trades, price_model
from btc_tracker_pipeline.defs.model.ledger import paper_ledger
from btc_tracker_pipeline.environment import scheduled_families, scheduled_market_ids
from btc_tracker_pipeline.partitions import WINDOW, floor_to_window, key_of

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def utc_now() -> datetime:
    """Now, aware UTC (a schedule evaluated without a tick time, e.g. by hand)."""
    return datetime.now(UTC)


# collect_job's assets in dependency order (benches and the UI test read the names here).
COLLECT_ASSETS = (
    tracked_markets,
    market_snapshots,
    btc_spot_prices,
    market_paths,
    market_resolutions,
    market_indicators,
    edge_report,
    paper_ledger,
    health,
)
COLLECT_ASSET_NAMES = tuple(asset.key.path[-1] for asset in COLLECT_ASSETS)

collect_job = dg.define_asset_job(
    "collect_job",
    selection=list(COLLECT_ASSETS),
    description="One 15-minute tick: markets, quotes, BTC spot, minute paths, settlements, "
    "indicators, edges, the forward paper ledger, the health table.",
    # Runs launched by the daemon or the UI execute their steps in one process: every
    # step writes DuckDB through the one-slot pool, so separate step processes buy no
    # parallelism and cost ~10 s of start-up each. (Run config, not executor_def: an
    # explicit in-process executor changes how execute_in_process captures logs.)
    config=IN_PROCESS,
)


@dg.schedule(
    name="collect_job_schedule",
    job=collect_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: collect_job for the window that just ended (the tick at "
    "10:15 collects 10:00), for every BTC market, or for the ids in BTC_TRACKER_MARKET_IDS "
    "or the families in BTC_TRACKER_FAMILIES.",
)
def collect_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """The run of the window that ended at the tick; its run key is the window's key, so a
    tick fires once. A bad BTC_TRACKER_MARKET_IDS or BTC_TRACKER_FAMILIES fails the tick
    with one line naming it."""
    key = key_of(floor_to_window(context.scheduled_execution_time or utc_now()) - WINDOW)
    config = tick_run_config(scheduled_market_ids(), scheduled_families())
    return dg.RunRequest(run_key=key, partition_key=key, run_config=config)


def tick_run_config(market_ids: tuple[str, ...], families: tuple[str, ...] = ()) -> dict[str, Any]:
    """The run config of a tick: the job's own, plus ``--market-ids``' selection when ids
    or families are chosen (only their markets' rows are added or replaced; other
    markets' rows stay)."""
    if not (market_ids or families):
        return {}
    return IN_PROCESS | market_selection.run_config(market_ids, families)


train_job = dg.define_asset_job(
    "train_job",
    selection=[price_model, paper_trades],
    description="Daily: retrain and evaluate the model walk-forward, then its paper backtest "
    "(paper_trades).",
    config=IN_PROCESS,
)

# After train_job: the newest window's edge report recomputed with the new model (the
# CLI's `train` runs it itself; the sensor in defs/model/sensors.py for the UI/schedule).
edge_refresh_job = dg.define_asset_job(
    "edge_refresh_job",
    selection=[edge_report],
    description="The edge report of one window recomputed with the newest model.",
    config=IN_PROCESS,
)

# Retrained daily, not every 15 minutes: labels arrive slowly and training reads all of them.
train_schedule = dg.ScheduleDefinition(
    job=train_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
