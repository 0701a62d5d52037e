"""Live edges: at the current minute, the net edge of every open up/down market.

For minute t (naive UTC, whole minute) and every up/down market open at t (its newest
``tracked_markets`` row has a family ``updown_*``, ``reference_start`` <= t < ``expiry``
and a YES token: the pipeline lists them a day ahead, so the warehouse knows them):

1. **Read** (``read_inputs``): those markets, and the BTC 1-minute klines the warehouse
   holds from 24 h before the earliest open (σ, ``features.structural.realized_vol``)
   up to t.
2. **Fetch** (``fetch_live``), all at once on a thread pool: per market the CLOB
   ``/book`` of its YES token (best bid/ask) and its 1-minute ``/prices-history`` since
   the open (one request per token, for the lag features), and from Binance only the
   1-minute klines the warehouse lacks up to t. A failing call is recorded against its
   market (``error``) and never stops the others; every call has the client's timeout.
3. **Build** (``live_rows``): each market's minute path up to t (``collect.paths``),
   its in-window features at t (``features.path_features``: open price, σ, the
   structural probability Φ(move / σ√τ), the lags) with spot as of the quote, as in
   training (``as_of_quote``), and the model's inputs as training builds them
   (``model.dataset.path_rows``); ``market_prob`` = the book's mid (bid + ask) / 2,
   else the YES price as of t.
4. **Score** (``score_rows``): ``model_prob`` from the newest saved model
   (``model.scoring``, as ``edge_report`` scores); without a model, or where it has no
   say, the structural probability, with ``prob_source`` = ``structural``.
5. **Edges** (``model.edges.edge_report``): fees, net edge after fees and the spread,
   side, Kelly stake and flags, with the model card's skill gate (no card proves
   nothing: a would-be BUY is then PASS ``no_proven_skill``, its side and net edge
   kept). A row with an ``error`` is PASS with stake 0: no trade on a partial view.

The result has the columns of the ``live_edges`` table. ``write_live_edges`` replaces a
minute's rows, so a minute computed twice holds one set of rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from btc_tracker_pipeline.collect.paths import PATH_FAMILIES, path_minutes, path_rows
from btc_tracker_pipeline.collect.runs import utcnow
from btc_tracker_pipeline.collect.snapshots import MAX_QUOTE_AGE, Histories
from btc_tracker_pipeline.collect.spot import klines_frame
from btc_tracker_pipeline.features.path_features import (
    as_of_quote,
    path_features,
)
from btc_tracker_pipeline.model.dataset import path_rows as dataset_path_rows
from btc_tracker_pipeline.model.edges import EdgeConfig, edge_report, proven_families
from btc_tracker_pipeline.sources.errors import ApiError
from btc_tracker_pipeline.sources.models import OrderBook
from btc_tracker_pipeline.warehouse.tables import polars_schema
from btc_tracker_pipeline.warehouse.write import registered, transaction

log = logging.getLogger(__name__)
# "No model yet" is what prob_source says on every row; a command need not warn too.
log.addHandler(logging.NullHandler())
log.propagate = False

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
LIVE_SCHEMA: dict[str, pl.DataType] = polars_schema("live_edges")
LIVE_COLUMNS: tuple[str, ...] = tuple(LIVE_SCHEMA)
# Concurrent requests: a book and a history per market and the klines, at once.
MAX_WORKERS = 16

# The newest tracked row of each up/down market open at $1 (a market listed a day ahead
# has rows in every window since; its terms do not change between them).
OPEN_MARKETS_SQL = """
SELECT market_id, question, family, reference_start, expiry, yes_token_id,
       fees_enabled, fee_rate, fee_exponent, parse_source
