"""Features: the 12 market indicators, structural probabilities and a quality score."""

import dagster as dg
import polars as pl

from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.engine import Tally, WindowRun, table_preview
from btc_tracker_pipeline.defs.markets.assets import market_snapshots, tracked_markets
from btc_tracker_pipeline.defs.resources import ClockResource, WarehouseResource
from btc_tracker_pipeline.defs.shared import of_chosen, window_asset
from btc_tracker_pipeline.features.indicators import (
    KLINE_LOOKBACK,
    LOOKBACK_WINDOWS,
    compute_indicators,
)
from btc_tracker_pipeline.model.dataset import SEED_FEATURES
from btc_tracker_pipeline.partitions import WINDOW
from btc_tracker_pipeline.warehouse import TableWrite
from btc_tracker_pipeline.warehouse.read import klines_between, touch_history, window_rows


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
        lookback_start = run.start_at - LOOKBACK_WINDOWS * WINDOW
        kline_start = run.start_at - KLINE_LOOKBACK
        with warehouse.connect() as conn:
            snapshots = window_rows(
                conn, "market_snapshots", lookback_start, run.end_at, ordered=True
            )
            tracked = window_rows(conn, "tracked_markets", run.start_at, run.end_at, ordered=True)
            spot = window_rows(conn, "btc_spot_windows", run.start_at, run.end_at)
            klines = klines_between(conn, kline_start, run.end_at)
            history = touch_history(conn, run.start_at, run.end_at, kline_start)
        indicators = of_chosen(
            compute_indicators(
                snapshots, tracked, spot, klines, [w[0] for w in run.windows], history
            ),
            run.chosen,
        )
        in_run = of_chosen(snapshots, run.chosen).filter(pl.col("window_start") >= run.start_at)
        non_null = indicators.select(
            [pl.col(c).is_not_null().mean().round(3).alias(c) for c in SEED_FEATURES]
        )
        return run.finish(
            [TableWrite("market_indicators", indicators, on_empty="keep", market_ids=run.chosen)],
            Tally(tried=in_run, ok=indicators),
            empty_error="no snapshots to compute indicators from; kept existing rows",
            all_empty="market_snapshots has no rows for these windows: materialize it first "
            "(existing indicators were kept)",
            preview=run.last_window(indicators).select(
                "market_id",
                "family",
                "market_probability",
                "structural_probability",
                "rsi_14",
                "quality_score",
            ),
            metadata={
                "non_null_share": table_preview(
                    non_null.transpose(include_header=True, column_names=["share"]), rows=20
                ),
                "mean_quality_score": dg.MetadataValue.float(
                    float(indicators["quality_score"].mean() or 0.0)
                ),
            },
        )
