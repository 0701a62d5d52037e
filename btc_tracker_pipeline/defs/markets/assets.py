"""Polymarket assets: which BTC markets are open in a window, and their quotes."""

from datetime import timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.collect.discovery import discover, markets_frame, tracked_frame
from btc_tracker_pipeline.collect.history_cache import backfill_histories, history_needs
from btc_tracker_pipeline.collect.runs import RunRecord, is_live, utcnow
from btc_tracker_pipeline.collect.snapshots import (
    fetch_histories,
    history_snapshot_frame,
    live_snapshot_frame,
)
from btc_tracker_pipeline.defs.resources import PolymarketResource, WarehouseResource
from btc_tracker_pipeline.defs.shared import (
    chosen_markets,
    each_window,
    of_chosen,
    preview,
    recorded_api_failure,
    run_windows,
    selection_metadata,
    window_asset,
    window_metadata,
)
from btc_tracker_pipeline.failures import UNKNOWN_IDS_METADATA
from btc_tracker_pipeline.sources.errors import ApiError
from btc_tracker_pipeline.warehouse import TableAppend, TableWrite, upsert_rows, write_window
from btc_tracker_pipeline.warehouse.coverage import MIN_SHARE, ThinWindow, thin_windows


class MarketSelection(dg.Config):
    """Which markets to track (the seed's ``--market-ids``)."""

    market_ids: list[str] = Field(
        default_factory=list,
        description="Gamma market ids to collect instead of every active BTC market. Only "
        "these markets' rows are added or replaced in the run's windows (by every asset of "
        "the run); the other markets' rows stay as they are.",
    )


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
) -> dg.MaterializeResult:
    """Every BTC market open during the window: family, strike, direction, expiry, token ids.

    Found by the Gamma bitcoin tag (or the configured ids, which add or replace only
    those markets' rows); history windows include markets that have closed since. One
    Gamma listing serves every window of a run.
    """
    windows = run_windows(context)
    range_start, range_end = windows[0][0], windows[-1][1]
    live = len(windows) == 1 and is_live(range_end, utcnow())
    gamma = polymarket.gamma()
    first = RunRecord("tracked_markets", *windows[0], dagster_run_id=context.run_id)
    before = polymarket.http.requests, polymarket.http.retries
    with recorded_api_failure(context, "tracked_markets", windows, warehouse):
        discovery = discover(
            gamma, range_start, range_end, include_closed=not live, market_ids=config.market_ids
        )
    first.requests = polymarket.http.requests - before[0]
    first.retries = polymarket.http.retries - before[1]
    unknown = [f"market {i}: not found on Gamma" for i in discovery.missing_ids]
    first.errors += unknown
    first.errors += discovery.malformed
    # A run for chosen ids replaces only the found ones: an id Gamma does not know keeps
    # whatever rows it had.
    found = tuple(m.id for m in discovery.markets)
    scope = (found or tuple(config.market_ids)) if config.market_ids else ()

    total, empty = 0, []
    with warehouse.connect() as conn:
        upsert_rows(conn, "markets", markets_frame(discovery.markets), "market_id")
        for i, (ws, we) in each_window(windows):
            record = first if i == 0 else RunRecord("tracked_markets", ws, we, context.run_id)
            frame = tracked_frame(discovery.markets, ws, we, discovery.discovered_by)
            record.markets_tried = record.markets_ok = frame.height
            if frame.is_empty():
                record.errors.append("no BTC market was open in this window; kept existing rows")
                empty.append(ws)
            write_window(
                conn,
                [TableWrite("tracked_markets", frame, on_empty="keep", market_ids=scope)],
                ws,
                we,
                appends=[TableAppend("collection_runs", record.frame)],
            )
            total += frame.height
            sample = frame  # the last window's rows, for the metadata
        thin = thin_windows(conn, range_start, range_end, quotes=False)
    if len(empty) == len(windows):
        raise dg.Failure(
            "; ".join([*unknown, f"no BTC markets found for {len(windows)} window(s)"])
            + f" from {range_start:%Y-%m-%d %H:%M} UTC; existing rows were kept "
            "(see collection_runs)"
        )
    families = sample.group_by("family").len().sort("family")
    return dg.MaterializeResult(
        check_results=[tracked_coverage_check(thin)],
        metadata={
            **window_metadata(windows),
            **selection_metadata(tuple(config.market_ids)),
            "row_count": dg.MetadataValue.int(total),
            "markets_found": dg.MetadataValue.int(len(discovery.markets)),
            "mode": dg.MetadataValue.text("live" if live else "history"),
            # Asked-for ids Gamma does not know; the CLI names them in a warning.
            **(
                {UNKNOWN_IDS_METADATA: dg.MetadataValue.text(",".join(discovery.missing_ids))}
                if discovery.missing_ids
                else {}
            ),
            "families_in_last_window": preview(families, rows=20),
            "preview": preview(
                sample.select("market_id", "family", "strike", "expiry", "question")
            ),
        },
    )


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


