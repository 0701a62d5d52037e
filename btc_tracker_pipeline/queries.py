"""Read-only questions about the warehouse (and Gamma discovery) behind the query commands.

Every function takes an open DuckDB connection (read-only is enough) or a
:class:`GammaClient` and returns a polars frame or a dataclass; nothing here
prints, exits or writes to the warehouse. ``btc_tracker_pipeline.cli_read`` turns
the results into tables and JSON.

Example::

    from btc_tracker_pipeline.warehouse import warehouse
    with warehouse("data/warehouse.duckdb", read_only=True) as conn:
        stats = warehouse_stats(conn, Path("data/warehouse.duckdb"))
        history = market_history(conn, "1001969232")
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from btc_tracker_pipeline.collect.discovery import BITCOIN_TAG_ID, DEFAULT_KEYWORDS, is_btc_market
from btc_tracker_pipeline.features.market_terms import parse_market_terms
from btc_tracker_pipeline.market_selection import run_config
from btc_tracker_pipeline.partitions import WINDOW, key_of
from btc_tracker_pipeline.sources.gamma import GammaClient
from btc_tracker_pipeline.sources.models import GammaMarket
from btc_tracker_pipeline.warehouse.coverage import ThinWindow, thin_windows

# The seed's "quality >= 0.8"; scores are means of five 0/1 components (0.2 steps).
GOOD_QUALITY = 0.8
_EPS = 1e-9
EXPORT_FORMATS = ("csv", "json", "parquet")
# Tables whose rows are not keyed by the window they were collected in.
TIME_COLUMN_OVERRIDES = {
    "btc_spot_prices": "open_time",
    "paper_trades": "window_start",
    "live_edges": "minute_ts",
}


# --------------------------------------------------------------------------- stats


@dataclass(frozen=True)
class Gap:
    """Consecutive missing 15-minute windows ``first`` … ``last`` (window starts, inclusive)."""

    first: datetime
    last: datetime
    windows: int

    def label(self) -> str:
        """``2026-02-28-21:00 … 2026-02-28-21:30 (3 windows)`` or a single key."""
        if self.windows == 1:
            return f"{key_of(self.first)} (1 window)"
        return f"{key_of(self.first)} … {key_of(self.last)} ({self.windows} windows)"


@dataclass(frozen=True)
class QualityBucket:
    """How many ``market_indicators`` rows have this quality score (None: not scored)."""

    score: float | None
    rows: int


@dataclass(frozen=True)
class RunRow:
    """One recent ``collection_runs`` row, trimmed to what a person checks."""

    asset: str
    window: str
    status: str
    markets_tried: int
    markets_ok: int
    duration_s: float
    started_at: datetime
    first_error: str | None


@dataclass(frozen=True)
class WarehouseStats:
    """The seed's ``--stats``: volume, coverage, gaps, quality, labels and recent runs."""

    path: str
    size_bytes: int
    snapshots: int
    markets: int
    windows: int
    first_window: datetime | None
    last_window: datetime | None
    expected_windows: int
    gaps: list[Gap]
    # Windows with rows, but fewer markets than were open in them (warehouse.coverage).
    thin_windows: list[ThinWindow]
    quality: list[QualityBucket]
    quality_rows: int
    good_quality_share: float | None
    labels_by_status: dict[str, int]
    label_checks: dict[str, int]
    recent_runs: list[RunRow]

    @property
    def missing_windows(self) -> int:
        """Windows between the first and the last with no snapshot at all."""
        return sum(g.windows for g in self.gaps)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO strings, window keys beside them)."""
        data = asdict(self)
        data["missing_windows"] = self.missing_windows
        data["first_window_key"] = key_of(self.first_window) if self.first_window else None
        data["last_window_key"] = key_of(self.last_window) if self.last_window else None
        data["gaps"] = [
            {"first": key_of(g.first), "last": key_of(g.last), "windows": g.windows}
            for g in self.gaps
        ]
        data["thin_windows"] = [
            {
                "window": key_of(w.window_start),
                "open": w.expected,
                "tracked": w.tracked,
                "quoted": w.quoted,
            }
            for w in self.thin_windows
        ]
        return json.loads(json.dumps(data, default=_json_default))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, list(params)).fetchone()
    return row[0] if row else None


def window_gaps(conn: duckdb.DuckDBPyConnection, table: str = "market_snapshots") -> list[Gap]:
    """Missing 15-minute windows between the first and last ``window_start`` of ``table``,
    merged into ranges (gaps and islands, computed in DuckDB).

    Example: windows 20:00, 20:15, 21:00 → ``[Gap(20:30, 20:45, 2)]``.
    """
    rows = conn.execute(
        f"""
        WITH have AS (SELECT DISTINCT window_start AS ws FROM {table}),
        grid AS (
            SELECT unnest(generate_series(min(ws), max(ws), INTERVAL 15 MINUTE)) AS ws FROM have
        ),
        missing AS (SELECT ws FROM grid WHERE ws NOT IN (SELECT ws FROM have)),
        numbered AS (
            SELECT ws, ws - INTERVAL 15 MINUTE * row_number() OVER (ORDER BY ws) AS island
            FROM missing
        )
        SELECT min(ws), max(ws), count(*) FROM numbered GROUP BY island ORDER BY 1
        """
    ).fetchall()
    return [Gap(first, last, int(n)) for first, last, n in rows]


def quality_distribution(conn: duckdb.DuckDBPyConnection) -> list[QualityBucket]:
    """Rows per ``market_indicators.quality_score`` value (rounded to 0.01), best first,
    unscored rows (None) last."""
    rows = conn.execute(
        "SELECT round(quality_score, 2) AS score, count(*) FROM market_indicators "
        "GROUP BY score ORDER BY score DESC NULLS LAST"
    ).fetchall()
    return [QualityBucket(None if s is None else float(s), int(n)) for s, n in rows]


def good_quality_share(buckets: Sequence[QualityBucket]) -> float | None:
    """Share of all indicator rows scoring at least 0.8 (None when there are none)."""
    total = sum(b.rows for b in buckets)
    if not total:
        return None
    good = sum(b.rows for b in buckets if b.score is not None and b.score >= GOOD_QUALITY - _EPS)
    return good / total


def _counts(conn: duckdb.DuckDBPyConnection, column: str, table: str) -> dict[str, int]:
    rows = conn.execute(
        f"SELECT coalesce({column}, 'none') AS k, count(*) FROM {table} GROUP BY k ORDER BY k"
    ).fetchall()
    return {str(k): int(n) for k, n in rows}


def _first_error(errors: str | None) -> str | None:
    if not errors:
        return None
    try:
        decoded = json.loads(errors)
    except ValueError:
        return errors
    if isinstance(decoded, list):
        return str(decoded[0]) if decoded else None
    return str(decoded)


def recent_runs(conn: duckdb.DuckDBPyConnection, limit: int = 10) -> list[RunRow]:
    """The newest ``limit`` rows of ``collection_runs`` (asset × window × run), newest first."""
    rows = conn.execute(
        "SELECT asset, window_start, status, markets_tried, markets_ok, duration_s, "
        "started_at, errors FROM collection_runs "
        "ORDER BY started_at DESC, window_start DESC, asset LIMIT ?",
        [limit],
    ).fetchall()
    return [
        RunRow(
            asset=asset,
            window=key_of(window_start),
            status=status,
            markets_tried=int(tried),
            markets_ok=int(ok),
            duration_s=float(duration),
            started_at=started,
            first_error=_first_error(errors),
        )
        for asset, window_start, status, tried, ok, duration, started, errors in rows
    ]


def database_size(path: Path) -> int:
    """Bytes on disk: the DuckDB file plus its write-ahead log if there is one."""
    wal = path.with_name(path.name + ".wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def warehouse_stats(conn: duckdb.DuckDBPyConnection, path: Path) -> WarehouseStats:
    """Everything ``btc-tracker stats`` shows, read in one pass over the warehouse."""
    snapshots, markets, windows, first, last = conn.execute(
        "SELECT count(*), count(DISTINCT market_id), count(DISTINCT window_start), "
        "min(window_start), max(window_start) FROM market_snapshots"
    ).fetchone() or (0, 0, 0, None, None)
    expected = int((last - first) / WINDOW) + 1 if first is not None else 0
    quality = quality_distribution(conn)
    return WarehouseStats(
        path=str(path),
        size_bytes=database_size(path),
        snapshots=int(snapshots),
        markets=int(markets),
        windows=int(windows),
        first_window=first,
        last_window=last,
        expected_windows=expected,
        gaps=window_gaps(conn),
        thin_windows=thin_windows(conn),
        quality=quality,
        quality_rows=sum(b.rows for b in quality),
        good_quality_share=good_quality_share(quality),
        labels_by_status=_counts(conn, "status", "market_resolutions"),
        label_checks=_counts(conn, "label_check", "market_resolutions"),
        recent_runs=recent_runs(conn),
    )


@dataclass(frozen=True)
class WarehouseSummary:
    """What a command prints after writing: counts per table and the covered windows."""

    windows: int
    first_window: str | None
    last_window: str | None
    markets: int
    tracked_rows: int
    snapshot_rows: int
    spot_klines: int
    spot_windows: int
    runs_by_status: dict[str, int]
    families: dict[str, int]
    labels_by_status: dict[str, int]
    indicator_rows: int
    mean_quality: float | None


def warehouse_summary(conn: duckdb.DuckDBPyConnection) -> WarehouseSummary:
    """Counts per table and the covered window range (what ``collect``, ``backfill`` and
    ``demo`` print when they finish; ``warehouse_stats`` is the fuller picture)."""

    def one(sql: str) -> tuple:
        return conn.execute(sql).fetchone() or ()

    snapshots, _, windows, first, last = one(
        "SELECT count(*), count(DISTINCT market_id), count(DISTINCT window_start), "
        "min(window_start), max(window_start) FROM market_snapshots"
    )
    families = conn.execute(
        "SELECT family, count(DISTINCT market_id) FROM tracked_markets "
        "GROUP BY family ORDER BY family"
    ).fetchall()
    indicator_rows, mean_quality = one("SELECT count(*), avg(quality_score) FROM market_indicators")
    return WarehouseSummary(
        windows=int(windows),
        first_window=f"{first:%Y-%m-%d %H:%M}" if first else None,
        last_window=f"{last:%Y-%m-%d %H:%M}" if last else None,
        markets=int(one("SELECT count(DISTINCT market_id) FROM tracked_markets")[0]),
        tracked_rows=int(one("SELECT count(*) FROM tracked_markets")[0]),
        snapshot_rows=int(snapshots),
        spot_klines=int(one("SELECT count(*) FROM btc_spot_prices")[0]),
        spot_windows=int(one("SELECT count(*) FROM btc_spot_windows")[0]),
        runs_by_status=_counts(conn, "status", "collection_runs"),
        families={str(k): int(v) for k, v in families},
        labels_by_status=_counts(conn, "status", "market_resolutions"),
        indicator_rows=int(indicator_rows),
        mean_quality=float(mean_quality) if mean_quality is not None else None,
    )


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class MarketInfo:
    """What a tracked market pays on (newest ``tracked_markets`` row) and how it settled."""

    market_id: str
    question: str | None
    family: str
    direction: str | None
    strike: float | None
    strike_high: float | None
    expiry: datetime | None
    resolution_status: str | None
    winner_outcome: str | None
    settled_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO strings)."""
        return json.loads(json.dumps(asdict(self), default=_json_default))


