"""Minute paths: what happened inside each window for the short up/down markets."""

from datetime import timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.collect.fetch import Paths, path_klines, paths_for_run
from btc_tracker_pipeline.collect.paths import PATH_FAMILIES
from btc_tracker_pipeline.defs.btc.assets import btc_spot_prices
from btc_tracker_pipeline.defs.engine import Tally, WindowRun
from btc_tracker_pipeline.defs.markets.assets import (
    SnapshotSettings,
    market_snapshots,
    tracked_markets,
)
from btc_tracker_pipeline.defs.resources import (
    BinanceResource,
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.defs.shared import of_chosen, window_asset
from btc_tracker_pipeline.features.market_terms import FAMILIES
from btc_tracker_pipeline.warehouse import TableWrite
from btc_tracker_pipeline.warehouse.read import klines_between, path_terms

MINUTES_CHECK = "minutes_within_market_life"
PRICES_CHECK = "path_prices_in_unit_interval"
COVERAGE_CHECK = "path_coverage"
# A window's paths are covered when at least this share of their minutes has a price.
MIN_PATH_COVERAGE = 0.9


class PathSettings(SnapshotSettings):
    """Which families get minute paths, and how stale a minute's quote may be."""

    path_families: list[str] = Field(
        default_factory=lambda: list(PATH_FAMILIES),
        description="Market families whose minute paths are collected (default: every "
        f"up/down family: {', '.join(PATH_FAMILIES)}). Others of {', '.join(FAMILIES)} "
        "may be added; a path covers a market's own window [reference start, expiry).",
    )

    def families(self) -> list[str]:
        """The configured families, checked (ConfigurationError naming an unknown one)."""
        unknown = sorted(set(self.path_families) - set(FAMILIES))
        if unknown:
            raise environment.ConfigurationError(
                f"path_families: unknown famil{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(unknown)}; known: {', '.join(FAMILIES)}"
            )
        return list(self.path_families)


@window_asset(
    deps=[tracked_markets, market_snapshots, btc_spot_prices],
    group_name="markets",
    kinds={"polymarket", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            MINUTES_CHECK,
            asset="market_paths",
            description="Every minute row lies in its window and in its market's own "
            "window [reference start, expiry), one row per market and minute.",
        ),
        dg.AssetCheckSpec(
            PRICES_CHECK, asset="market_paths", description="Every path price is in [0, 1]."
        ),
        dg.AssetCheckSpec(
            COVERAGE_CHECK,
            asset="market_paths",
            description=f"At least {MIN_PATH_COVERAGE:.0%} of the path minutes of every "
            "window have a price.",
        ),
    ],
)
def market_paths(
    context: dg.AssetExecutionContext,
    config: PathSettings,
    polymarket: PolymarketResource,
    binance: BinanceResource,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    """Minute paths: each up/down market's YES price at every minute of the window inside
    its own window, beside the BTC 1-minute close of that minute.

    One row per (market, minute): minute_ts, offset_min since the market's open,
    minutes_left, price (the newest 1-minute prices-history point at or before the
    minute, no older than max_quote_age_min), quote_ts, quote_age_s, btc_close (from
    btc_spot_prices; the minute before the run, if not stored, from Binance). A
    15-minute market has 15 rows in its window, a 5-minute one 5. One request per token
    for a tick; a backfill run reads what market_snapshots fetched from the history
    cache. A run for chosen markets replaces only their rows.
    """
    try:
        max_age = config.max_age(polymarket)
        families = config.families()
    except environment.ConfigurationError as exc:
        raise dg.Failure(str(exc)) from exc
    spot = binance.client()
    with WindowRun.start(
        context,
        "market_paths",
        warehouse,
        clock.now(),
        lambda: (
            polymarket.http.requests + spot.requests,
            polymarket.http.retries + spot.retries,
        ),
    ) as run:
        first_minute = run.start_at - timedelta(minutes=1)
        with warehouse.connect() as conn:
            tracked = of_chosen(path_terms(conn, run.start_at, run.end_at, families), run.chosen)
            stored = klines_between(conn, first_minute, run.end_at)
        klines = path_klines(
            spot,
            stored,
            first_minute,
            run.end_at,
            backfill=len(run.windows) > 1,
            connect=warehouse.connect,
            now=clock.now(),
            warn=context.log.warning,
        )
        with run.api_calls():
            paths = paths_for_run(
                polymarket.clob(),
                tracked,
                klines,
                run.windows,
                live=run.live,
                clock=clock.now,
                max_age=max_age,
                families=families,
                connect=warehouse.connect,
                warn=context.log.warning,
            )
        rows = paths.rows
        unpriced = paths.due.join(rows, on=["window_start", "market_id"], how="anti")
        replaced = run.chosen
        if not paths.errors.is_empty() and not rows.is_empty():
            # A market whose fetch failed keeps the rows it has (a rerun fills them): only
            # the markets that got rows are replaced.
            replaced = tuple(rows["market_id"].unique().sort())
        return run.finish(
            [TableWrite("market_paths", rows, on_empty="keep", market_ids=replaced)],
            Tally(
                tried=paths.due,
                ok=rows.unique(["window_start", "market_id"]),
                errors=paths.errors,
            ),
            # A window no market is due a path in is fine; one whose due markets all
            # failed is recorded, and a run where every due market failed fails.
            all_empty=None
            if unpriced.height < paths.due.height or paths.due.is_empty()
            else f"no minute paths for the {paths.due['market_id'].n_unique()} market(s) due "
            f"in {len(run.windows)} window(s) from {run.start_at:%Y-%m-%d %H:%M} UTC; "
            "existing rows were kept (see collection_runs)",
            preview=run.last_window(rows).select(PREVIEW),
            metadata=path_metadata(paths, max_age, families),
            check_results=path_checks(rows, tracked),
        )


# The columns of a paths preview in the UI.
PREVIEW = ("market_id", "family", "minute_ts", "offset_min", "price", "quote_age_s", "btc_close")


def path_metadata(
    paths: Paths, max_age: timedelta, families: list[str]
) -> dict[str, dg.MetadataValue]:
    """Markets and minutes with a path, tokens read from the cache, the settings."""
    rows = paths.rows
    return {
        "markets_with_paths": dg.MetadataValue.int(rows["market_id"].n_unique()),
        "minutes": dg.MetadataValue.int(len(rows)),
        "minutes_priced": dg.MetadataValue.int(rows["price"].is_not_null().sum()),
        "tokens": dg.MetadataValue.int(paths.tokens),
        "tokens_from_cache": dg.MetadataValue.int(paths.from_cache),
        "tokens_failed": dg.MetadataValue.int(paths.errors["error"].n_unique()),
        "path_families": dg.MetadataValue.text(", ".join(families)),
        "max_quote_age_min": dg.MetadataValue.float(max_age.total_seconds() / 60),
    }


def path_checks(rows: pl.DataFrame, tracked: pl.DataFrame) -> list[dg.AssetCheckResult]:
    """Minutes within the window and the market's life (no duplicates), prices in
    [0, 1], and per-window price coverage of the rows just written."""
    life = rows.join(
        tracked.select("market_id", "reference_start", "expiry"), on="market_id", how="left"
    )
    outside = life.filter(
        (pl.col("minute_ts") < pl.col("window_start"))
        | (pl.col("minute_ts") >= pl.col("window_end"))
        | (pl.col("minute_ts") < pl.col("reference_start"))
        | (pl.col("minute_ts") >= pl.col("expiry"))
        | pl.col("expiry").is_null()
    )
    duplicated = len(rows) - rows.select("window_start", "market_id", "minute_ts").n_unique()
    bad_price = rows.filter(~pl.col("price").is_between(0.0, 1.0))
    coverage = rows.group_by("window_start").agg(pl.col("price").is_not_null().mean().alias("c"))
    thin = coverage.filter(pl.col("c") < MIN_PATH_COVERAGE).sort("window_start")
    worst = coverage.sort("c").head(1)
    return [
        dg.AssetCheckResult(
            check_name=MINUTES_CHECK,
            passed=outside.is_empty() and duplicated == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rows_outside": len(outside),
                "duplicate_rows": duplicated,
                "markets": ", ".join(outside["market_id"].unique().sort().head(20)),
            },
        ),
        dg.AssetCheckResult(
            check_name=PRICES_CHECK,
            passed=bad_price.is_empty(),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows_outside": len(bad_price)},
        ),
        dg.AssetCheckResult(
            check_name=COVERAGE_CHECK,
            passed=thin.is_empty(),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "lowest_coverage": dg.MetadataValue.float(
                    round(float(worst["c"][0]), 4) if len(worst) else 1.0
                ),
                "lowest_window": f"{worst['window_start'][0]:%Y-%m-%d %H:%M}" if len(worst) else "",
                "windows_below": len(thin),
            },
        ),
    ]
