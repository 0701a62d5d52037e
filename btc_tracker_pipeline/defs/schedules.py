"""The collection job and its 15-minute schedule (on by default)."""

from __future__ import annotations

import dagster as dg

from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.features.assets import market_indicators
from btc_tracker_pipeline.defs.labels.assets import market_resolutions
from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets

collect_job = dg.define_asset_job(
    "collect_job",
    selection=[
        tracked_markets,
        market_snapshots,
        btc_spot_prices,
        market_resolutions,
        market_indicators,
    ],
    description="One 15-minute tick: markets, quotes, BTC spot, settlements, indicators.",
)

# Cron */15 inferred from the partitions; the tick at 10:15 requests window 10:00.
collect_schedule = dg.build_schedule_from_partitioned_job(
    collect_job, default_status=dg.DefaultScheduleStatus.RUNNING
)
