"""DuckDB schema and migrations of the warehouse.

Every table that holds 15-minute data has a ``window_start`` column (naive UTC
TIMESTAMP) so a window can be replaced atomically (``warehouse.write``).
Migrations are numbered and applied once, recorded in ``schema_migrations``.

The current schema is declared once, in ``warehouse.tables``; the migrations are the
history that leads to it, and a test checks that applying all of them to an empty
database gives exactly the declared tables. A schema change is a new migration here
and the matching edit of the declaration.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from btc_tracker_pipeline.warehouse.tables import TABLES, window_keys

SCHEMA_VERSION = 12

# The tables written window by window (``warehouse.write_window``) and their keys, from
# the declarations. Since migration 5 the keys are checked when a window is written, not
# by a PRIMARY KEY: DuckDB keeps an ART index per key or index and writes it at every
# checkpoint (each asset's connection close), so a live tick on 30 days of history cost
# 1.4-1.7x one on an empty warehouse (bench/results/backfill_30d.md).
WINDOW_KEYS: dict[str, tuple[str, ...]] = window_keys()
# Secondary indexes on growing tables, dropped by migration 5 for the same reason (a scan
# of one column is milliseconds at these sizes).
GROWING_INDEXES = ("idx_snapshots_market", "idx_resolutions_market", "idx_runs_window")
# The tables migration 5 rebuilt, with their keys: WINDOW_KEYS as it was then, kept
# apart so that a window table declared later never enters that migration.
_V5_WINDOW_KEYS: dict[str, tuple[str, ...]] = {
    "tracked_markets": ("window_start", "market_id"),
    "market_snapshots": ("window_start", "market_id"),
    "market_resolutions": ("window_start", "market_id"),
    "market_indicators": ("window_start", "market_id"),
    "edge_report": ("window_start", "market_id"),
    "btc_spot_prices": ("open_time",),
    "btc_spot_windows": ("window_start",),
}


def _without_growing_indexes(conn: duckdb.DuckDBPyConnection) -> None:
    """Migration 5: rebuild the window tables of then (_V5_WINDOW_KEYS) without their
    PRIMARY KEY (same columns, types, NOT NULLs and defaults; key columns NOT NULL) and
    drop the GROWING_INDEXES. DuckDB cannot drop a constraint in place."""
    for index in GROWING_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table, key in _V5_WINDOW_KEYS.items():
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
        definitions = [
            f'"{name}" {data_type}'
            + ("" if nullable and name not in key else " NOT NULL")
            + (f" DEFAULT {default}" if default is not None else "")
            for name, data_type, nullable, default in columns
        ]
        conn.execute(f"CREATE TABLE {table}__v5 ({', '.join(definitions)})")
        conn.execute(f"INSERT INTO {table}__v5 SELECT * FROM {table}")
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {table}__v5 RENAME TO {table}")


# Each entry: (version, steps): SQL statements, or a function of the connection for what
# SQL alone cannot say. Append new versions; never edit old ones. A new version changes
# the declarations in warehouse.tables to match (warehouse/test_tables.py checks).
MIGRATIONS: list[tuple[int, list[str | Callable[[duckdb.DuckDBPyConnection], None]]]] = [
    (
        1,
        [
            """
            CREATE TABLE IF NOT EXISTS markets (
                market_id VARCHAR PRIMARY KEY,
                slug VARCHAR,
                question VARCHAR,
                description VARCHAR,
                condition_id VARCHAR,
                outcomes VARCHAR,
                yes_token_id VARCHAR,
                no_token_id VARCHAR,
                event_id VARCHAR,
                event_slug VARCHAR,
                event_title VARCHAR,
                series_slug VARCHAR,
                start_date TIMESTAMP,
                end_date TIMESTAMP,
                resolution_source VARCHAR
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS tracked_markets (
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                market_id VARCHAR NOT NULL,
                slug VARCHAR,
                question VARCHAR,
                family VARCHAR NOT NULL,
                direction VARCHAR,
                strike DOUBLE,
                strike_high DOUBLE,
                reference_start TIMESTAMP,
                expiry TIMESTAMP,
                parse_source VARCHAR,
                yes_token_id VARCHAR,
                no_token_id VARCHAR,
                condition_id VARCHAR,
                event_slug VARCHAR,
                series_slug VARCHAR,
                start_date TIMESTAMP,
                active BOOLEAN,
                closed BOOLEAN,
                fees_enabled BOOLEAN,
                fee_rate DOUBLE,
                fee_exponent DOUBLE,
                price_to_beat DOUBLE,
                discovered_by VARCHAR NOT NULL,
                PRIMARY KEY (window_start, market_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS market_snapshots (
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                market_id VARCHAR NOT NULL,
                yes_token_id VARCHAR,
                snapshot_ts TIMESTAMP NOT NULL,
                quote_ts TIMESTAMP,
                yes_price DOUBLE,
                no_price DOUBLE,
                best_bid DOUBLE,
                best_ask DOUBLE,
                spread DOUBLE,
                last_trade_price DOUBLE,
                volume DOUBLE,
                volume_24h DOUBLE,
                liquidity DOUBLE,
                source VARCHAR NOT NULL,
                PRIMARY KEY (window_start, market_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS btc_spot_prices (
                window_start TIMESTAMP NOT NULL,
                open_time TIMESTAMP NOT NULL PRIMARY KEY,
                open DOUBLE NOT NULL,
                high DOUBLE NOT NULL,
                low DOUBLE NOT NULL,
                close DOUBLE NOT NULL,
                volume DOUBLE NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS btc_spot_windows (
                window_start TIMESTAMP NOT NULL PRIMARY KEY,
                window_end TIMESTAMP NOT NULL,
                as_of TIMESTAMP NOT NULL,
                spot_price DOUBLE NOT NULL,
                window_open DOUBLE,
                window_high DOUBLE,
                window_low DOUBLE,
                window_close DOUBLE,
                change_24h_pct DOUBLE,
                high_24h DOUBLE,
                low_24h DOUBLE,
                volume_24h DOUBLE,
                source VARCHAR NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS collection_runs (
                run_id VARCHAR NOT NULL,
                dagster_run_id VARCHAR,
                asset VARCHAR NOT NULL,
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP NOT NULL,
                duration_s DOUBLE NOT NULL,
                markets_tried INTEGER NOT NULL,
                markets_ok INTEGER NOT NULL,
                requests INTEGER NOT NULL,
                retries INTEGER NOT NULL,
                status VARCHAR NOT NULL,
                errors VARCHAR NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_snapshots_market ON market_snapshots (market_id)",
            "CREATE INDEX IF NOT EXISTS idx_runs_window ON collection_runs (window_start)",
        ],
    ),
    (
        2,
        [
            """
            CREATE TABLE IF NOT EXISTS market_resolutions (
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                market_id VARCHAR NOT NULL,
                condition_id VARCHAR,
                family VARCHAR,
                question VARCHAR,
                expiry TIMESTAMP,
                settled_at TIMESTAMP,
                status VARCHAR NOT NULL,
                winner_outcome VARCHAR,
                winning_token_id VARCHAR,
                yes_won BOOLEAN,
                outcome_prices VARCHAR,
                uma_resolution_status VARCHAR,
                source VARCHAR NOT NULL,
                label_check VARCHAR,
                label_check_detail VARCHAR,
                PRIMARY KEY (window_start, market_id)
            )
            """,
            "CREATE INDEX IF NOT EXISTS idx_resolutions_market ON market_resolutions (market_id)",
            """
            CREATE TABLE IF NOT EXISTS market_indicators (
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                market_id VARCHAR NOT NULL,
                family VARCHAR,
                snapshot_ts TIMESTAMP,
                source VARCHAR,
                market_probability DOUBLE,
                volume DOUBLE,
                liquidity DOUBLE,
                btc_spot_price DOUBLE,
                btc_24h_change_pct DOUBLE,
                price_momentum_15m DOUBLE,
                price_momentum_1h DOUBLE,
                volume_spike DOUBLE,
                price_volatility DOUBLE,
                rsi_14 DOUBLE,
                market_edge DOUBLE,
                time_to_expiry_hours DOUBLE,
                strike DOUBLE,
                strike_high DOUBLE,
                reference_price DOUBLE,
                realized_vol DOUBLE,
                log_moneyness DOUBLE,
                barrier_touched BOOLEAN,
                structural_probability DOUBLE,
                q_fields TINYINT,
                q_fresh TINYINT,
                q_spread TINYINT,
                q_two_sided TINYINT,
                q_spot TINYINT,
                quality_score DOUBLE,
                PRIMARY KEY (window_start, market_id)
            )
            """,
        ],
    ),
    (
        3,
        [
            """
            CREATE TABLE IF NOT EXISTS edge_report (
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                market_id VARCHAR NOT NULL,
                model_version VARCHAR,
                in_sample BOOLEAN,
                family VARCHAR,
                question VARCHAR,
                cluster VARCHAR,
                market_prob DOUBLE,
                best_bid DOUBLE,
                best_ask DOUBLE,
                model_prob DOUBLE,
                structural_probability DOUBLE,
                fees_enabled BOOLEAN,
                fee_rate DOUBLE,
                fee_exponent DOUBLE,
                time_to_expiry_hours DOUBLE,
                q_spot TINYINT,
                parse_source VARCHAR,
                barrier_touched BOOLEAN,
                bid DOUBLE,
                ask DOUBLE,
                edge DOUBLE,
                ev DOUBLE,
                fee_yes DOUBLE,
                fee_no DOUBLE,
                net_edge_yes DOUBLE,
                net_edge_no DOUBLE,
                side VARCHAR,
                net_edge DOUBLE,
                recommendation VARCHAR,
                cost DOUBLE,
                kelly DOUBLE,
                stake DOUBLE,
                ev_per_dollar DOUBLE,
                flags VARCHAR,
                PRIMARY KEY (window_start, market_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS model_predictions (
                model_version VARCHAR NOT NULL,
                fold INTEGER,
                market_id VARCHAR NOT NULL,
                event_id VARCHAR,
                family VARCHAR,
                cluster VARCHAR,
                snapshot_ts TIMESTAMP NOT NULL,
                resolved_at TIMESTAMP,
                y TINYINT,
                weight DOUBLE,
                market_prob DOUBLE,
                structural_probability DOUBLE,
                model_prob DOUBLE
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS paper_trades (
                model_version VARCHAR NOT NULL,
                market_id VARCHAR NOT NULL,
                cluster VARCHAR,
                window_start TIMESTAMP,
                side VARCHAR,
                price DOUBLE,
                fee DOUBLE,
                cost DOUBLE,
                shares DOUBLE,
                stake DOUBLE,
                predicted_ev DOUBLE,
                settled_at TIMESTAMP,
                won BOOLEAN,
                pnl DOUBLE,
                roi DOUBLE
            )
            """,
        ],
    ),
    (
        4,
        [
            # Backfill caches (collect/history_cache.py, collect/kline_cache.py): what
            # earlier runs fetched, so a later run of the same backfill does not ask again.
            # A *_spans row says "what the API had from span_start to span_end is here"
            # (for history_quotes: as quotes at the window ends that span decides).
            """
            CREATE TABLE IF NOT EXISTS history_spans (
                yes_token_id VARCHAR NOT NULL,
                span_start TIMESTAMP NOT NULL,
                span_end TIMESTAMP NOT NULL,
                fetched_at TIMESTAMP NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS history_quotes (
                yes_token_id VARCHAR NOT NULL,
                window_end TIMESTAMP NOT NULL,
                quote_t BIGINT NOT NULL,
                price DOUBLE NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS kline_spans (
                span_start TIMESTAMP NOT NULL,
                span_end TIMESTAMP NOT NULL,
                fetched_at TIMESTAMP NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS kline_cache (
                open_time TIMESTAMP NOT NULL,
                open DOUBLE NOT NULL,
                high DOUBLE NOT NULL,
                low DOUBLE NOT NULL,
                close DOUBLE NOT NULL,
                volume DOUBLE NOT NULL
            )
            """,
        ],
    ),
    (5, [_without_growing_indexes]),
    (
        6,
        [
            # The backfill caches keyed by their source (``sources.http.source_key``: the
            # API base URL and the replay world it serves): a run reads only rows of the
            # source it talks to. Rows cached before had no source and are dropped.
            "DROP TABLE history_spans",
            "DROP TABLE history_quotes",
            "DROP TABLE kline_spans",
            "DROP TABLE kline_cache",
            """
            CREATE TABLE history_spans (
                source VARCHAR NOT NULL,
                yes_token_id VARCHAR NOT NULL,
                span_start TIMESTAMP NOT NULL,
                span_end TIMESTAMP NOT NULL,
                fetched_at TIMESTAMP NOT NULL
            )
            """,
            """
            CREATE TABLE history_quotes (
                source VARCHAR NOT NULL,
                yes_token_id VARCHAR NOT NULL,
                window_end TIMESTAMP NOT NULL,
                quote_t BIGINT NOT NULL,
                price DOUBLE NOT NULL
            )
            """,
            """
            CREATE TABLE kline_spans (
                source VARCHAR NOT NULL,
                span_start TIMESTAMP NOT NULL,
                span_end TIMESTAMP NOT NULL,
                fetched_at TIMESTAMP NOT NULL
            )
            """,
            """
            CREATE TABLE kline_cache (
                source VARCHAR NOT NULL,
                open_time TIMESTAMP NOT NULL,
                open DOUBLE NOT NULL,
                high DOUBLE NOT NULL,
                low DOUBLE NOT NULL,
                close DOUBLE NOT NULL,
                volume DOUBLE NOT NULL
            )
            """,
        ],
    ),
    (
        7,
        [
            # Markets the model must not take for the others: neg-risk (negRisk,
            # negRiskMarketID) and settled on a TWAP (cryptoMarketConfig.twapEnabled or a
            # TWAP resolution source). Null on rows written before.
            "ALTER TABLE tracked_markets ADD COLUMN neg_risk BOOLEAN",
            "ALTER TABLE tracked_markets ADD COLUMN neg_risk_market_id VARCHAR",
            "ALTER TABLE tracked_markets ADD COLUMN twap_settled BOOLEAN",
        ],
    ),
    (
        8,
        [
            # Quote age (snapshot_ts − quote_ts, seconds) on snapshots and indicators, and
            # the spread the edge report and paper trades assumed where a row has no book.
            "ALTER TABLE market_snapshots ADD COLUMN quote_age_s DOUBLE",
            "UPDATE market_snapshots SET quote_age_s = "
            "date_diff('microsecond', quote_ts, snapshot_ts) / 1e6",
            "ALTER TABLE market_indicators ADD COLUMN quote_age_s DOUBLE",
            "UPDATE market_indicators i SET quote_age_s = s.quote_age_s FROM market_snapshots s "
            "WHERE s.window_start = i.window_start AND s.market_id = i.market_id",
            "ALTER TABLE edge_report ADD COLUMN spread_estimate DOUBLE",
            "ALTER TABLE edge_report ADD COLUMN spread_used DOUBLE",
            "ALTER TABLE edge_report ADD COLUMN spread_source VARCHAR",
            "ALTER TABLE paper_trades ADD COLUMN spread DOUBLE",
            "ALTER TABLE paper_trades ADD COLUMN spread_source VARCHAR",
        ],
    ),
    (
        9,
        [
            # What a paper fill paid for its size (model.depth), and on simulated worlds
            # the fair value each walk-forward prediction is scored against (the oracle).
            "ALTER TABLE paper_trades ADD COLUMN slippage DOUBLE",
            "ALTER TABLE paper_trades ADD COLUMN book_liquidity DOUBLE",
            "ALTER TABLE paper_trades ADD COLUMN liquidity_source VARCHAR",
            "ALTER TABLE model_predictions ADD COLUMN oracle_prob DOUBLE",
        ],
    ),
    (
        10,
        [
            # Minute paths of up/down markets (collect.paths), and the minutes the
            # prices-history cache holds a quote for every minute of a token.
            """
            CREATE TABLE market_paths (
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                market_id VARCHAR NOT NULL,
                minute_ts TIMESTAMP NOT NULL,
                family VARCHAR,
                yes_token_id VARCHAR,
                offset_min INTEGER NOT NULL,
                minutes_left DOUBLE,
                price DOUBLE,
                quote_ts TIMESTAMP,
                quote_age_s DOUBLE,
                btc_close DOUBLE,
                source VARCHAR NOT NULL
            )
            """,
            "ALTER TABLE history_spans ADD COLUMN minutes_start TIMESTAMP",
            "ALTER TABLE history_spans ADD COLUMN minutes_end TIMESTAMP",
        ],
    ),
    (
        11,
        [
            # The live edges of open up/down markets, minute by minute (model.live_edges).
            """
            CREATE TABLE live_edges (
                computed_at TIMESTAMP NOT NULL,
                minute_ts TIMESTAMP NOT NULL,
                market_id VARCHAR NOT NULL,
                family VARCHAR,
                question VARCHAR,
                expiry TIMESTAMP,
                minutes_left DOUBLE,
                btc_spot DOUBLE,
                open_price DOUBLE,
                market_prob DOUBLE,
                best_bid DOUBLE,
                best_ask DOUBLE,
                spread DOUBLE,
                structural_probability DOUBLE,
                model_prob DOUBLE,
                prob_source VARCHAR,
                model_version VARCHAR,
                side VARCHAR,
                net_edge DOUBLE,
                fee DOUBLE,
                stake DOUBLE,
                recommendation VARCHAR,
                flags VARCHAR,
                error VARCHAR
            )
            """,
        ],
    ),
    (
        12,
        [
            # The forward paper ledger: live recommendations traded once (model.ledger).
            """
            CREATE TABLE paper_ledger (
                position_id VARCHAR NOT NULL,
                market_id VARCHAR NOT NULL,
                window_start TIMESTAMP NOT NULL,
                opened_at TIMESTAMP NOT NULL,
                family VARCHAR,
                question VARCHAR,
                cluster VARCHAR,
                side VARCHAR NOT NULL,
                price_paid DOUBLE NOT NULL,
                fee DOUBLE NOT NULL,
                slippage DOUBLE,
                stake DOUBLE NOT NULL,
                shares DOUBLE NOT NULL,
                bankroll_at_open DOUBLE,
                kelly DOUBLE,
                model_prob DOUBLE,
                market_prob DOUBLE,
                predicted_edge DOUBLE,
                model_version VARCHAR,
                status VARCHAR NOT NULL,
                settled_at TIMESTAMP,
                outcome TINYINT,
                payout DOUBLE,
                pnl DOUBLE,
                realised_edge DOUBLE,
                PRIMARY KEY (position_id)
            )
            """,
        ],
    ),
]


def migrate(conn: duckdb.DuckDBPyConnection, target: int = SCHEMA_VERSION) -> int:
    """Apply every migration newer than the database's version, up to ``target`` (an
    older version: to build the warehouse an earlier btc-tracker wrote); return the
    version.

    Raises RuntimeError if the file was written by a newer btc-tracker.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"warehouse schema version {current} is newer than this btc-tracker supports "
            f"({SCHEMA_VERSION}); upgrade btc-tracker or point BTC_TRACKER_WAREHOUSE elsewhere"
        )
    for version, statements in MIGRATIONS:
        if version <= current or version > target:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            for step in statements:
                if callable(step):
                    step(conn)
                else:
                    conn.execute(step)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", [version])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current


# --------------------------------------------------------------------------- our tables

VERSION_TABLE = "schema_migrations"


def table_names() -> frozenset[str]:
    """The tables btc-tracker creates: the declared ones, which every migration applied
    to an empty database gives (btc_tracker_pipeline_tests/warehouse/test_tables.py)."""
    return frozenset(TABLES)
