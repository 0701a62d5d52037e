"""Polymarket assets: which BTC markets are open in a window, and their quotes."""

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.collect.discovery import (
    Discovery,
    discover,
    markets_frame,
    tracked_range,
)
from btc_tracker_pipeline.collect.fetch import Quotes, quotes_for_run
from btc_tracker_pipeline.collect.snapshots import missing_quote_errors
from btc_tracker_pipeline.defs.engine import Tally, WindowRun, table_preview
from btc_tracker_pipeline.defs.resources import (
    ClockResource,
    PolymarketResource,
    WarehouseResource,
)
from btc_tracker_pipeline.defs.shared import NO_MARKET, of_chosen, window_asset
from btc_tracker_pipeline.failures import UNKNOWN_IDS_METADATA
from btc_tracker_pipeline.warehouse import TableUpsert, TableWrite
from btc_tracker_pipeline.warehouse.coverage import MIN_SHARE, ThinWindow, thin_windows
from btc_tracker_pipeline.warehouse.read import window_rows


def _meter(polymarket: PolymarketResource) -> Callable[[], tuple[int, int]]:
    """The run's Polymarket request and retry counters."""
    return lambda: (polymarket.http.requests, polymarket.http.retries)


class MarketSelection(dg.Config):
    """Which markets to track (the CLI's ``--market-ids``, the schedule's settings);
    empty: every BTC market."""

    market_ids: list[str] = Field(
        default_factory=list,
        description="Gamma market ids to collect instead of every active BTC market. Only "
        "these markets' rows are added or replaced in the run's windows (by every asset of "
        "the run); the other markets' rows stay as they are.",
    )
    families: list[str] = Field(
        default_factory=list,
        description="Market families to collect instead of every BTC market (e.g. "
        "updown_15m, above; the schedule's BTC_TRACKER_FAMILIES). Only the rows of the "
        "window's markets of these families are added or replaced; the others stay.",
    )

    def chosen_families(self) -> tuple[str, ...]:
        """``families``, checked (dg.Failure in one line for an unknown family)."""
        try:
            return environment.check_families("families", ",".join(self.families))
        except environment.ConfigurationError as exc:
            raise dg.Failure(str(exc)) from exc


class SnapshotSettings(dg.Config):
    """How stale a history quote may be."""

    max_quote_age_min: float | None = Field(
        None,
        description="Minutes a prices-history point may lag the window end and still be "
        "its quote; older means no snapshot. Empty: the polymarket resource's limit "
        "(BTC_TRACKER_MAX_QUOTE_AGE_MIN, default 30). Raise it (e.g. to 90) for markets "
        "whose history is hourly; every row keeps its quote_age_s.",
    )

    def max_age(self, polymarket: PolymarketResource) -> timedelta:
        """The run's limit, checked (ConfigurationError when outside (0, 1440] minutes)."""
        minutes = self.max_quote_age_min
        if minutes is None:
            minutes = polymarket.max_quote_age_min
        return timedelta(minutes=environment.check_quote_age("max_quote_age_min", minutes))


TRACKED_COVERAGE_CHECK = "tracked_coverage"