def market_info(conn: duckdb.DuckDBPyConnection, market_id: str) -> MarketInfo | None:
    """The market's terms and resolution, or None when it is not in ``tracked_markets``."""
    row = conn.execute(
        "SELECT question, family, direction, strike, strike_high, expiry FROM tracked_markets "
        "WHERE market_id = ? ORDER BY window_start DESC LIMIT 1",
        [market_id],
    ).fetchone()
    if row is None:
        return None
    resolution = conn.execute(
        "SELECT status, winner_outcome, settled_at FROM market_resolutions "
        "WHERE market_id = ? ORDER BY window_start DESC LIMIT 1",
        [market_id],
    ).fetchone() or (None, None, None)
    return MarketInfo(market_id, *row, *resolution)


HISTORY_SQL = """
SELECT s.window_start, s.snapshot_ts, s.quote_ts, s.source,
       s.yes_price, s.no_price, s.best_bid, s.best_ask, s.volume, s.liquidity,
       w.spot_price AS btc_spot, w.change_24h_pct AS btc_24h_change_pct,
       i.structural_probability, i.quality_score
FROM market_snapshots s
LEFT JOIN btc_spot_windows w ON w.window_start = s.window_start
LEFT JOIN market_indicators i ON i.window_start = s.window_start AND i.market_id = s.market_id
WHERE s.market_id = ?
ORDER BY s.window_start
"""


