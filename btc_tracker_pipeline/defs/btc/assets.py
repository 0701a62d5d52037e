"""BTC spot assets: Binance BTC/USDT 1-minute klines and 24 h stats per window."""

import dagster as dg

from btc_tracker_pipeline.collect.fetch import spot_for_run
from btc_tracker_pipeline.defs.engine import Tally, WindowRun
from btc_tracker_pipeline.defs.resources import BinanceResource, ClockResource, WarehouseResource
from btc_tracker_pipeline.defs.shared import window_asset
from btc_tracker_pipeline.warehouse import TableWrite


@window_asset(
    group_name="btc",
    kinds={"binance", "duckdb"},
)
def btc_spot_prices(
    context: dg.AssetExecutionContext,
    binance: BinanceResource,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    """BTC/USDT 1-minute klines of the window and the 24 h stats at its end.

    Writes ``btc_spot_prices`` (klines) and ``btc_spot_windows`` (spot at the window
    end, window OHLC, 24 h change/high/low/volume) in one transaction for the run.
    Klines are fetched once per run in ≤1000-candle pages, from 24 h before the first window;
    a backfill run fetches only what earlier runs did not (``collect.kline_cache``).
    """
    client = binance.client()
    with WindowRun.start(
        context,
        "btc_spot_prices",
        warehouse,
        clock.now(),
        lambda: (client.requests, client.retries),
    ) as run:
        with run.api_calls():
            spot = spot_for_run(
                client,
                run.windows,
                live=run.live,
                now=clock.now(),
                connect=warehouse.connect,
                warn=context.log.warning,
            )
        return run.finish(
            [
                TableWrite("btc_spot_windows", spot.stats, on_empty="keep"),
                TableWrite("btc_spot_prices", spot.klines, on_empty="keep"),
            ],
            Tally(ok=spot.stats),
            empty_error="Binance returned no 1-minute klines; kept existing rows",
            all_empty=f"no BTC klines for {len(run.windows)} window(s) from "
            f"{run.start_at:%Y-%m-%d %H:%M} UTC; existing rows were kept",
            preview=spot.stats.tail(1) if not spot.stats.is_empty() else spot.klines.tail(8),
        )