@window_asset(
    group_name="markets",
    kinds={"polymarket", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            TRACKED_COVERAGE_CHECK,
            asset="tracked_markets",
            description=(
                f"Every window of the run tracks at least {MIN_SHARE:.0%} of the markets the "
                "warehouse knows were open in it (catches a window that shrank)."
            ),
        )
    ],
)
def tracked_markets(
    context: dg.AssetExecutionContext,
    config: MarketSelection,
    polymarket: PolymarketResource,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    """Every BTC market open during the window: family, strike, direction, expiry, token ids.

    Found by the Gamma bitcoin tag (or the configured ids, which add or replace only
    those markets' rows); history windows include markets that have closed since. One
    Gamma listing serves every window of a run.
    """
    families = config.chosen_families()
    with WindowRun.start(
        context, "tracked_markets", warehouse, clock.now(), _meter(polymarket)
    ) as run:
        with run.api_calls():
            discovery = discover(
                polymarket.gamma(),
                run.start_at,
                run.end_at,
                include_closed=not run.live,
                market_ids=config.market_ids,
            )
        unknown = [f"market {i}: not found on Gamma" for i in discovery.missing_ids]
        frame = of_families(
            tracked_range(discovery.markets, run.windows, discovery.discovered_by), families
        )
        return run.finish(
            [
                TableWrite(
                    "tracked_markets",
                    frame,
                    on_empty="keep",
                    market_ids=replaced(discovery, config, frame),
                )
            ],
            Tally(tried=frame, ok=frame, run_errors=unknown + discovery.malformed),
            upserts=[TableUpsert("markets", markets_frame(discovery.markets), "market_id")],
            empty_error="no BTC market was open in this window; kept existing rows",
            all_empty="; ".join(
                [*unknown, f"no BTC markets found for {len(run.windows)} window(s)"]
            )
            + f" from {run.start_at:%Y-%m-%d %H:%M} UTC; existing rows were kept "
            "(see collection_runs)",
            preview=run.last_window(frame).select(
                "market_id", "family", "strike", "expiry", "question"
            ),
            metadata=discovery_metadata(discovery, run.last_window(frame)),
            checks=lambda conn: [
                tracked_coverage_check(thin_windows(conn, run.start_at, run.end_at, quotes=False))
            ],
        )


def of_families(frame: pl.DataFrame, families: tuple[str, ...]) -> pl.DataFrame:
    """The ``tracked_markets`` rows of markets in ``families``; all rows when none."""
    return frame.filter(pl.col("family").is_in(list(families))) if families else frame


def replaced(discovery: Discovery, config: MarketSelection, frame: pl.DataFrame) -> tuple[str, ...]:
    """The markets whose rows a run replaces: every market (``()``) unless ids or
    families were chosen; then only the found ones (an id Gamma does not know keeps its
    rows), or the markets of the families found in ``frame``."""
    if config.families:
        return tuple(sorted(set(frame["market_id"]))) or (NO_MARKET,)
    if not config.market_ids:
        return ()
    return tuple(m.id for m in discovery.markets) or tuple(config.market_ids)


def discovery_metadata(discovery: Discovery, last: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """Markets found, the families of the last window, and asked-for ids Gamma does not
    know (the CLI names them in a warning)."""
    unknown = ",".join(discovery.missing_ids)
    return {
        "markets_found": dg.MetadataValue.int(len(discovery.markets)),
        **({UNKNOWN_IDS_METADATA: dg.MetadataValue.text(unknown)} if unknown else {}),
        "families_in_last_window": table_preview(
            last.group_by("family").len().sort("family"), rows=20
        ),
    }


def tracked_coverage_check(thin: list[ThinWindow]) -> dg.AssetCheckResult:
    """WARN when a window of the run holds fewer markets than were open in it."""
    return dg.AssetCheckResult(
        check_name=TRACKED_COVERAGE_CHECK,
        passed=not thin,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(w.label() for w in thin[:5]) or None,
        metadata={"thin_windows": len(thin)},
    )


PRICES_CHECK = "prices_in_unit_interval"
SUM_CHECK = "outcome_prices_sum_to_one"
COVERAGE_CHECK = "coverage"
# A window is covered when at least this share of its tracked markets got a quote.
MIN_COVERAGE = 0.9
# |yes + no - 1| above this in a binary market's quote is suspicious (ticks are 0.01).
SUM_TOLERANCE = 0.02
# The UI's freshness of market_snapshots: a tick is due every 15 minutes, so a newest
# materialization older than 20 minutes is one late tick (warn), 45 minutes two missed.
FRESHNESS_WARN = timedelta(minutes=20)
FRESHNESS_FAIL = timedelta(minutes=45)


@window_asset(
    deps=[tracked_markets],
    group_name="markets",
    kinds={"polymarket", "duckdb"},
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=FRESHNESS_FAIL, warn_window=FRESHNESS_WARN
    ),
    check_specs=[
        dg.AssetCheckSpec(
            PRICES_CHECK, asset="market_snapshots", description="Every price is in [0, 1]."
        ),
        dg.AssetCheckSpec(
            SUM_CHECK,
            asset="market_snapshots",
            description=f"YES + NO prices are within {SUM_TOLERANCE} of 1.",
        ),
        dg.AssetCheckSpec(
            COVERAGE_CHECK,
            asset="market_snapshots",
            description=f"At least {MIN_COVERAGE:.0%} of tracked markets quoted in every window.",
        ),
    ],
)
def market_snapshots(
    context: dg.AssetExecutionContext,
    config: SnapshotSettings,
    polymarket: PolymarketResource,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    """Raw pulls: one quote per tracked market per window (yes price, bid/ask, volume, liquidity).

    The window that just ended reads Gamma's live quotes; older windows read the CLOB
    prices-history point at the window end, no older than max_quote_age_min (default 30;
    one ≤15-day request per token per run; a backfill run reuses what earlier runs
    fetched, see ``collect.history_cache``). Every row keeps its quote_age_s.
    """
    try:
        max_age = config.max_age(polymarket)
    except environment.ConfigurationError as exc:
        raise dg.Failure(str(exc)) from exc
    with WindowRun.start(
        context, "market_snapshots", warehouse, clock.now(), _meter(polymarket)
    ) as run:
        with warehouse.connect() as conn:
            tracked = of_chosen(
                window_rows(conn, "tracked_markets", run.start_at, run.end_at), run.chosen
            )
        if tracked.is_empty() and not run.nothing_chosen:
            raise dg.Failure(
                "tracked_markets has no rows for these windows: materialize tracked_markets first"
            )
        quotes = quotes_for_run(
            polymarket.gamma(),
            polymarket.clob(),
            tracked,
            run.windows,
            live=run.live,
            clock=clock.now,
            max_age=max_age,
            connect=warehouse.connect,
            warn=context.log.warning,
        )
        snapshots = quotes.snapshots
        return run.finish(
            [TableWrite("market_snapshots", snapshots, on_empty="keep", market_ids=run.chosen)],
            Tally(
                tried=tracked,
                ok=snapshots,
                errors=missing_quote_errors(tracked, snapshots, quotes.errors, max_age),
            ),
            all_empty=f"no quotes for any of {tracked['market_id'].n_unique()} tracked markets; "
            "existing rows were kept (see collection_runs for the reasons)",
            preview=run.last_window(snapshots).select(SNAPSHOT_PREVIEW),
            metadata=quote_metadata(tracked, quotes, max_age),
            check_results=snapshot_checks(
                snapshots, quote_coverage(tracked, snapshots, run.windows)
            ),
        )


# The columns of a snapshots preview in the UI.
SNAPSHOT_PREVIEW = (
    "market_id",
    "yes_price",
    "best_bid",
    "best_ask",
    "quote_ts",
    "quote_age_s",
    "source",
)


def quote_metadata(
    tracked: pl.DataFrame, quotes: Quotes, max_age: timedelta
) -> dict[str, dg.MetadataValue]:
    """Markets tracked and failed, tokens a backfill read from its cache, the age limit."""
    return {
        "markets_tracked": dg.MetadataValue.int(tracked["market_id"].n_unique()),
        "markets_failed": dg.MetadataValue.int(len(quotes.errors)),
        "tokens_from_cache": dg.MetadataValue.int(quotes.from_cache),
        "max_quote_age_min": dg.MetadataValue.float(max_age.total_seconds() / 60),
    }


def quote_coverage(
    tracked: pl.DataFrame, snapshots: pl.DataFrame, windows: list[tuple[datetime, datetime]]
) -> list[tuple[str, float]]:
    """Per window of the run: its label and the share of its tracked markets quoted."""
    tracked_n = dict(tracked.group_by("window_start").len().rows())
    quoted_n = dict(snapshots.group_by("window_start").len().rows())
    return [
        (f"{ws:%Y-%m-%d %H:%M}", quoted_n.get(ws, 0) / max(tracked_n.get(ws, 0), 1))
        for ws, _ in windows
    ]


def snapshot_checks(
    frame: pl.DataFrame, coverage: list[tuple[str, float]]
) -> list[dg.AssetCheckResult]:
    """Price range, YES+NO ≈ 1, and per-window coverage of the rows just written."""
    outside = frame.filter(
        ~pl.col("yes_price").is_between(0.0, 1.0) | ~pl.col("no_price").is_between(0.0, 1.0)
    )
    off_sum = frame.filter(((pl.col("yes_price") + pl.col("no_price")) - 1.0).abs() > SUM_TOLERANCE)
    thin = [(w, c) for w, c in coverage if c < MIN_COVERAGE]
    worst = min(coverage, key=lambda wc: wc[1]) if coverage else ("", 1.0)
    return [
        dg.AssetCheckResult(
            check_name=PRICES_CHECK,
            passed=outside.is_empty(),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rows_outside": len(outside),
                "markets": ", ".join(outside["market_id"].unique().sort().head(20)),
            },
        ),
        dg.AssetCheckResult(
            check_name=SUM_CHECK,
            passed=off_sum.is_empty(),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rows_off": len(off_sum),
                "markets": ", ".join(off_sum["market_id"].unique().sort().head(20)),
            },
        ),
        dg.AssetCheckResult(
            check_name=COVERAGE_CHECK,
            passed=not thin,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "lowest_coverage": dg.MetadataValue.float(round(worst[1], 4)),
                "lowest_window": worst[0],
                "windows_below": len(thin),
            },
        ),
    ]