FROM (
    SELECT *, row_number() OVER (PARTITION BY market_id ORDER BY window_start DESC) AS _n
    FROM tracked_markets
    WHERE family IN ({families}) AND reference_start <= $1 AND expiry > $1
)
WHERE _n = 1 AND yes_token_id IS NOT NULL
ORDER BY expiry, market_id
"""


# A live view must answer within seconds: each call waits at most LIVE_TIMEOUT_S (or the
# configured timeout, if shorter) and is tried twice, a short pause between.
LIVE_TIMEOUT_S = 5.0
LIVE_ATTEMPTS = 2
LIVE_BACKOFF_S = 0.2


def live_clients(clob_url: str, binance_url: str, timeout_s: float) -> tuple[Any, Any]:
    """A CLOB and a Binance client for a live view (``LIVE_*`` timeouts and retries);
    close the CLOB's ``http`` when done."""
    from btc_tracker_pipeline.sources.binance import REAL_BASE_URL, BinanceClient, site_of
    from btc_tracker_pipeline.sources.clob import ClobClient
    from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client

    timeout = min(timeout_s, LIVE_TIMEOUT_S)
    settings = HttpSettings(
        timeout_s=timeout,
        max_attempts=LIVE_ATTEMPTS,
        backoff_initial_s=LIVE_BACKOFF_S,
        backoff_max_s=1.0,
        max_retry_after_s=1.0,
    )
    clob = ClobClient(JsonHttp(make_client(settings), settings), clob_url)
    binance = BinanceClient(
        base_url=binance_url,
        timeout_s=timeout,
        max_attempts=LIVE_ATTEMPTS,
        enable_rate_limit=site_of(binance_url) == REAL_BASE_URL,
        backoff_initial_s=LIVE_BACKOFF_S,
        backoff_max_s=1.0,
        max_retry_after_s=1.0,
    )
    return clob, binance


class LiveEdgesError(RuntimeError):
    """What stops a live view, in one line: no open market known, every API down."""


def minute_of(moment: datetime) -> datetime:
    """The whole minute ``moment`` is in (naive UTC)."""
    return moment.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class LiveInputs:
    """What the warehouse gives a live view at ``minute``: the open up/down markets and
    the stored 1-minute klines from 24 h before the earliest open up to the minute."""

    minute: datetime
    markets: pl.DataFrame
    klines: pl.DataFrame

    @property
    def klines_start(self) -> datetime:
        """The first candle σ needs: 24 h before the earliest open."""
        return self.markets["reference_start"].min() - DAY


def read_inputs(
    conn: duckdb.DuckDBPyConnection,
    minute: datetime,
    families: Sequence[str] = PATH_FAMILIES,
) -> LiveInputs:
    """The open up/down markets at ``minute`` and the stored klines they need;
    LiveEdgesError, saying what to do, when the warehouse knows none."""
    listed = ", ".join(f"'{f}'" for f in families)
    markets = conn.execute(OPEN_MARKETS_SQL.format(families=listed), [minute]).pl()
    if markets.is_empty():
        newest = conn.execute("SELECT max(window_start) FROM tracked_markets").fetchone()[0]
        known = (
            f"its newest tracked_markets window is {newest:%Y-%m-%d %H:%M} UTC"
            if newest is not None
            else "it has no tracked_markets rows"
        )
        raise LiveEdgesError(
            f"no open up/down market at {minute:%Y-%m-%d %H:%M} UTC in the warehouse "
            f"({known}); run a collection first (btc-tracker collect), which lists "
            "them a day ahead"
        )
    markets = markets.with_columns(pl.col("reference_start", "expiry").cast(pl.Datetime("us")))
    start = markets["reference_start"].min() - DAY
    klines = conn.execute(
        "SELECT open_time, open, high, low, close, volume FROM btc_spot_prices "
        "WHERE open_time >= ? AND open_time < ? ORDER BY open_time",
        [start, minute],
    ).pl()
    return LiveInputs(minute, markets, klines)


@dataclass
class LiveFetch:
    """What the APIs answered: books and histories by YES token, the klines (stored and
    fetched), and what failed: ``errors`` by token, ``spot_error`` for Binance."""

    books: dict[str, OrderBook] = field(default_factory=dict)
    histories: Histories = field(default_factory=Histories)
    errors: dict[str, list[str]] = field(default_factory=dict)
    klines: pl.DataFrame = field(default_factory=pl.DataFrame)
    spot_error: str | None = None


