"""The frame schemas the pipeline writes to the warehouse, against the table declarations
(warehouse.tables): a frame holding whole rows has its table's columns in order with
their types; a frame holding part of a row has its table's types and lacks only the
columns added before the write."""

from __future__ import annotations

import polars as pl
import pytest

from btc_tracker_pipeline.collect.discovery import MARKETS_SCHEMA, TRACKED_SCHEMA
from btc_tracker_pipeline.collect.history_cache import QUOTE_SCHEMA, SPAN_SCHEMA
from btc_tracker_pipeline.collect.kline_cache import CANDLE_SCHEMA
from btc_tracker_pipeline.collect.resolutions import RESOLUTION_SCHEMA
from btc_tracker_pipeline.collect.runs import RUNS_SCHEMA
from btc_tracker_pipeline.collect.snapshots import SNAPSHOT_SCHEMA
from btc_tracker_pipeline.collect.spot import KLINE_SCHEMA, WINDOW_SCHEMA
from btc_tracker_pipeline.defs.labels.assets import LABEL_SCHEMA
from btc_tracker_pipeline.features.indicators import INDICATOR_SCHEMA
from btc_tracker_pipeline.features.quality import QUALITY_SCHEMA
from btc_tracker_pipeline.features.structural import STRUCTURAL_SCHEMA
from btc_tracker_pipeline.model.edges import (
    INPUT_SCHEMA,
    OUTPUT_COLUMNS,
    SPREAD_ESTIMATE,
    edge_report,
)
from btc_tracker_pipeline.model.paper import TRADES_SCHEMA
from btc_tracker_pipeline.model.train import PRED_ID_COLUMNS
from btc_tracker_pipeline.warehouse.tables import polars_schema
from btc_tracker_pipeline_tests.model import edge_row

pytestmark = pytest.mark.unit

WHOLE = {
    "RUNS_SCHEMA": (RUNS_SCHEMA, "collection_runs"),
    "MARKETS_SCHEMA": (MARKETS_SCHEMA, "markets"),
    "TRACKED_SCHEMA": (TRACKED_SCHEMA, "tracked_markets"),
    "SNAPSHOT_SCHEMA": (SNAPSHOT_SCHEMA, "market_snapshots"),
    "KLINE_SCHEMA": (KLINE_SCHEMA, "btc_spot_prices"),
    "WINDOW_SCHEMA": (WINDOW_SCHEMA, "btc_spot_windows"),
    "LABEL_SCHEMA": (LABEL_SCHEMA, "market_resolutions"),
    "INDICATOR_SCHEMA": (INDICATOR_SCHEMA, "market_indicators"),
    "SPAN_SCHEMA": (SPAN_SCHEMA, "history_spans"),
    "QUOTE_SCHEMA": (QUOTE_SCHEMA, "history_quotes"),
}

# (schema, its table, the table's columns it lacks: None when it is a part of the row
# computed by one module and merged with others).
PARTS = {
    "RESOLUTION_SCHEMA": (
        RESOLUTION_SCHEMA,
        "market_resolutions",
        {"label_check", "label_check_detail"},
    ),
    "CANDLE_SCHEMA": (CANDLE_SCHEMA, "kline_cache", {"source"}),
    "TRADES_SCHEMA": (TRADES_SCHEMA, "paper_trades", {"model_version"}),
    "INPUT_SCHEMA": (
        INPUT_SCHEMA,
        "edge_report",
        {*OUTPUT_COLUMNS, SPREAD_ESTIMATE, "window_end", "model_version", "in_sample"},
    ),
    "STRUCTURAL_SCHEMA": (STRUCTURAL_SCHEMA, "market_indicators", None),
    "QUALITY_SCHEMA": (QUALITY_SCHEMA, "market_indicators", None),
}


@pytest.mark.parametrize("name", WHOLE)
def test_a_frame_of_whole_rows_has_its_tables_columns_in_order_with_their_types(name):
    schema, table = WHOLE[name]
    assert list(schema.items()) == list(polars_schema(table).items())


@pytest.mark.parametrize("name", PARTS)
def test_a_frame_of_part_rows_has_its_tables_types_and_lacks_only_what_is_added(name):
    schema, table, lacking = PARTS[name]
    declared = polars_schema(table)
    assert {column: declared.get(column) for column in schema} == schema
    if lacking is not None:
        assert set(declared) - set(schema) == lacking


def test_the_edge_report_frame_the_asset_writes_has_edge_reports_types():
    """The report's own columns, and the three the asset adds, make the table."""
    rows = pl.DataFrame(
        [edge_row(), edge_row(market_id="m2", best_bid=None, best_ask=None)],
        schema={**INPUT_SCHEMA, SPREAD_ESTIMATE: pl.Float64()},
    ).with_columns(pl.lit(0.02).alias(SPREAD_ESTIMATE))
    out = edge_report(rows).with_columns(
        pl.col("window_start").alias("window_end"),
        pl.lit("v1", dtype=pl.String).alias("model_version"),
        pl.lit(True).alias("in_sample"),
    )
    declared = polars_schema("edge_report")
    assert dict(out.schema) == {column: declared[column] for column in out.columns}
    assert set(out.columns) == set(declared)


def test_the_predictions_frame_has_model_predictions_columns():
    """model.train.walk_forward_evaluate's frame (fold, PRED_ID_COLUMNS, oracle_prob on
    simulated worlds, model_prob) and the asset's model_version."""
    columns = {"model_version", "fold", *PRED_ID_COLUMNS, "oracle_prob", "model_prob"}
    assert columns == set(polars_schema("model_predictions"))
