"""BTC spot assets: Binance BTC/USDT 1-minute klines and 24 h stats per window."""

import dagster as dg

from btc_tracker_pipeline.collect.kline_cache import backfill_klines
from btc_tracker_pipeline.collect.runs import RunRecord, is_live, utcnow
from btc_tracker_pipeline.collect.spot import DAY, klines_frame, window_klines, window_stats
from btc_tracker_pipeline.defs.resources import BinanceResource, WarehouseResource
from btc_tracker_pipeline.defs.shared import (
    each_window,
    preview,
    recorded_api_failure,
    run_windows,
    window_asset,
    window_metadata,
)
from btc_tracker_pipeline.warehouse import TableAppend, TableWrite, write_window


@window_asset(
    group_name="btc",
    kinds={"binance", "duckdb"},
)
def btc_spot_prices(
    context: dg.AssetExecutionContext,
    binance: BinanceResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """BTC/USDT 1-minute klines of the window and the 24 h stats at its end.

    Writes ``btc_spot_prices`` (klines) and ``btc_spot_windows`` (spot at the window
    end, window OHLC, 24 h change/high/low/volume) in one transaction per window.
    Klines are fetched once per run in ≤1000-candle pages, from 24 h before the first window;
    a backfill run fetches only what earlier runs did not (``collect.kline_cache``).
    """
    windows = run_windows(context)
    range_start, range_end = windows[0][0], windows[-1][1]
    live = len(windows) == 1 and is_live(range_end, utcnow())
    client = binance.client()
    first = RunRecord("btc_spot_prices", *windows[0], dagster_run_id=context.run_id)
    with recorded_api_failure(context, "btc_spot_prices", windows, warehouse):
        if len(windows) > 1:  # a backfill run: share fetches with the other runs
            all_klines = backfill_klines(
                client,
                range_start - DAY,
                range_end,
                warehouse.connect,
                utcnow(),
                context.log.warning,
            )
        else:
            all_klines = klines_frame(client.klines(range_start - DAY, range_end, "1m"))
        ticker = client.ticker_24h() if live else None
    first.requests, first.retries = client.requests, client.retries

    rows, empty = 0, 0
    last_stats = None
    with warehouse.connect() as conn:
        for i, (ws, we) in each_window(windows):
            record = first if i == 0 else RunRecord("btc_spot_prices", ws, we, context.run_id)
            klines = window_klines(all_klines, ws, we)
            stats = window_stats(all_klines, ws, we, ticker)
            record.markets_tried, record.markets_ok = 1, int(not stats.is_empty())
            if stats.is_empty():
                record.errors.append("Binance returned no 1-minute klines; kept existing rows")
                empty += 1
            write_window(
                conn,
                [
                    TableWrite("btc_spot_prices", klines, on_empty="keep"),
                    TableWrite("btc_spot_windows", stats, on_empty="keep"),
                ],
                ws,
                we,
                appends=[TableAppend("collection_runs", record.frame)],
            )
            rows += klines.height
            last_stats = stats if not stats.is_empty() else last_stats
    if empty == len(windows):
        raise dg.Failure(
            f"no BTC klines for {len(windows)} window(s) from {range_start:%Y-%m-%d %H:%M} UTC;"
            " existing rows were kept"
        )
    return dg.MaterializeResult(
        metadata={
            **window_metadata(windows),
            "row_count": dg.MetadataValue.int(rows),
            "mode": dg.MetadataValue.text("live" if live else "history"),
            "preview": preview(last_stats) if last_stats is not None else preview(all_klines),
        }
    )
