"""Every warehouse table, declared once: its columns in order, their types, its key.

The rest derives from these declarations: the DuckDB ``CREATE TABLE`` of the current
schema (``create_sql``), the polars schema of the frames written to a table
(``polars_schema``) and the window-written tables with their keys
(``schema.WINDOW_KEYS``).

The numbered migrations (``schema.MIGRATIONS``) stay the history every existing
warehouse went through and are never edited; a test builds a warehouse through all of
them and checks that it ends with exactly the tables declared here (names, column
order, types, NOT NULLs, defaults, primary keys). Changing the schema therefore takes
two edits that the test holds together: a new migration, and the declaration here.

Types: each column has one polars dtype; its DuckDB type is ``duckdb_type(dtype)``
unless the column names another (``sql_type``). Timestamps are naive UTC microseconds
(``pl.Datetime("us")``, DuckDB ``TIMESTAMP``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

TIMESTAMP = pl.Datetime("us")
STRING = pl.String()
DOUBLE = pl.Float64()
BOOLEAN = pl.Boolean()
INT8 = pl.Int8()
INT32 = pl.Int32()
INT64 = pl.Int64()

_DUCKDB_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Int8: "TINYINT",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float32: "FLOAT",
    pl.Float64: "DOUBLE",
}


def duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB column type that holds a polars ``dtype`` as is (``pl.Float64()`` →
    ``DOUBLE``, ``pl.Datetime("us")`` → ``TIMESTAMP``).

    Raises TypeError for a dtype the warehouse does not use, e.g. a timestamp with a
    time zone or another precision than microseconds (the warehouse keeps naive UTC).
    """
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "us" and dtype.time_zone is None:
        return "TIMESTAMP"
    name = _DUCKDB_TYPES.get(dtype.base_type())
    if name is None:
        raise TypeError(f"no warehouse column type for polars dtype {dtype!r}")
    return name


@dataclass(frozen=True)
class Column:
    """One column: its name, polars dtype and what the DDL adds to the type."""

    name: str
    dtype: pl.DataType
    not_null: bool = False
    default: str | None = None  # a SQL expression, e.g. "current_timestamp"
    sql_type: str | None = None  # the DuckDB type, where it is not duckdb_type(dtype)

    @property
    def duckdb_type(self) -> str:
        """The column's DuckDB type: ``sql_type`` if given, else ``duckdb_type(dtype)``."""
        return self.sql_type or duckdb_type(self.dtype)

    def definition(self) -> str:
        """The column as it appears in a ``CREATE TABLE``: ``"name" TYPE [NOT NULL] …``."""
        return (
            f'"{self.name}" {self.duckdb_type}'
            + (" NOT NULL" if self.not_null else "")
            + (f" DEFAULT {self.default}" if self.default is not None else "")
        )


@dataclass(frozen=True)
class Table:
    """A warehouse table: its columns in order, its key and how it is written.

    ``window``: the column ``warehouse.write_window`` replaces a 15-minute window on (None:
    the table is not written window by window). ``key``: what identifies a row; for a
    window table it is checked when a window is written, not by the database (see
    ``schema.WINDOW_KEYS``); with ``primary_key`` it is the table's PRIMARY KEY.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    window: str | None = None
    primary_key: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in table order."""
        return tuple(c.name for c in self.columns)


def _c(name: str, dtype: pl.DataType) -> Column:
    return Column(name, dtype)


def _required(name: str, dtype: pl.DataType) -> Column:
    return Column(name, dtype, not_null=True)


# The first columns of every table holding one row per market per window.
_WINDOW_MARKET = (
    _required("window_start", TIMESTAMP),
    _required("window_end", TIMESTAMP),
    _required("market_id", STRING),
)
_MARKET_WINDOW_KEY = ("window_start", "market_id")