def market_history(
    conn: duckdb.DuckDBPyConnection, market_id: str, tail: int | None = None
) -> pl.DataFrame:
    """One row per window: the market's snapshot beside BTC spot and its structural
    probability (``market_snapshots`` ⋈ ``btc_spot_windows`` ⋈ ``market_indicators``).

    ``tail`` keeps only the newest windows. Example: ``market_history(conn, "3225108200")``.
    """
    frame = conn.execute(HISTORY_SQL, [market_id]).pl()
    return frame.tail(tail) if tail else frame


PATH_SQL = """
WITH minutes AS (
    SELECT * FROM market_paths WHERE market_id = ?
    -- A minute in two windows: the row with a price, then the newest window's.
    QUALIFY row_number() OVER (
        PARTITION BY minute_ts ORDER BY price IS NULL, window_start DESC
    ) = 1
), opened AS (
    SELECT *, max(btc_close) FILTER (WHERE offset_min = 0) OVER () AS open_btc FROM minutes
)
SELECT window_start, minute_ts, offset_min, minutes_left, price, quote_ts, quote_age_s,
       btc_close, open_btc, btc_close - open_btc AS btc_move, source
FROM opened
ORDER BY minute_ts
"""


def market_path(
    conn: duckdb.DuckDBPyConnection, market_id: str, tail: int | None = None
) -> pl.DataFrame:
    """The market's minute path (``market_paths``): one row per ``minute_ts``, oldest first,
    with the YES price as of the minute and the BTC 1-minute close ending at it.

    ``open_btc`` is the BTC close at the market's open (offset 0), the "price to beat" of
    an up/down market (null when that minute is not in the warehouse); ``btc_move`` is
    ``btc_close - open_btc``. A minute kept by two windows appears once. ``tail`` keeps
    the newest minutes (``open_btc`` still comes from the open).
    Example: ``market_path(conn, "1001969232", tail=5)``.
    """
    frame = conn.execute(PATH_SQL, [market_id]).pl()
    return frame.tail(tail) if tail else frame


