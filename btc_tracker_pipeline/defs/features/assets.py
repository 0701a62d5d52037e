"""Features: the 12 market indicators, structural probabilities and a quality score."""

import dagster as dg
import polars as pl

from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.engine import Tally, WindowRun, table_preview
from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets
from btc_tracker_pipeline.defs.resources import ClockResource, WarehouseResource
from btc_tracker_pipeline.defs.shared import of_chosen, window_asset
from btc_tracker_pipeline.features.indicators import indicators_for_run
from btc_tracker_pipeline.model.dataset import SEED_FEATURES
from btc_tracker_pipeline.warehouse import TableWrite


@window_asset(
    deps=[market_snapshots, tracked_markets, btc_spot_prices],
    group_name="features",
    kinds={"polars", "duckdb"},
)
def market_indicators(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
) -> dg.MaterializeResult:
    """Twelve market indicators, structural probabilities and a quality score per snapshot.

    Computed with polars over a bounded lookback (LOOKBACK_WINDOWS windows of snapshots,
    KLINE_LOOKBACK of 1m klines, and for barriers the extremes of the older klines since
    their reference start), using only data timestamped before each window's end:
    a window recomputed later, or in a backfill, gives identical values. A run for chosen
    markets replaces only their rows.
    """
    with WindowRun.start(context, "market_indicators", warehouse, clock.now()) as run:
        with warehouse.connect() as conn:
            indicators, snapshots = indicators_for_run(conn, run.windows)
        indicators = of_chosen(indicators, run.chosen)
        return run.finish(
            [TableWrite("market_indicators", indicators, on_empty="keep", market_ids=run.chosen)],
            Tally(tried=of_chosen(snapshots, run.chosen), ok=indicators),
            empty_error="no snapshots to compute indicators from; kept existing rows",
            all_empty="market_snapshots has no rows for these windows: materialize it first "
            "(existing indicators were kept)",
            preview=run.last_window(indicators).select(PREVIEW),
            metadata=indicator_metadata(indicators),
        )


# The columns of an indicators preview in the UI.
PREVIEW = (
    "market_id",
    "family",
    "market_probability",
    "structural_probability",
    "rsi_14",
    "quality_score",
)


def indicator_metadata(indicators: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """The share of rows with each of the 12 indicators, and the mean quality score."""
    non_null = indicators.select(
        [pl.col(c).is_not_null().mean().round(3).alias(c) for c in SEED_FEATURES]
    )
    return {
        "non_null_share": table_preview(
            non_null.transpose(include_header=True, column_names=["share"]), rows=20
        ),
        "mean_quality_score": dg.MetadataValue.float(
            float(indicators["quality_score"].mean() or 0.0)
        ),
    }
