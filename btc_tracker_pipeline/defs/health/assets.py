"""``health``: the success metrics of the original tracker's workflow, refreshed every tick."""

from pathlib import Path

import dagster as dg

from btc_tracker_pipeline.defs.features.assets import market_indicators
from btc_tracker_pipeline.defs.labels.assets import market_resolutions
from btc_tracker_pipeline.defs.markets.paths import market_paths
from btc_tracker_pipeline.defs.model.assets import edge_report
from btc_tracker_pipeline.defs.model.ledger import paper_ledger
from btc_tracker_pipeline.defs.resources import (
    ClockResource,
    ModelStoreResource,
    WarehouseResource,
)
from btc_tracker_pipeline.defs.shared import window_asset
from btc_tracker_pipeline.health import health_report
from btc_tracker_pipeline.model.artifact import latest_card


@window_asset(
    deps=[edge_report, paper_ledger, market_indicators, market_paths, market_resolutions],
    group_name="health",
    kinds={"duckdb"},
)
def health(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    model_store: ModelStoreResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    """The tracker's success metrics against the targets of the original workflow, as of
    now: uptime (share of scheduled windows collected over 24 h, 7 days and all time),
    live snapshots with quality ≥ 0.8 (history rows apart), tick latency p50/p95,
    coverage per window; the newest model's accuracy, ROC AUC and precision beside the
    market's; win rate, EV per trade, Sharpe ratio and max drawdown of the forward paper
    ledger and of the walk-forward backtest.

    Each metric shows its sample size and is compared with its target only once that
    sample reaches its minimum ("not meaningful yet" before). Missing data (no live tick,
    no model, no ledger) never fails the tick. The same table: `btc-tracker health`.
    """
    with warehouse.connect() as conn:
        report = health_report(conn, clock.now(), latest_card(Path(model_store.models_dir)))
    context.log.info(report.summary())
    measured = {
        m.spec.key: dg.MetadataValue.float(m.measured)
        for m in report.metrics
        if m.measured is not None
    }
    return dg.MaterializeResult(
        metadata={
            "health": dg.MetadataValue.md(report.markdown()),
            "summary": dg.MetadataValue.text(report.summary()),
            **{
                f"metrics_{status.replace(' ', '_')}": dg.MetadataValue.int(n)
                for status, n in report.counts().items()
            },
            **measured,
        }
    )
