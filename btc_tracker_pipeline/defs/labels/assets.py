"""Labels: which BTC markets settled in a window and who won, checked against klines."""

from datetime import timedelta

import dagster as dg
import polars as pl

from btc_tracker_pipeline.collect.resolutions import (
    CLOSE_CALL_BPS,
    CLOSE_CALL_USD,
    crosscheck,
    find_resolutions,
    resolutions_range,
)
from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.engine import Tally, WindowRun, table_preview
from btc_tracker_pipeline.defs.markets.assets import tracked_markets
from btc_tracker_pipeline.defs.resources import (
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.defs.shared import window_asset
from btc_tracker_pipeline.warehouse import TableWrite
from btc_tracker_pipeline.warehouse.read import label_terms
from btc_tracker_pipeline.warehouse.tables import polars_schema

INTEGRITY_CHECK = "label_integrity"
KLINES_CHECK = "labels_match_klines"
# How long after endDate a settlement is still looked for (UMA proposals/disputes).
MAX_SETTLE_LAG = timedelta(days=3)
# RESOLUTION_SCHEMA and the label check columns: market_resolutions, whole.
LABEL_SCHEMA = polars_schema("market_resolutions")


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
    clock: ClockResource,
) -> dg.MaterializeResult:
    """Markets that settled in the window: winner, winning token, settle time, source.

    Resolved = closed with one-hot outcome prices (docs/apis.md §1.7); 50/50 and all-zero
    closures are ``void``, other closures ``unsettled``: both recorded, never labels.
    Each resolved label is recomputed from klines where the rules allow (``label_check``:
    agrees, close_call, disagrees or uncheckable). Polymarket's settled side is the
    label: a 5m/15m/4h window settled on Chainlink that Binance puts on the other side
    by a move of a few dollars is a ``close_call``, its move in ``label_check_detail``.
    """
    with WindowRun.start(
        context,
        "market_resolutions",
        warehouse,
        clock.now(),
        lambda: (polymarket.http.requests, polymarket.http.retries),
    ) as run:
        with run.api_calls():
            markets, skipped = find_resolutions(
                polymarket.gamma(), run.start_at, run.end_at, max_settle_lag=MAX_SETTLE_LAG
            )
        found = resolutions_range(markets, run.windows)
        with warehouse.connect() as conn:
            terms, klines = label_terms(conn, found["market_id"].unique().to_list())
        checked = crosscheck(found, terms, klines)
        verdict = checked.select(
            "market_id",
            pl.col("verdict").alias("label_check"),
            pl.col("detail").alias("label_check_detail"),
        )
        labels = found.join(verdict, on="market_id", how="left", maintain_order="left").select(
            list(LABEL_SCHEMA)
        )
        return run.finish(
            # No settlement in a window is a real answer: the window is replaced by nothing.
            [TableWrite("market_resolutions", labels, on_empty="replace")],
            Tally(
                tried=labels, ok=labels.filter(pl.col("status") == "resolved"), run_errors=skipped
            ),
            preview=labels.select("market_id", "family", "status", "winner_outcome", "settled_at"),
            metadata={"by_status": table_preview(labels.group_by("status").len().sort("status"))},
            check_results=_label_checks(labels, checked),
        )