_DECLARED: tuple[Table, ...] = (
    Table(
        "markets",
        (
            _required("market_id", STRING),
            _c("slug", STRING),
            _c("question", STRING),
            _c("description", STRING),
            _c("condition_id", STRING),
            _c("outcomes", STRING),
            _c("yes_token_id", STRING),
            _c("no_token_id", STRING),
            _c("event_id", STRING),
            _c("event_slug", STRING),
            _c("event_title", STRING),
            _c("series_slug", STRING),
            _c("start_date", TIMESTAMP),
            _c("end_date", TIMESTAMP),
            _c("resolution_source", STRING),
        ),
        key=("market_id",),
        primary_key=True,
    ),
    Table(
        "tracked_markets",
        (
            *_WINDOW_MARKET,
            _c("slug", STRING),
            _c("question", STRING),
            _required("family", STRING),
            _c("direction", STRING),
            _c("strike", DOUBLE),
            _c("strike_high", DOUBLE),
            _c("reference_start", TIMESTAMP),
            _c("expiry", TIMESTAMP),
            _c("parse_source", STRING),
            _c("yes_token_id", STRING),
            _c("no_token_id", STRING),
            _c("condition_id", STRING),
            _c("event_slug", STRING),
            _c("series_slug", STRING),
            _c("start_date", TIMESTAMP),
            _c("active", BOOLEAN),
            _c("closed", BOOLEAN),
            _c("fees_enabled", BOOLEAN),
            _c("fee_rate", DOUBLE),
            _c("fee_exponent", DOUBLE),
            _c("price_to_beat", DOUBLE),
            _required("discovered_by", STRING),
            # Markets the model must not take for the others (migration 7): one of a
            # neg-risk group; settled on a TWAP of the feed rather than one price.
            _c("neg_risk", BOOLEAN),
            _c("neg_risk_market_id", STRING),
            _c("twap_settled", BOOLEAN),
        ),
        key=_MARKET_WINDOW_KEY,
        window="window_start",
    ),
    Table(
        "market_snapshots",
        (
            *_WINDOW_MARKET,
            _c("yes_token_id", STRING),
            _required("snapshot_ts", TIMESTAMP),
            _c("quote_ts", TIMESTAMP),
            _c("yes_price", DOUBLE),
            _c("no_price", DOUBLE),
            _c("best_bid", DOUBLE),
            _c("best_ask", DOUBLE),
            _c("spread", DOUBLE),
            _c("last_trade_price", DOUBLE),
            _c("volume", DOUBLE),
            _c("volume_24h", DOUBLE),
            _c("liquidity", DOUBLE),
            _required("source", STRING),
            _c("quote_age_s", DOUBLE),
        ),
        key=_MARKET_WINDOW_KEY,
        window="window_start",
    ),
    Table(
        "market_resolutions",
        (
            *_WINDOW_MARKET,
            _c("condition_id", STRING),
            _c("family", STRING),
            _c("question", STRING),
            _c("expiry", TIMESTAMP),
            _c("settled_at", TIMESTAMP),
            _required("status", STRING),
            _c("winner_outcome", STRING),
            _c("winning_token_id", STRING),
            _c("yes_won", BOOLEAN),
            _c("outcome_prices", STRING),
            _c("uma_resolution_status", STRING),
            _required("source", STRING),
            # The label's check against the klines (defs/labels), added by the asset.
            _c("label_check", STRING),
            _c("label_check_detail", STRING),
        ),
        key=_MARKET_WINDOW_KEY,
        window="window_start",
    ),
    Table(
        "market_indicators",
        (
            *_WINDOW_MARKET,
            _c("family", STRING),
            _c("snapshot_ts", TIMESTAMP),
            _c("source", STRING),
            _c("market_probability", DOUBLE),
            _c("volume", DOUBLE),
            _c("liquidity", DOUBLE),
            _c("btc_spot_price", DOUBLE),
            _c("btc_24h_change_pct", DOUBLE),
            _c("price_momentum_15m", DOUBLE),
            _c("price_momentum_1h", DOUBLE),
            _c("volume_spike", DOUBLE),
            _c("price_volatility", DOUBLE),
            _c("rsi_14", DOUBLE),
            _c("market_edge", DOUBLE),
            _c("time_to_expiry_hours", DOUBLE),
            # features.structural
            _c("strike", DOUBLE),
            _c("strike_high", DOUBLE),
            _c("reference_price", DOUBLE),
            _c("realized_vol", DOUBLE),
            _c("log_moneyness", DOUBLE),
            _c("barrier_touched", BOOLEAN),
            _c("structural_probability", DOUBLE),
            # features.quality
            _c("q_fields", INT8),
            _c("q_fresh", INT8),
            _c("q_spread", INT8),
            _c("q_two_sided", INT8),
            _c("q_spot", INT8),
            _c("quality_score", DOUBLE),
            _c("quote_age_s", DOUBLE),  # migration 8 added it last
        ),
        key=_MARKET_WINDOW_KEY,
        window="window_start",
    ),
    Table(
        "edge_report",
        (
            *_WINDOW_MARKET,
            _c("model_version", STRING),
            _c("in_sample", BOOLEAN),
            # model.edges.INPUT_SCHEMA
            _c("family", STRING),
            _c("question", STRING),
            _c("cluster", STRING),
            _c("market_prob", DOUBLE),
            _c("best_bid", DOUBLE),
            _c("best_ask", DOUBLE),
            _c("model_prob", DOUBLE),
            _c("structural_probability", DOUBLE),
            _c("fees_enabled", BOOLEAN),
            _c("fee_rate", DOUBLE),
            _c("fee_exponent", DOUBLE),
            _c("time_to_expiry_hours", DOUBLE),
            _c("q_spot", INT8),
            _c("parse_source", STRING),
            _c("barrier_touched", BOOLEAN),
            # model.edges.OUTPUT_COLUMNS
            _c("bid", DOUBLE),
            _c("ask", DOUBLE),
            _c("edge", DOUBLE),
            _c("ev", DOUBLE),
            _c("fee_yes", DOUBLE),
            _c("fee_no", DOUBLE),
            _c("net_edge_yes", DOUBLE),
            _c("net_edge_no", DOUBLE),
            _c("side", STRING),
            _c("net_edge", DOUBLE),
            _c("recommendation", STRING),
            _c("cost", DOUBLE),
            _c("kelly", DOUBLE),
            _c("stake", DOUBLE),
            _c("ev_per_dollar", DOUBLE),
            _c("flags", STRING),
            # Migration 8: the spread assumed where a row has no book.
            _c("spread_estimate", DOUBLE),
            _c("spread_used", DOUBLE),
            _c("spread_source", STRING),
        ),
        key=_MARKET_WINDOW_KEY,
        window="window_start",
    ),
    Table(
        "market_paths",
        (
            *_WINDOW_MARKET,
            # One row per (market, minute) of the window inside the market's own window
            # [reference_start, expiry): minute_ts = reference_start + offset_min minutes.
            _required("minute_ts", TIMESTAMP),
            _c("family", STRING),
            _c("yes_token_id", STRING),
            _required("offset_min", INT32),
            _c("minutes_left", DOUBLE),
            # The YES price as of minute_ts: the newest prices-history point at or before it
            # no older than the quote age limit (None: no such point).
            _c("price", DOUBLE),
            _c("quote_ts", TIMESTAMP),
            _c("quote_age_s", DOUBLE),
            # BTC/USDT: the close of the 1-minute candle ending at minute_ts (spot as of it).
            _c("btc_close", DOUBLE),
            _required("source", STRING),
        ),
        key=("window_start", "market_id", "minute_ts"),
        window="window_start",
    ),
    Table(
        "live_edges",
        (
            # Migration 11: the live edge of every open up/down market at a minute
            # (model.live_edges), appended by live_edge_job; a rerun of a minute replaces
            # that minute's rows.
            _required("computed_at", TIMESTAMP),
            _required("minute_ts", TIMESTAMP),
            _required("market_id", STRING),
            _c("family", STRING),
            _c("question", STRING),
            _c("expiry", TIMESTAMP),
            _c("minutes_left", DOUBLE),
            # BTC/USDT: the close of the 1-minute candle ending at minute_ts, and at the open.
            _c("btc_spot", DOUBLE),
            _c("open_price", DOUBLE),
            # The book's mid (else the YES price as of the minute), its best bid and ask.
            _c("market_prob", DOUBLE),
            _c("best_bid", DOUBLE),
            _c("best_ask", DOUBLE),
            _c("spread", DOUBLE),
            _c("structural_probability", DOUBLE),
            # The saved model's probability, else the structural one (prob_source says which).
            _c("model_prob", DOUBLE),
            _c("prob_source", STRING),
            _c("model_version", STRING),
            _c("side", STRING),
            _c("net_edge", DOUBLE),
            _c("fee", DOUBLE),
            _c("stake", DOUBLE),
            _c("recommendation", STRING),
            _c("flags", STRING),
            # Why a part of the row is missing (a book or a history that failed); None: none.
            _c("error", STRING),
        ),
        key=("minute_ts", "market_id"),
    ),
    Table(
        "btc_spot_prices",
        (
            _required("window_start", TIMESTAMP),
            _required("open_time", TIMESTAMP),
            _required("open", DOUBLE),
            _required("high", DOUBLE),
            _required("low", DOUBLE),
            _required("close", DOUBLE),
            _required("volume", DOUBLE),
        ),
        key=("open_time",),
        window="window_start",
    ),
    Table(
        "btc_spot_windows",
        (
            _required("window_start", TIMESTAMP),
            _required("window_end", TIMESTAMP),
            _required("as_of", TIMESTAMP),
            _required("spot_price", DOUBLE),
            _c("window_open", DOUBLE),
            _c("window_high", DOUBLE),
            _c("window_low", DOUBLE),
            _c("window_close", DOUBLE),
            _c("change_24h_pct", DOUBLE),
            _c("high_24h", DOUBLE),
            _c("low_24h", DOUBLE),
            _c("volume_24h", DOUBLE),
            _required("source", STRING),
        ),
        key=("window_start",),
        window="window_start",
    ),
    Table(
        "collection_runs",
        (
            _required("run_id", STRING),
            _c("dagster_run_id", STRING),
            _required("asset", STRING),
            _required("window_start", TIMESTAMP),
            _required("window_end", TIMESTAMP),
            _required("started_at", TIMESTAMP),
            _required("finished_at", TIMESTAMP),
            _required("duration_s", DOUBLE),
            _required("markets_tried", INT32),
            _required("markets_ok", INT32),
            _required("requests", INT32),
            _required("retries", INT32),
            _required("status", STRING),
            _required("errors", STRING),
        ),
    ),
    Table(
        "model_predictions",
        (
            _required("model_version", STRING),
            _c("fold", INT32),
            _required("market_id", STRING),
            _c("event_id", STRING),
            _c("family", STRING),
            _c("cluster", STRING),
            _required("snapshot_ts", TIMESTAMP),
            _c("resolved_at", TIMESTAMP),
            _c("y", INT8),
            _c("weight", DOUBLE),
            _c("market_prob", DOUBLE),
            _c("structural_probability", DOUBLE),
            _c("model_prob", DOUBLE),
            _c("oracle_prob", DOUBLE),
        ),
    ),
    Table(
        "paper_trades",
        (
            _required("model_version", STRING),
            _required("market_id", STRING),
            _c("cluster", STRING),
            _c("window_start", TIMESTAMP),
            _c("side", STRING),
            _c("price", DOUBLE),
            _c("fee", DOUBLE),
            _c("cost", DOUBLE),
            _c("shares", DOUBLE),
            _c("stake", DOUBLE),
            _c("predicted_ev", DOUBLE),
            _c("settled_at", TIMESTAMP),
            _c("won", BOOLEAN),
            _c("pnl", DOUBLE),
            _c("roi", DOUBLE),
            _c("spread", DOUBLE),
            _c("spread_source", STRING),
            _c("slippage", DOUBLE),
            _c("book_liquidity", DOUBLE),
            _c("liquidity_source", STRING),
        ),
    ),
    Table(
        "paper_ledger",
        (
            # Migration 12: the forward paper ledger (model.ledger): one position per live
            # recommendation of edge_report, inserted once; settling fills in status,
            # settled_at, outcome, payout, pnl and realised_edge, nothing else.
            _required("position_id", STRING),
            _required("market_id", STRING),
            _required("window_start", TIMESTAMP),
            _required("opened_at", TIMESTAMP),
            _c("family", STRING),
            _c("question", STRING),
            _c("cluster", STRING),
            _required("side", STRING),
            # Per share, all in: the ask (YES) or 1 − bid (NO), the slippage of the stake,
            # the taker fee at that price.
            _required("price_paid", DOUBLE),
            _required("fee", DOUBLE),
            _c("slippage", DOUBLE),
            _required("stake", DOUBLE),
            _required("shares", DOUBLE),
            # The ledger bankroll the stake was sized on, and the report's Kelly f*.
            _c("bankroll_at_open", DOUBLE),
            _c("kelly", DOUBLE),
            _c("model_prob", DOUBLE),
            _c("market_prob", DOUBLE),
            # The side's probability minus price_paid: the model's profit per share.
            _c("predicted_edge", DOUBLE),
            _c("model_version", STRING),
            _required("status", STRING),
            _c("settled_at", TIMESTAMP),
            _c("outcome", INT8),
            _c("payout", DOUBLE),
            _c("pnl", DOUBLE),
            _c("realised_edge", DOUBLE),
        ),
        key=("position_id",),
        primary_key=True,
    ),
    # Backfill caches (collect/history_cache.py, collect/kline_cache.py), keyed by source.
    Table(
        "history_spans",
        (
            _required("source", STRING),
            _required("yes_token_id", STRING),
            _required("span_start", TIMESTAMP),
            _required("span_end", TIMESTAMP),
            _required("fetched_at", TIMESTAMP),
            # Migration 10: where history_quotes also holds the quote at every minute (for
            # market_paths); None: at quarter hours only.
            _c("minutes_start", TIMESTAMP),
            _c("minutes_end", TIMESTAMP),
        ),
    ),
    Table(
        "history_quotes",
        (
            _required("source", STRING),
            _required("yes_token_id", STRING),
            _required("window_end", TIMESTAMP),
            _required("quote_t", INT64),
            _required("price", DOUBLE),
        ),
    ),
    Table(
        "kline_spans",
        (
            _required("source", STRING),
            _required("span_start", TIMESTAMP),
            _required("span_end", TIMESTAMP),
            _required("fetched_at", TIMESTAMP),
        ),
    ),
    Table(
        "kline_cache",
        (
            _required("source", STRING),
            _required("open_time", TIMESTAMP),
            _required("open", DOUBLE),
            _required("high", DOUBLE),
            _required("low", DOUBLE),
            _required("close", DOUBLE),
            _required("volume", DOUBLE),
        ),
    ),
    # The migrations applied (schema.migrate creates it before the first one).
    Table(
        "schema_migrations",
        (
            _required("version", INT32),
            Column("applied_at", TIMESTAMP, default="current_timestamp"),
        ),
        key=("version",),
        primary_key=True,
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in _DECLARED}


def table(name: str) -> Table:
    """The declaration of the warehouse table ``name``; KeyError naming the known tables
    if there is none."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no warehouse table {name!r}; tables: {', '.join(TABLES)}") from None


def polars_schema(
    name: str, columns: Iterable[str] | None = None, *, exclude: Iterable[str] = ()
) -> dict[str, pl.DataType]:
    """The polars schema (column name → dtype) of frames written to table ``name``.

    All its columns in table order by default; ``columns`` picks some, in the order
    given, for a frame holding part of a row; ``exclude`` leaves some out. Raises
    KeyError for a column the table does not have. Returns a new dict on every call.
    """
    dtypes = {c.name: c.dtype for c in table(name).columns}
    chosen = list(dtypes) if columns is None else list(columns)
    unknown = [c for c in (*chosen, *exclude) if c not in dtypes]
    if unknown:
        raise KeyError(f"{name} has no column {', '.join(map(repr, unknown))}")
    dropped = set(exclude)
    return {c: dtypes[c] for c in chosen if c not in dropped}


def create_sql(name: str) -> str:
    """The ``CREATE TABLE`` statement of table ``name`` in the current schema: what the
    migrations, applied in order to an empty database, leave behind.

    Not for use in a migration: a migration's SQL is frozen when it is written, whereas
    this follows the declaration.
    """
    t = table(name)
    parts = [c.definition() for c in t.columns]
    if t.primary_key:
        key = ", ".join(f'"{k}"' for k in t.key)
        parts.append(f"PRIMARY KEY ({key})")
    body = ",\n    ".join(parts)
    return f"CREATE TABLE {t.name} (\n    {body}\n)"


def window_keys() -> dict[str, tuple[str, ...]]:
    """The tables written window by window (``warehouse.write_window``), each with the
    key its rows are checked on, in declaration order."""
    return {t.name: t.key for t in _DECLARED if t.window is not None}