def _reason(exc: ApiError) -> str:
    return f"{exc.__class__.__name__}: {exc}"


def missing_kline_ranges(
    stored: pl.DataFrame, start: datetime, minute: datetime
) -> list[tuple[datetime, datetime]]:
    """The ranges of candle open times in [start, minute) the stored klines lack at
    their ends (a hole inside them costs σ a few bars, not a request): all of it
    without stored klines, else what is before the first and after the last."""
    if stored.is_empty():
        return [(start, minute)]
    first, last = stored["open_time"].min(), stored["open_time"].max()
    ranges = []
    if first > start:
        ranges.append((start, first))
    if last + MINUTE < minute:
        ranges.append((last + MINUTE, minute))
    return ranges


def fetch_live(
    clob: Any,
    binance: Any,
    inputs: LiveInputs,
    *,
    max_age: timedelta = MAX_QUOTE_AGE,
    max_workers: int = MAX_WORKERS,
) -> LiveFetch:
    """Every market's book and in-window history and the missing klines, concurrently
    (``clob``: ``sources.clob.ClobClient``, ``binance``: ``sources.binance.BinanceClient``).
    Only API errors are caught: each is recorded, the rest goes on."""
    minute = inputs.minute
    opens = dict(
        zip(inputs.markets["yes_token_id"], inputs.markets["reference_start"], strict=True)
    )
    fetch = LiveFetch(histories=Histories(max_age=max_age))

    def book(token: str) -> tuple[str, str, Any, str | None]:
        try:
            return "book", token, clob.book(token), None
        except ApiError as exc:
            return "book", token, None, f"book: {_reason(exc)}"

    def history(token: str) -> tuple[str, str, Any, str | None]:
        try:
            # From max_age before the open, as market_paths fetches: the quote at the open
            # may be older than the open.
            since = opens[token] - max_age
            return "history", token, clob.prices_history(token, since, minute, 1), None
        except ApiError as exc:
            return "history", token, None, f"prices-history: {_reason(exc)}"

    def klines() -> tuple[str, str, Any, str | None]:
        ranges = missing_kline_ranges(inputs.klines, inputs.klines_start, minute)
        try:
            fetched = [k for lo, hi in ranges for k in binance.klines(lo, hi, "1m")]
            return "klines", "", fetched, None
        except ApiError as exc:
            return "klines", "", None, f"binance klines: {_reason(exc)}"

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = [pool.submit(klines)]
        for token in sorted(opens):
            futures += [pool.submit(book, token), pool.submit(history, token)]
        results = [f.result() for f in futures]
    fetched_klines: list = []
    for kind, token, value, error in results:
        if error is not None:
            if kind == "klines":
                fetch.spot_error = error
            else:
                fetch.errors.setdefault(token, []).append(error)
                if kind == "history":
                    fetch.histories.errors[token] = error
        elif kind == "book":
            fetch.books[token] = value
        elif kind == "history":
            fetch.histories.points[token] = value or []
        else:
            fetched_klines = value
    stored = inputs.klines.select("open_time", "open", "high", "low", "close", "volume")
    fresh = klines_frame(fetched_klines)
    fetch.klines = (
        pl.concat([stored.cast(fresh.schema), fresh])
        .unique("open_time", keep="last")
        .sort("open_time")
    )
    return fetch


