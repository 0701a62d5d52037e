"""Labels: which BTC markets settled in a window and who won, checked against klines."""

from datetime import timedelta

import dagster as dg
import duckdb
import polars as pl

from btc_tracker_pipeline.collect.resolutions import (
    CLOSE_CALL_BPS,
    CLOSE_CALL_USD,
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
from btc_tracker_pipeline.warehouse.tables import polars_schema

INTEGRITY_CHECK = "label_integrity"
KLINES_CHECK = "labels_match_klines"
# How long after endDate a settlement is still looked for (UMA proposals/disputes).
MAX_SETTLE_LAG = timedelta(days=3)
# RESOLUTION_SCHEMA and the label check columns: market_resolutions, whole.
LABEL_SCHEMA = polars_schema("market_resolutions")


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
    disagree = checked.filter(pl.col("verdict") == "disagrees")
    close_calls = checked.filter(pl.col("verdict") == "close_call")
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
            description=_listing("Disagreeing markets", disagree)
            or _listing("Close calls (labels kept)", close_calls),
            metadata={
                "checked": int(checked["agrees"].is_not_null().sum()),
                "agree": _count(checked, "agrees"),
                "close_call": len(close_calls),
                "disagree": len(disagree),
                "uncheckable": _count(checked, "uncheckable"),
                "disagreeing_markets": ", ".join(disagree["market_id"].head(20).to_list()),
                "close_call_markets": ", ".join(close_calls["market_id"].head(20).to_list()),
            },
        ),
    ]


def _count(checked: pl.DataFrame, verdict: str) -> int:
    return checked.filter(pl.col("verdict") == verdict).height


def _listing(title: str, rows: pl.DataFrame) -> str | None:
    """``title: id (detail); …`` for up to ten markets, None when there are none."""
    if rows.is_empty():
        return None
    shown = (f"{r['market_id']} ({r['detail']})" for r in rows.head(10).iter_rows(named=True))
    return f"{title}: " + "; ".join(shown)


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
            description=(
                "Resolved up/down and above-K labels agree with the BTC/USDT 1m klines. "
                "Fails only on a disagreement: a Chainlink-settled window (5m/15m/4h) the "
                f"klines contradict on a move of at most {CLOSE_CALL_USD:g} $ or "
                f"{CLOSE_CALL_BPS:g} bp is a close call (a feed difference; the label stands)."
            ),
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
    Each resolved label is recomputed from klines where the rules allow (``label_check``:
    agrees, close_call, disagrees or uncheckable). Polymarket's settled side is the
    label: a 5m/15m/4h window settled on Chainlink that Binance puts on the other side
    by a move of a few dollars is a ``close_call``, its move in ``label_check_detail``.
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
            pl.col("verdict").alias("label_check"),
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
