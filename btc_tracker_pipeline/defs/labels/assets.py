"""Labels: which BTC markets settled in a window and who won, checked against klines."""

from datetime import timedelta

import dagster as dg
import duckdb
import polars as pl

from btc_tracker_pipeline.collect.resolutions import (
    RESOLUTION_SCHEMA,
    crosscheck,
    find_resolutions,
    resolutions_frame,
)
from btc_tracker_pipeline.collect.runs import RunRecord
from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.markets.assets import tracked_markets
from btc_tracker_pipeline.defs.resources import PolymarketResource, WarehouseResource
from btc_tracker_pipeline.defs.shared import (
    each_window,
    preview,
    recorded_api_failure,
    run_windows,
    window_asset,
    window_metadata,
)
from btc_tracker_pipeline.warehouse import (
    TableAppend,
    TableWrite,
    registered,
    write_window,
)

INTEGRITY_CHECK = "label_integrity"
KLINES_CHECK = "labels_match_klines"
# How long after endDate a settlement is still looked for (UMA proposals/disputes).
MAX_SETTLE_LAG = timedelta(days=3)
LABEL_SCHEMA = RESOLUTION_SCHEMA | {"label_check": pl.String(), "label_check_detail": pl.String()}


def _terms_and_klines(
    conn: duckdb.DuckDBPyConnection, market_ids: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The tracked terms of ``market_ids`` (their latest tracked row) and the 1m klines
    spanning their reference starts to one minute past their expiries."""
    ids = pl.DataFrame({"market_id": market_ids}, schema={"market_id": pl.String})
    with registered(conn, ids) as name:
        terms = conn.sql(
            "SELECT market_id, family, strike, reference_start, expiry FROM tracked_markets "
            f"WHERE market_id IN (SELECT market_id FROM {name}) "
            "QUALIFY row_number() OVER (PARTITION BY market_id ORDER BY window_start DESC) = 1"
        ).pl()
    if terms.is_empty():
        return terms, pl.DataFrame(
            schema={"open_time": pl.Datetime("us"), "open": pl.Float64, "close": pl.Float64}
        )
    lo = terms.select(pl.min_horizontal(pl.col("reference_start"), pl.col("expiry")).min()).item()
    hi = terms["expiry"].max() + timedelta(minutes=1)
    klines = conn.execute(
        "SELECT open_time, open, close FROM btc_spot_prices WHERE open_time >= ? AND open_time <= ?"
        " ORDER BY open_time",
        [lo, hi],
    ).pl()
    return terms, klines


def _label_checks(frame: pl.DataFrame, checked: pl.DataFrame) -> list[dg.AssetCheckResult]:
    resolved = frame.filter(pl.col("status") == "resolved")
    incomplete = resolved.filter(
        pl.col("winner_outcome").is_null()
        | pl.col("winning_token_id").is_null()
        | pl.col("yes_won").is_null()
    )
    duplicated = frame.group_by("market_id").len().filter(pl.col("len") > 1)
    bad = incomplete["market_id"].to_list() + duplicated["market_id"].to_list()
    disagree = checked.filter(pl.col("agrees") == False)  # noqa: E712 (polars expression)
    return [
        dg.AssetCheckResult(
            check_name=INTEGRITY_CHECK,
            passed=not bad,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "resolved": len(resolved),
                "void_or_unsettled": len(frame) - len(resolved),
                "bad_markets": ", ".join(sorted(set(bad))[:20]),
            },
        ),
        dg.AssetCheckResult(
            check_name=KLINES_CHECK,
            passed=disagree.is_empty(),
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                "Disagreeing markets: "
                + "; ".join(
                    f"{r['market_id']} ({r['detail']})"
                    for r in disagree.head(10).iter_rows(named=True)
                )
                if not disagree.is_empty()
                else None
            ),
            metadata={
                "checked": int(checked["agrees"].is_not_null().sum()) if len(checked) else 0,
                "agree": int((checked["agrees"] == True).sum()) if len(checked) else 0,  # noqa: E712
                "disagree": len(disagree),
                "uncheckable": int(checked["agrees"].is_null().sum()) if len(checked) else 0,
                "disagreeing_markets": ", ".join(disagree["market_id"].head(20).to_list()),
            },
        ),
    ]


@window_asset(
    deps=[tracked_markets, btc_spot_prices],
    group_name="labels",
    kinds={"polymarket", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            INTEGRITY_CHECK,
            asset="market_resolutions",
            blocking=True,
            description="Each resolved label has a winner and its token; one label per market.",
        ),
        dg.AssetCheckSpec(
            KLINES_CHECK,
            asset="market_resolutions",
            description="Resolved up/down and above-K labels agree with the BTC/USDT 1m klines.",
        ),
    ],
)
def market_resolutions(
    context: dg.AssetExecutionContext,
    polymarket: PolymarketResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Markets that settled in the window: winner, winning token, settle time, source.

    Resolved = closed with one-hot outcome prices (docs/apis.md §1.7); 50/50 and all-zero
    closures are ``void``, other closures ``unsettled``: both recorded, never labels.
    Each resolved label is recomputed from klines where the rules allow (``label_check``).
    """
    windows = run_windows(context)
    range_start, range_end = windows[0][0], windows[-1][1]
    before = polymarket.http.requests, polymarket.http.retries
    with recorded_api_failure(context, "market_resolutions", windows, warehouse):
        markets, skipped = find_resolutions(
            polymarket.gamma(), range_start, range_end, max_settle_lag=MAX_SETTLE_LAG
        )
    frames = {ws: resolutions_frame(markets, ws, we) for ws, we in windows}
    everything = pl.concat(frames.values())
    with warehouse.connect() as conn:
        terms, klines = _terms_and_klines(conn, everything["market_id"].unique().to_list())
        checked = crosscheck(everything, terms, klines)
        verdict = checked.select(
            "market_id",
            pl.when(pl.col("agrees").is_null())
            .then(pl.lit("uncheckable"))
            .when(pl.col("agrees"))
            .then(pl.lit("agrees"))
            .otherwise(pl.lit("disagrees"))
            .alias("label_check"),
            pl.col("detail").alias("label_check_detail"),
        )
        total = 0
        for i, (ws, we) in each_window(windows):
            frame = frames[ws].join(verdict, on="market_id", how="left").select(list(LABEL_SCHEMA))
            record = RunRecord("market_resolutions", ws, we, context.run_id)
            if i == 0:
                record.requests = polymarket.http.requests - before[0]
                record.retries = polymarket.http.retries - before[1]
                record.errors += skipped
            record.markets_tried = frame.height
            record.markets_ok = frame.filter(pl.col("status") == "resolved").height
            # No settlement in a window is a real answer: the window is replaced by nothing.
            write_window(
                conn,
                [TableWrite("market_resolutions", frame, on_empty="replace")],
                ws,
                we,
                appends=[TableAppend("collection_runs", record.frame)],
            )
            total += frame.height
    statuses = everything.group_by("status").len().sort("status")
    return dg.MaterializeResult(
        check_results=_label_checks(everything, checked),
        metadata={
            **window_metadata(windows),
            "row_count": dg.MetadataValue.int(total),
            "by_status": preview(statuses),
            "preview": preview(
                everything.select("market_id", "family", "status", "winner_outcome", "settled_at")
            ),
        },
    )