# --------------------------------------------------------------------------- export


def table_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table of the warehouse's main schema, sorted (what ``export`` accepts)."""
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def time_column(conn: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """The column ``--from``/``--to`` filter on: ``open_time`` for 1-minute klines,
    ``window_start`` where a table has one, else None (e.g. ``markets``)."""
    columns = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ?",
            [table],
        ).fetchall()
    }
    preferred = TIME_COLUMN_OVERRIDES.get(table)
    if preferred in columns:
        return preferred
    return "window_start" if "window_start" in columns else None


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(ts: datetime) -> str:
    return f"TIMESTAMP '{ts:%Y-%m-%d %H:%M:%S}'"


def export_select(
    table: str, column: str | None, start: datetime | None, end: datetime | None
) -> str:
    """``SELECT * FROM table`` restricted to ``start <= column < end`` (either bound optional).

    Example: ``export_select("market_snapshots", "window_start", datetime(2026, 2, 28), None)``
    → ``SELECT * FROM "market_snapshots" WHERE "window_start" >= TIMESTAMP '2026-02-28 00:00:00'``
    """
    sql = f"SELECT * FROM {_quote_ident(table)}"
    conditions = []
    if column is not None and start is not None:
        conditions.append(f"{_quote_ident(column)} >= {_literal(start)}")
    if column is not None and end is not None:
        conditions.append(f"{_quote_ident(column)} < {_literal(end)}")
    return f"{sql} WHERE {' AND '.join(conditions)}" if conditions else sql


_COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json",  # newline-delimited: one object per line
    "parquet": "FORMAT parquet, COMPRESSION zstd",
}


