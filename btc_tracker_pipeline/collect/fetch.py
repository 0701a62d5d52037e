"""What a run fetches for its windows: live answers for the window that just ended,
history for older ones, and a backfill's caches shared with the other runs.

The assets call these with their run's windows; the choice between live and history
is made here, not in the assets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from btc_tracker_pipeline.collect.history_cache import Connect, backfill_histories, history_needs
from btc_tracker_pipeline.collect.kline_cache import backfill_klines
from btc_tracker_pipeline.collect.paths import (
    path_candidates,
    path_errors,
    path_minutes,
    path_rows,
)
from btc_tracker_pipeline.collect.snapshots import (
    fetch_histories,
    history_snapshots,
    live_snapshot_frame,
)
from btc_tracker_pipeline.collect.spot import DAY, klines_frame, range_klines, range_stats
from btc_tracker_pipeline.sources.binance import BinanceClient
from btc_tracker_pipeline.sources.clob import ClobClient
from btc_tracker_pipeline.sources.errors import ApiError
from btc_tracker_pipeline.sources.gamma import GammaClient

Window = tuple[datetime, datetime]
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Quotes:
    """A run's snapshot rows, the fetch errors by YES token (``"*"``: the whole run),
    and how many tokens a backfill read from its cache."""

    snapshots: pl.DataFrame
    errors: dict[str, str]
    from_cache: int = 0


def quotes_for_run(
    gamma: GammaClient,
    clob: ClobClient,
    tracked: pl.DataFrame,
    windows: Sequence[Window],
    *,
    live: bool,
    clock: Callable[[], datetime],
    max_age: timedelta,
    connect: Connect,
    warn: Callable[[str], None],
) -> Quotes:
    """One quote per tracked market per window: Gamma's live quote fields for a live
    window (one ``/markets`` call per 500 ids), else the CLOB prices-history point at
    each window end no older than ``max_age`` (one request per token per run; a
    backfill of several windows reuses what earlier runs fetched)."""
    if live:
        ids = tracked["market_id"].unique().sort().to_list()
        fetched_at = clock()
        try:
            markets = gamma.get_markets_by_ids(ids)
        except ApiError as exc:
            failed = live_snapshot_frame([], *windows[0], fetched_at)
            return Quotes(failed, {"*": f"{exc.__class__.__name__}: {exc}"})
        return Quotes(live_snapshot_frame(markets, *windows[0], fetched_at), {})
    range_start, range_end = windows[0][0], windows[-1][1]
    needs = history_needs(tracked, range_start, range_end, max_age)
    from_cache = 0
    if len(windows) > 1:  # a backfill run: share fetches with the other runs
        histories, from_cache = backfill_histories(
            clob, needs, connect, (range_start, range_end), clock(), warn, max_age
        )
    else:
        spans = {t: (n.lo, n.hi) for t, n in needs.items()}
        histories = fetch_histories(clob, spans, max_age=max_age)
    return Quotes(history_snapshots(tracked, histories), dict(histories.errors), from_cache)


@dataclass(frozen=True)
class Paths:
    """A run's path rows, the (window_start, market_id) pairs due a path, the fetch
    errors as (window_start, error) rows, the tokens and how many a backfill read from
    its cache."""

    rows: pl.DataFrame
    due: pl.DataFrame
    errors: pl.DataFrame
    tokens: int
    from_cache: int = 0


def paths_for_run(
    clob: ClobClient,
    tracked: pl.DataFrame,
    klines: pl.DataFrame,
    windows: Sequence[Window],
    *,
    live: bool,
    clock: Callable[[], datetime],
    max_age: timedelta,
    families: Sequence[str],
    connect: Connect,
    warn: Callable[[str], None],
) -> Paths:
    """The minute paths of the markets of ``families`` in ``tracked`` (their newest
    ``tracked_markets`` rows from any window; ``collect.paths.path_candidates``): one
    1-minute prices-history request per token for the window that just ended; a
    backfill run reads the tokens ``market_snapshots`` already fetched from the history
    cache and fetches (and caches) only the others."""
    tracked = path_candidates(tracked.filter(pl.col("family").is_in(list(families))), windows)
    minutes = path_minutes(tracked, families)
    range_start, range_end = windows[0][0], windows[-1][1]
    needs = {
        token: need
        for token, need in history_needs(tracked, range_start, range_end, max_age, families).items()
        if need.minutes is not None
    }
    from_cache = 0
    if len(windows) > 1:
        histories, from_cache = backfill_histories(
            clob, needs, connect, (range_start, range_end), clock(), warn, max_age
        )
    else:
        spans = {t: (n.lo, n.hi) for t, n in needs.items()}
        histories = fetch_histories(clob, spans, max_age=max_age)
    rows = path_rows(minutes, histories, klines, "live" if live else "history")
    due = minutes.select("window_start", "market_id").unique(maintain_order=True)
    return Paths(rows, due, path_errors(minutes, histories), len(needs), from_cache)


def path_klines(
    client: BinanceClient,
    stored: pl.DataFrame,
    lo: datetime,
    hi: datetime,
    *,
    backfill: bool,
    connect: Connect,
    now: datetime,
    warn: Callable[[str], None],
) -> pl.DataFrame:
    """The 1-minute klines opening in [lo, hi) a run's paths need: those the warehouse
    has (``stored``: open_time, close, …), and the missing minutes from Binance (a
    backfill run reads them from the kline cache ``btc_spot_prices`` filled, with its
    24 h lookback; another run asks once). The candle before a run's first window
    belongs to the window before, which a first run or an out-of-order backfill run has
    not written; without this a minute's BTC close would depend on the order runs ran
    in. A failed fetch leaves those minutes without a close (warned)."""
    minutes = pl.datetime_range(lo, hi, "1m", closed="left", time_unit="us", eager=True)
    missing = minutes.filter(~minutes.is_in(stored["open_time"].implode()))
    if missing.is_empty():
        return stored
    first, end = missing.min(), missing.max() + MINUTE
    try:
        if backfill:
            fetched = backfill_klines(client, first, end, connect, now, warn)
        else:
            fetched = klines_frame(client.klines(first, end, "1m"))
    except ApiError as exc:
        warn(f"BTC closes of {len(missing)} minute(s) missing ({exc.__class__.__name__}: {exc})")
        return stored
    found = fetched.filter(pl.col("open_time").is_in(missing.implode())).select(stored.columns)
    return pl.concat([stored, found.cast(stored.schema)]).sort("open_time")


@dataclass(frozen=True)
class Spot:
    """A run's 1-minute klines (tagged with their window) and per-window spot stats."""

    klines: pl.DataFrame
    stats: pl.DataFrame


def spot_for_run(
    client: BinanceClient,
    windows: Sequence[Window],
    *,
    live: bool,
    now: datetime,
    connect: Connect,
    warn: Callable[[str], None],
) -> Spot:
    """BTC/USDT 1-minute klines from 24 h before the first window to the last window's
    end, in <=1000-candle pages (a backfill of several windows fetches only what earlier
    runs did not), and the spot stats of each window: Binance's 24 h ticker for a live
    window, else the 24 h of klines before the window end."""
    range_start, range_end = windows[0][0], windows[-1][1]
    if len(windows) > 1:
        all_klines = backfill_klines(client, range_start - DAY, range_end, connect, now, warn)
    else:
        all_klines = klines_frame(client.klines(range_start - DAY, range_end, "1m"))
    ticker = client.ticker_24h() if live else None
    return Spot(range_klines(all_klines, windows), range_stats(all_klines, windows, ticker))