def live_rows(inputs: LiveInputs, fetch: LiveFetch) -> pl.DataFrame:
    """One row per open market at the minute: its terms, the in-window features at the
    minute (null where its history or the spot failed), the book and ``error``; the
    model's inputs as ``market_indicators`` names them (``model.dataset.add_features``)."""
    minute = inputs.minute
    markets = inputs.markets
    tracked = markets.with_columns(
        pl.col("reference_start").alias("window_start"),
        pl.lit(minute + MINUTE, dtype=pl.Datetime("us")).alias("window_end"),
    )
    minutes = path_minutes(tracked, markets["family"].unique().to_list())
    paths = path_rows(minutes, fetch.histories, fetch.klines, "live").join(
        markets.select("market_id", "reference_start", "expiry"), on="market_id"
    )
    books = pl.DataFrame(
        {
            "yes_token_id": list(fetch.books),
            "best_bid": [b.best_bid for b in fetch.books.values()],
            "best_ask": [b.best_ask for b in fetch.books.values()],
        },
        schema={"yes_token_id": pl.String, "best_bid": pl.Float64, "best_ask": pl.Float64},
    )
    bid, ask = pl.col("best_bid"), pl.col("best_ask")
    two_sided = bid.is_not_null() & ask.is_not_null() & (bid <= ask)
    # At the minute itself the book is the market's price: a two-sided book's mid is the
    # quote at the minute (age 0). Otherwise the newest history point is, which can be up
    # to the quote age limit old. The model sees spot as of that quote, as in training
    # (``as_of_quote``): a stale price beside fresh spot would be a lag of the data.
    now_quote = (pl.col("minute_ts") == minute) & two_sided
    paths = (
        paths.join(books, on="yes_token_id", how="left")
        .with_columns(
            pl.when(now_quote).then((bid + ask) / 2.0).otherwise("price").alias("price"),
            pl.when(now_quote).then(pl.col("minute_ts")).otherwise("quote_ts").alias("quote_ts"),
            pl.when(now_quote).then(0.0).otherwise("quote_age_s").alias("quote_age_s"),
        )
        .drop("best_bid", "best_ask")
    )
    # The row shows the spot at the minute.
    spot_now = paths.select("market_id", "minute_ts", pl.col("btc_close").alias("_spot_now"))
    features = (
        path_features(as_of_quote(paths, fetch.klines), fetch.klines)
        .join(spot_now, on=["market_id", "minute_ts"], how="left")
        .filter(pl.col("minute_ts") == minute)
    )
    errors = [
        "; ".join([*fetch.errors.get(token, []), *([fetch.spot_error] if fetch.spot_error else [])])
        or None
        for token in markets["yes_token_id"]
    ]
    price = pl.col("market_probability")
    # The model's inputs exactly as training builds them (named as in market_indicators).
    model_inputs = dataset_path_rows(features).drop("family", "window_start", "_path")
    return (
        markets.with_columns(pl.Series("error", errors, dtype=pl.String))
        .join(books, on="yes_token_id", how="left")
        .join(model_inputs, on="market_id", how="left")
        .join(
            features.select(
                "market_id", pl.col("_spot_now").alias("btc_close"), "open_price", "path_sigma"
            ),
            on="market_id",
            how="left",
        )
        .with_columns(
            pl.lit(minute, dtype=pl.Datetime("us")).alias("minute_ts"),
            pl.when(two_sided).then((bid + ask) / 2.0).otherwise(price).alias("market_prob"),
        )
        .sort("expiry", "market_id")
    )


def score_rows(
    rows: pl.DataFrame,
    model: Any,
    card: dict | None,
) -> pl.DataFrame:
    """``model_prob`` and ``prob_source``: the model's where it has a say
    (``model.scoring``), else the structural probability (``structural``; null without
    one)."""
    from btc_tracker_pipeline.model.scoring import with_model_probabilities

    scored = with_model_probabilities(rows, model, card)
    return scored.with_columns(
        pl.when(pl.col("model_prob").is_not_null())
        .then(pl.lit("model"))
        .when(pl.col("structural_probability").is_not_null())
        .then(pl.lit("structural"))
        .alias("prob_source"),
        pl.coalesce("model_prob", "structural_probability").alias("model_prob"),
    )