def export_table(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    fmt: str,
    out: Path,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Stream ``table`` (rows with ``start <= time column < end``) to ``out`` with DuckDB's
    ``COPY (SELECT …) TO`` — rows never pass through Python — and return the rows written.

    The file is written beside ``out`` under a temporary name and renamed at the end,
    so an interrupted export never leaves a truncated file at ``out``.
    Raises ValueError for an unknown table or format.

    Example: ``export_table(conn, "market_snapshots", "parquet", Path("snaps.parquet"))``
    """
    if fmt not in _COPY_OPTIONS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(EXPORT_FORMATS)}")
    if table not in table_names(conn):
        raise ValueError(f"unknown table {table!r}")
    select = export_select(table, time_column(conn, table), start, end)
    partial = out.with_name(f".partial-{os.getpid()}-{out.name}")
    target = str(partial).replace("'", "''")
    try:
        row = conn.execute(f"COPY ({select}) TO '{target}' ({_COPY_OPTIONS[fmt]})").fetchone()
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- discovery

FOUND_SCHEMA: dict[str, pl.DataType] = {
    "market_id": pl.String(),
    "question": pl.String(),
    "family": pl.String(),
    "direction": pl.String(),
    "strike": pl.Float64(),
    "strike_high": pl.Float64(),
    "expiry": pl.Datetime("us"),
    "volume": pl.Float64(),
    "liquidity": pl.Float64(),
    "yes_price": pl.Float64(),
    "closed": pl.Boolean(),
    "slug": pl.String(),
}


def _found_row(m: GammaMarket) -> dict[str, Any]:
    terms = parse_market_terms(m)
    price = m.outcome_prices[0] if m.outcome_prices else m.last_trade_price
    return {
        "market_id": m.id,
        "question": m.question,
        "family": terms.family,
        "direction": terms.direction,
        "strike": terms.strike,
        "strike_high": terms.strike_high,
        "expiry": terms.expiry,
        "volume": m.volume,
        "liquidity": m.liquidity,
        "yes_price": price,
        "closed": m.closed,
        "slug": m.slug,
    }


def find_markets(
    gamma: GammaClient,
    *,
    keywords: Sequence[str] = DEFAULT_KEYWORDS,
    families: Sequence[str] = (),
    closed: bool = False,
    min_volume: float | None = None,
    limit: int | None = None,
    on_market: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """BTC markets on Gamma, largest volume first: the keyset listing by the bitcoin tag
    (235) with ``closed``, then keyword, family and volume filters.

    ``on_market(n)`` is called with the running count of listed markets (progress).
    Markets whose objects do not parse are skipped. Example::

        find_markets(gamma, families=["above"], min_volume=50_000, limit=20)
    """
    filters: dict[str, Any] = {"tag_id": BITCOIN_TAG_ID, "closed": closed}
    if min_volume is not None:
        filters["volume_num_min"] = min_volume
    wanted = set(families)
    rows: list[dict[str, Any]] = []
    for seen, m in enumerate(gamma.iter_markets(lambda _raw, _exc: None, **filters), start=1):
        if on_market is not None:
            on_market(seen)
        if not is_btc_market(m, keywords):
            continue
        if min_volume is not None and (m.volume is None or m.volume < min_volume):
            continue
        row = _found_row(m)
        if wanted and row["family"] not in wanted:
            continue
        rows.append(row)
    frame = pl.DataFrame(rows, schema=FOUND_SCHEMA).sort(
        ["volume", "market_id"], descending=[True, False], nulls_last=True
    )
    return frame.head(limit) if limit else frame


def run_config_yaml(market_ids: Sequence[str]) -> str:
    """``run_config`` as YAML to paste into the Launchpad (ids quoted: they are strings).

    Example: ``run_config_yaml(["1", "2"])`` →
    ``ops:\\n  tracked_markets:\\n    config:\\n      market_ids: ["1", "2"]``
    """
    ids = ", ".join(json.dumps(i) for i in market_ids)
    return f"ops:\n  tracked_markets:\n    config:\n      market_ids: [{ids}]"


def collect_command(market_ids: Sequence[str]) -> str:
    """The equivalent ``btc-tracker collect`` invocation for ``market_ids``."""
    return f"btc-tracker collect --market-ids {','.join(market_ids)}"


def window_bounds(
    first: datetime | None, last: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """[start, end) covering the windows ``first`` … ``last`` (window starts, inclusive)."""
    return first, (last + WINDOW if last is not None else None)


__all__ = [
    "EXPORT_FORMATS",
    "Gap",
    "MarketInfo",
    "QualityBucket",
    "RunRow",
    "WarehouseStats",
    "collect_command",
    "export_select",
    "export_table",
    "find_markets",
    "market_history",
    "market_info",
    "market_path",
    "quality_distribution",
    "recent_runs",
    "run_config",
    "run_config_yaml",
    "table_names",
    "time_column",
    "warehouse_stats",
    "window_bounds",
    "window_gaps",
]
