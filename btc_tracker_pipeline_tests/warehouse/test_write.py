"""Window writes are atomic and idempotent (docs/reliability.md; docs/dagster.md §2,
pitfalls 1-3)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from btc_tracker_pipeline.warehouse import (
    EmptyWindowError,
    TableWrite,
    WindowKeyError,
    open_warehouse,
    upsert_rows,
    write_window,
)
from btc_tracker_pipeline.warehouse.connect import WarehouseError
from btc_tracker_pipeline.warehouse.schema import (
    GROWING_INDEXES,
    MIGRATIONS,
    SCHEMA_VERSION,
    WINDOW_KEYS,
    migrate,
)

pytestmark = pytest.mark.unit

W0 = datetime(2026, 3, 1, 10, 0)
W1 = W0 + timedelta(minutes=15)
W2 = W1 + timedelta(minutes=15)


def klines(window: datetime, price: float) -> pl.DataFrame:
    times = [window + timedelta(minutes=i) for i in range(15)]
    return pl.DataFrame(
        {
            "window_start": [window] * 15,
            "open_time": times,
            "open": [price] * 15,
            "high": [price + 1] * 15,
            "low": [price - 1] * 15,
            "close": [price] * 15,
            "volume": [1.0] * 15,
        }
    )


def rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return conn.execute(sql).fetchall()


@pytest.fixture
def conn(tmp_path):
    c = open_warehouse(tmp_path / "w.duckdb")
    yield c
    c.close()


def test_rewrite_replaces_only_its_window(conn):
    write_window(conn, [TableWrite("btc_spot_prices", klines(W0, 100.0))], W0, W1)
    write_window(conn, [TableWrite("btc_spot_prices", klines(W1, 200.0))], W1, W2)
    write_window(conn, [TableWrite("btc_spot_prices", klines(W0, 150.0))], W0, W1)
    got = rows(
        conn, "SELECT window_start, count(*), min(close) FROM btc_spot_prices GROUP BY 1 ORDER BY 1"
    )
    assert got == [(W0, 15, 150.0), (W1, 15, 200.0)]


def test_same_window_twice_gives_identical_rows(conn):
    for _ in range(2):
        write_window(conn, [TableWrite("btc_spot_prices", klines(W0, 100.0))], W0, W1)
    assert rows(conn, "SELECT count(*) FROM btc_spot_prices") == [(15,)]


def test_columns_are_matched_by_name_not_position(conn):
    frame = klines(W0, 100.0)
    reordered = frame.select(list(reversed(frame.columns)))
    write_window(conn, [TableWrite("btc_spot_prices", reordered)], W0, W1)
    assert rows(conn, "SELECT min(open), max(high) FROM btc_spot_prices") == [(100.0, 101.0)]


def test_failed_write_leaves_old_rows(conn):
    write_window(conn, [TableWrite("btc_spot_prices", klines(W0, 100.0))], W0, W1)
    bad = klines(W0, 999.0).with_columns(pl.lit("x").alias("no_such_column"))
    with pytest.raises(duckdb.Error):
        write_window(
            conn,
            [
                TableWrite("btc_spot_prices", klines(W0, 555.0)),
                TableWrite("btc_spot_prices", bad),
            ],
            W0,
            W1,
        )
    assert rows(conn, "SELECT count(*), min(close) FROM btc_spot_prices") == [(15, 100.0)]


def test_empty_result_never_wipes_silently(conn):
    write_window(conn, [TableWrite("btc_spot_prices", klines(W0, 100.0))], W0, W1)
    empty = klines(W0, 1.0).clear()
    with pytest.raises(EmptyWindowError, match="left untouched"):
        write_window(conn, [TableWrite("btc_spot_prices", empty)], W0, W1)
    result = write_window(conn, [TableWrite("btc_spot_prices", empty, on_empty="keep")], W0, W1)
    assert result[0].kept_existing
    assert rows(conn, "SELECT count(*) FROM btc_spot_prices") == [(15,)]


def test_upsert_dimension_is_idempotent(conn):
    frame = pl.DataFrame({"market_id": ["1", "2"], "question": ["a", "b"]})
    upsert_rows(conn, "markets", frame, "market_id")
    upsert_rows(conn, "markets", frame.with_columns(pl.lit("c").alias("question")), "market_id")
    assert rows(conn, "SELECT market_id, question FROM markets ORDER BY 1") == [
        ("1", "c"),
        ("2", "c"),
    ]


def test_migrations_recorded_once(tmp_path):
    path = tmp_path / "w.duckdb"
    open_warehouse(path).close()
    c = open_warehouse(path)
    assert rows(c, "SELECT max(version), count(*) FROM schema_migrations") == [
        (SCHEMA_VERSION, len(MIGRATIONS))
    ]
    c.close()


def test_foreign_file_gives_clear_error(tmp_path):
    path = tmp_path / "not-a-db.duckdb"
    path.write_bytes(b"this is not a duckdb file at all" * 100)
    with pytest.raises(WarehouseError, match=r"cannot open .* as a DuckDB warehouse"):
        open_warehouse(path)


def test_read_only_of_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(WarehouseError, match="run a collection first"):
        open_warehouse(tmp_path / "missing.duckdb", read_only=True)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "w.duckdb"
    c = open_warehouse(path)
    c.execute("INSERT INTO schema_migrations (version) VALUES (?)", [SCHEMA_VERSION + 1])
    c.close()
    with pytest.raises(RuntimeError, match="newer than this btc-tracker supports"):
        open_warehouse(path)


def test_rows_repeating_a_key_or_outside_the_window_are_refused_and_nothing_changes(conn):
    write_window(conn, [TableWrite("btc_spot_prices", klines(W0, 100.0))], W0, W1)
    repeated = pl.concat([klines(W0, 150.0), klines(W0, 150.0).head(1)])
    with pytest.raises(WindowKeyError, match=r"2 row\(s\) sharing a key \(.open_time.,\)"):
        write_window(conn, [TableWrite("btc_spot_prices", repeated)], W0, W1)
    with pytest.raises(WindowKeyError, match=r"15 row\(s\) outside window 2026-03-01 10:00"):
        write_window(conn, [TableWrite("btc_spot_prices", klines(W1, 150.0))], W0, W1)
    assert rows(conn, "SELECT count(*), min(close) FROM btc_spot_prices") == [(15, 100.0)]


def test_a_version_4_warehouse_loses_its_key_indexes_and_keeps_rows_and_not_nulls(tmp_path):
    """Migration 5 (schema.WINDOW_KEYS): same rows, no ART index left on the tables that
    grow every window, NOT NULL still enforced on the key columns."""
    path = tmp_path / "v4.duckdb"
    with duckdb.connect(str(path)) as old:
        assert migrate(old, target=4) == 4
        old.register("frame", klines(W0, 100.0))
        old.execute("INSERT INTO btc_spot_prices BY NAME SELECT * FROM frame")
        old.execute(
            "INSERT INTO btc_spot_windows (window_start, window_end, as_of, spot_price, source) "
            "VALUES (?, ?, ?, 1.0, 'x')",
            [W0, W1, W1],
        )
        assert old.execute("SELECT count(*) FROM duckdb_indexes()").fetchone()[0] == 3
    c = open_warehouse(path)
    try:
        assert rows(c, "SELECT max(version) FROM schema_migrations") == [(SCHEMA_VERSION,)]
        assert rows(c, "SELECT count(*), sum(close) FROM btc_spot_prices") == [(15, 1500.0)]
        assert rows(c, "SELECT count(*) FROM btc_spot_windows") == [(1,)]
        keys = rows(
            c,
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'",
        )
        assert not {t for (t,) in keys} & set(WINDOW_KEYS)
        indexes = {name for (name,) in rows(c, "SELECT index_name FROM duckdb_indexes()")}
        assert not indexes & set(GROWING_INDEXES)
        with pytest.raises(duckdb.ConstraintException, match="NOT NULL"):
            c.execute(
                "INSERT INTO btc_spot_windows (window_start, window_end, as_of, spot_price, "
                "source) VALUES (NULL, ?, ?, 1.0, 'x')",
                [W1, W1],
            )
    finally:
        c.close()


def snapshots(window: datetime, prices: dict[str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "window_start": [window] * len(prices),
            "window_end": [window + timedelta(minutes=15)] * len(prices),
            "market_id": list(prices),
            "snapshot_ts": [window + timedelta(minutes=15)] * len(prices),
            "yes_price": list(prices.values()),
            "source": ["history"] * len(prices),
        }
    )


def test_a_write_for_chosen_markets_replaces_only_their_rows(conn):
    write_window(
        conn,
        [TableWrite("market_snapshots", snapshots(W0, {"1": 0.1, "2": 0.2, "3": 0.3}))],
        W0,
        W1,
    )
    chosen = TableWrite("market_snapshots", snapshots(W0, {"2": 0.25}), market_ids=("2",))
    [result] = write_window(conn, [chosen], W0, W1)
    assert (result.rows_deleted, result.rows_written) == (1, 1)
    got = rows(conn, "SELECT market_id, yes_price FROM market_snapshots ORDER BY market_id")
    assert got == [("1", 0.1), ("2", 0.25), ("3", 0.3)]
    # A chosen market new to the window is added; nothing else moves.
    write_window(
        conn,
        [TableWrite("market_snapshots", snapshots(W0, {"4": 0.4}), market_ids=("4",))],
        W0,
        W1,
    )
    assert rows(conn, "SELECT count(*) FROM market_snapshots")[0][0] == 4


def test_a_write_for_chosen_markets_refuses_rows_of_other_markets(conn):
    stray = TableWrite("market_snapshots", snapshots(W0, {"1": 0.1, "9": 0.9}), market_ids=("1",))
    with pytest.raises(WindowKeyError, match=r"1 row\(s\) of markets this write was not asked"):
        write_window(conn, [stray], W0, W1)
    assert rows(conn, "SELECT count(*) FROM market_snapshots")[0][0] == 0