def edge_rows(
    scored: pl.DataFrame,
    *,
    config: EdgeConfig,
    card: dict | None,
    version: str | None,
    computed_at: datetime,
) -> pl.DataFrame:
    """The ``live_edges`` rows of ``scored`` (``score_rows``): ``model.edges.edge_report``
    with the card's skill gate, each market its own cluster; a row with an ``error`` is
    PASS with stake 0."""
    inputs = scored.with_columns(
        pl.col("minute_ts").alias("window_start"),
        pl.col("market_id").alias("cluster"),
        pl.lit(None, dtype=pl.Int8).alias("q_spot"),
        # The spot of a row is the candle that closed at its minute: fresh, or missing.
        pl.when(pl.col("btc_close").is_not_null()).then(0.0).alias("spot_age_minutes"),
    )
    report = edge_report(inputs, config, proven_families(card))
    failed = pl.col("error").is_not_null()
    return (
        report.with_columns(
            pl.lit(computed_at, dtype=pl.Datetime("us")).alias("computed_at"),
            # Shown: the time left at the minute (the model's is as of the quote).
            ((pl.col("expiry") - pl.col("minute_ts")).dt.total_seconds() / 60.0).alias(
                "minutes_left"
            ),
            pl.lit(version, dtype=pl.String).alias("model_version"),
            pl.col("btc_close").alias("btc_spot"),
            pl.col("spread_used").alias("spread"),
            pl.when(pl.col("side") == "YES")
            .then(pl.col("fee_yes"))
            .when(pl.col("side") == "NO")
            .then(pl.col("fee_no"))
            .alias("fee"),
            pl.when(failed)
            .then(pl.lit("PASS"))
            .otherwise("recommendation")
            .alias("recommendation"),
            pl.when(failed).then(0.0).otherwise("stake").alias("stake"),
        )
        .select(LIVE_COLUMNS)
        .cast(LIVE_SCHEMA)
        .sort("expiry", "market_id")
    )


@dataclass(frozen=True)
class LiveEdges:
    """A live view: its rows (``live_edges`` columns) and the model that scored them
    (None: structural probabilities)."""

    rows: pl.DataFrame
    model_version: str | None


def compute_live_edges(
    inputs: LiveInputs,
    clob: Any,
    binance: Any,
    models_dir: Path,
    *,
    config: EdgeConfig | None = None,
    max_age: timedelta = MAX_QUOTE_AGE,
    now: Callable[[], datetime] = utcnow,
    logger: Any = log,
) -> LiveEdges:
    """Fetch, build, score and price the live view of ``inputs`` (module docstring).

    LiveEdgesError when no market got a price and a spot: every API failed (the rows'
    errors say how).
    """
    fetch = fetch_live(clob, binance, inputs, max_age=max_age)
    rows = live_rows(inputs, fetch)
    usable = rows.filter(
        pl.col("market_prob").is_not_null() & pl.col("structural_probability").is_not_null()
    )
    if usable.is_empty():
        reasons = sorted({e for e in rows["error"].drop_nulls().to_list()})
        detail = reasons[0].split("; ")[0] if reasons else "no price or spot in any answer"
        raise LiveEdgesError(
            f"no open up/down market could be priced at {inputs.minute:%Y-%m-%d %H:%M} UTC: "
            f"{detail}"
        )
    from btc_tracker_pipeline.model.scoring import newest_model

    model, card, version, _ = newest_model(Path(models_dir), logger)
    scored = score_rows(rows, model, card)
    frame = edge_rows(
        scored,
        config=config or EdgeConfig(),
        card=card,
        version=version if model is not None else None,
        computed_at=now(),
    )
    return LiveEdges(frame, version if model is not None else None)


def write_live_edges(conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    """Replace the rows of the minutes in ``rows`` with ``rows``, in one transaction."""
    if rows.is_empty():
        return 0
    frame = rows.select(LIVE_COLUMNS).cast(LIVE_SCHEMA)
    with registered(conn, frame) as name, transaction(conn):
        conn.execute(
            f"DELETE FROM live_edges WHERE minute_ts IN (SELECT DISTINCT minute_ts FROM {name})"
        )
        conn.execute(f"INSERT INTO live_edges BY NAME SELECT * FROM {name}")
    return frame.height
