"""live_edges: every minute, the net edge of each open up/down market, appended to the
``live_edges`` table by ``live_edge_job``, whose 1-minute schedule is off until a user
turns it on in the UI (docs/operations.md)."""

from datetime import timedelta

import dagster as dg
import polars as pl

from btc_tracker_pipeline.defs.engine import table_preview
from btc_tracker_pipeline.defs.resources import (
    BinanceResource,
    ClockResource,
    ModelStoreResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.defs.schedules import IN_PROCESS
from btc_tracker_pipeline.defs.shared import DUCKDB_WRITE_POOL, OWNERS
from btc_tracker_pipeline.model.live_edges import (
    LiveEdgesError,
    compute_live_edges,
    live_clients,
    minute_of,
    read_inputs,
    write_live_edges,
)


@dg.asset(
    group_name="live",
    kinds={"polymarket", "binance", "duckdb"},
    owners=OWNERS,
    pool=DUCKDB_WRITE_POOL,
)
def live_edges(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    polymarket: PolymarketResource,
    binance: BinanceResource,
    model_store: ModelStoreResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    """At the current minute, for every open up/down market the warehouse knows: the
    live CLOB book, BTC spot, the model's probability (else the structural one), the
    net edge after fees and the spread, side, stake and recommendation.

    Appends one row per market to live_edges; running a minute again replaces that
    minute's rows. A market whose book or history could not be fetched keeps a row
    with the error (PASS, no stake); the others are unaffected. Run by live_edge_job,
    whose 1-minute schedule is stopped until turned on in the UI. Reads, fetches and
    computes in model/live_edges.py (the same as `btc-tracker edges --live`).
    """
    minute = minute_of(clock.now())
    clob, spot = live_clients(polymarket.clob_url, binance.base_url, polymarket.timeout_s)
    try:
        with warehouse.connect() as conn:
            inputs = read_inputs(conn, minute)
        live = compute_live_edges(
            inputs,
            clob,
            spot,
            model_store.models_dir,
            logger=context.log,
            max_age=timedelta(minutes=polymarket.max_quote_age_min),
        )
    except LiveEdgesError as exc:
        raise dg.Failure(str(exc)) from exc
    finally:
        clob.http.close()
    with warehouse.connect() as conn:
        written = write_live_edges(conn, live.rows)
    rows = live.rows
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(written),
            "minute": str(minute),
            "model_version": str(live.model_version),
            "errors": dg.MetadataValue.int(rows["error"].is_not_null().sum()),
            "preview": table_preview(
                rows.select(
                    "market_id",
                    "family",
                    "minutes_left",
                    "market_prob",
                    "model_prob",
                    "prob_source",
                    "side",
                    "net_edge",
                    "recommendation",
                    "stake",
                    pl.col("error").fill_null(""),
                )
            ),
        }
    )


live_edge_job = dg.define_asset_job(
    "live_edge_job",
    selection=[live_edges],
    description="Every minute when its schedule is on: the live edges of the open up/down "
    "markets, appended to live_edges.",
    config=IN_PROCESS,
)

# Off by default: a user turns it on in the UI (Automation → live_edge_job_schedule).
live_edge_schedule = dg.ScheduleDefinition(
    name="live_edge_job_schedule",
    job=live_edge_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