@window_asset(
    deps=[tracked_markets],
    group_name="markets",
    kinds={"polymarket", "duckdb"},
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=45), warn_window=timedelta(minutes=20)
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
    windows = run_windows(context)
    range_start, range_end = windows[0][0], windows[-1][1]
    chosen = chosen_markets(context)
    with warehouse.connect() as conn:
        tracked = conn.execute(
            "SELECT * FROM tracked_markets WHERE window_start >= ? AND window_start < ?",
            [range_start, range_end],
        ).pl()
    tracked = of_chosen(tracked, chosen)
    if tracked.is_empty():
        raise dg.Failure(
            "tracked_markets has no rows for these windows: materialize tracked_markets first"
        )
    live = len(windows) == 1 and is_live(range_end, utcnow())
    before = polymarket.http.requests, polymarket.http.retries
    run_errors: dict[str, str] = {}
    from_cache = 0
    if live:
        ids = tracked["market_id"].unique().sort().to_list()
        fetched_at = utcnow()
        try:
            markets = polymarket.gamma().get_markets_by_ids(ids)
        except ApiError as exc:
            markets, run_errors["*"] = [], f"{exc.__class__.__name__}: {exc}"
        frames = {windows[0][0]: live_snapshot_frame(markets, *windows[0], fetched_at)}
    else:
        needs = history_needs(tracked, range_start, range_end, max_age)
        if len(windows) > 1:  # a backfill run: share fetches with the other runs
            histories, from_cache = backfill_histories(
                polymarket.clob(),
                needs,
                warehouse.connect,
                (range_start, range_end),
                utcnow(),
                context.log.warning,
                max_age,
            )
        else:
            spans = {t: (n.lo, n.hi) for t, n in needs.items()}
            histories = fetch_histories(polymarket.clob(), spans, max_age=max_age)
        run_errors.update(histories.errors)
        frames = {
            ws: history_snapshot_frame(
                tracked.filter(pl.col("window_start") == ws), histories, ws, we
            )
            for ws, we in windows
        }

    total = 0
    coverage: list[tuple[str, float]] = []
    with warehouse.connect() as conn:
        for i, (ws, we) in each_window(windows):
            record = RunRecord("market_snapshots", ws, we, context.run_id)
            if i == 0:
                record.requests = polymarket.http.requests - before[0]
                record.retries = polymarket.http.retries - before[1]
            in_window = tracked.filter(pl.col("window_start") == ws)
            frame = frames[ws]
            record.markets_tried, record.markets_ok = in_window.height, frame.height
            coverage.append((f"{ws:%Y-%m-%d %H:%M}", frame.height / max(in_window.height, 1)))
            quoted = set(frame["market_id"].to_list())
            for market_id, token in in_window.select("market_id", "yes_token_id").iter_rows():
                if market_id in quoted:
                    continue
                reason = (
                    run_errors.get(token)
                    or run_errors.get("*")
                    or f"no quote within {max_age.total_seconds() / 60:g} min of the window end"
                )
                record.errors.append(f"market {market_id}: {reason}")
            write_window(
                conn,
                [TableWrite("market_snapshots", frame, on_empty="keep", market_ids=chosen)],
                ws,
                we,
                appends=[TableAppend("collection_runs", record.frame)],
            )
            total += frame.height
    if total == 0:
        raise dg.Failure(
            f"no quotes for any of {tracked['market_id'].n_unique()} tracked markets; "
            "existing rows were kept (see collection_runs for the reasons)"
        )
    last = frames[windows[-1][0]]
    return dg.MaterializeResult(
        check_results=snapshot_checks(pl.concat(frames.values()), coverage),
        metadata={
            **window_metadata(windows),
            **selection_metadata(chosen),
            "row_count": dg.MetadataValue.int(total),
            "markets_tracked": dg.MetadataValue.int(tracked["market_id"].n_unique()),
            "markets_failed": dg.MetadataValue.int(len(run_errors)),
            "tokens_from_cache": dg.MetadataValue.int(from_cache),
            "mode": dg.MetadataValue.text("live" if live else "history"),
            "max_quote_age_min": dg.MetadataValue.float(max_age.total_seconds() / 60),
            "preview": preview(
                last.select(
                    "market_id",
                    "yes_price",
                    "best_bid",
                    "best_ask",
                    "quote_ts",
                    "quote_age_s",
                    "source",
                )
            ),
        },
    )


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
