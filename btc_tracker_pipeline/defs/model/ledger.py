"""paper_ledger: the forward paper ledger, after edge_report in every collect_job tick."""

import dagster as dg
import polars as pl

from btc_tracker_pipeline.defs.engine import Tally, WindowRun, table_preview
from btc_tracker_pipeline.defs.labels.assets import market_resolutions
from btc_tracker_pipeline.defs.model.assets import edge_report
from btc_tracker_pipeline.defs.resources import ClockResource, WarehouseResource
from btc_tracker_pipeline.defs.shared import of_chosen, window_asset
from btc_tracker_pipeline.model.depth import warehouse_book_liquidity
from btc_tracker_pipeline.model.ledger import (
    LEDGER_CONFIG,
    equity_by_day,
    equity_markdown,
    open_positions,
    settle,
    summary,
    with_settlements,
)
from btc_tracker_pipeline.warehouse.ledger import (
    labels_of_open_positions,
    read_ledger,
    recommendations,
    windows_already_run,
    write_ledger,
)

ASSET = "paper_ledger"
# The columns of the positions shown in the run's preview.
PREVIEW = ("position_id", "side", "price_paid", "stake", "predicted_edge", "status", "pnl")


@window_asset(
    deps=[edge_report, market_resolutions],
    group_name="model",
    kinds={"polars", "duckdb"},
)
def paper_ledger(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
) -> dg.MaterializeResult:
    """The forward paper ledger: actual against predicted, on live recommendations only.

    Every BUY YES / BUY NO of edge_report in a live window (quoted from the live book
    when the window had just ended; not a backfill, not a window the model was trained
    on) opens one paper position: the ask (or 1 − bid) plus slippage and the taker fee,
    a Kelly stake on the ledger bankroll (starting $10,000 + realised P&L − open stakes,
    the backtest's caps), the model version. A market holds at most one position, and a
    window's positions are taken on the ledger's first run of it only: rerunning a
    window, or retraining, never adds, changes or deletes one. Each run settles the open
    positions whose market got a label (void: stake back; unsettled: still open).

    Not the walk-forward backtest (paper_trades, rewritten by each training): this table
    only grows. `btc-tracker paper` prints it.
    """
    with WindowRun.start(context, ASSET, warehouse, clock.now()) as run:
        with warehouse.connect() as conn:
            ledger = read_ledger(conn)
            # A rerun (of a tick, with a retrained model, …) takes nothing new.
            first = not windows_already_run(conn, ASSET, run.start_at, run.end_at)
            rows = recommendations(conn, run.start_at, run.end_at)
            rows = warehouse_book_liquidity(conn, of_chosen(rows, run.chosen))
            labels = labels_of_open_positions(conn)
        # Settle first, so that new stakes are sized on the P&L realised just now.
        settled = settle(ledger, labels)
        takes = run.live and first
        current = with_settlements(ledger, settled)
        opened = open_positions(rows, current, LEDGER_CONFIG) if takes else ledger.clear()
        tally = Tally(tried=opened, ok=opened)
        run.check_stop()
        with warehouse.connect() as conn:
            write_ledger(conn, opened, settled, run.runs_frame(tally))
            after = read_ledger(conn)
    return dg.MaterializeResult(
        metadata={
            **run.standard_metadata(opened.height + settled.height),
            **ledger_metadata(after),
            "opened": dg.MetadataValue.int(opened.height),
            "settled_now": dg.MetadataValue.int(settled.height),
            "positions_this_run": table_preview(pl.concat([opened, settled]).select(PREVIEW)),
            "takes_positions": dg.MetadataValue.text(
                "yes: the first run of a live window"
                if takes
                else "no: " + ("a history window" if not run.live else "this window ran before")
            ),
        }
    )


def ledger_metadata(ledger: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """Counts, bankroll, P&L, win rate, predicted vs realised and the equity curve."""
    figures = summary(ledger, LEDGER_CONFIG)
    comparison = figures["predicted_vs_realised"]
    numbers = {
        key: dg.MetadataValue.float(float(figures[key]))
        for key in ("bankroll", "equity", "realised_pnl", "open_stake", "win_rate")
        if figures[key] is not None
    }
    return {
        "open_positions": dg.MetadataValue.int(figures["open"]),
        "settled_positions": dg.MetadataValue.int(figures["settled"]),
        "void_positions": dg.MetadataValue.int(figures["void"]),
        **numbers,
        "predicted_vs_realised": dg.MetadataValue.json(comparison),
        "equity_curve": dg.MetadataValue.md(equity_markdown(equity_by_day(ledger, LEDGER_CONFIG))),
    }
