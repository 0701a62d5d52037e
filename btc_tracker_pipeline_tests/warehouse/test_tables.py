"""The table declarations (warehouse.tables) against what the migrations build."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import polars as pl
import pytest

from btc_tracker_pipeline.warehouse.schema import migrate
from btc_tracker_pipeline.warehouse.tables import (
    TABLES,
    Column,
    create_sql,
    duckdb_type,
    polars_schema,
    window_keys,
)

pytestmark = pytest.mark.unit

Described = dict[str, list[tuple[str, str, bool, str | None]]]


def describe(conn: duckdb.DuckDBPyConnection) -> Described:
    """Every table of ``main``: its columns in order as (name, type, nullable, default)."""
    rows = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM duckdb_columns() WHERE NOT internal AND schema_name = 'main' "
        "ORDER BY table_name, column_index"
    ).fetchall()
    out: Described = {}
    for table, *column in rows:
        out.setdefault(table, []).append(tuple(column))  # type: ignore[arg-type]
    return out


def constraints(conn: duckdb.DuckDBPyConnection) -> set[tuple[str, str, tuple[str, ...]]]:
    """Every constraint but NOT NULL (described with the columns): (table, type, columns)."""
    rows = conn.execute(
        "SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() "
        "WHERE schema_name = 'main' AND constraint_type <> 'NOT NULL'"
    ).fetchall()
    return {(table, kind, tuple(columns)) for table, kind, columns in rows}


def declared() -> Described:
    return {
        t.name: [(c.name, c.duckdb_type, not c.not_null, c.default) for c in t.columns]
        for t in TABLES.values()
    }


def declared_keys() -> set[tuple[str, str, tuple[str, ...]]]:
    return {(t.name, "PRIMARY KEY", t.key) for t in TABLES.values() if t.primary_key}


@pytest.fixture(scope="module")
def migrated() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect(":memory:")
    migrate(conn)
    yield conn
    conn.close()


def test_every_migration_applied_to_an_empty_warehouse_gives_exactly_the_declared_tables(
    migrated,
):
    built = describe(migrated)
    assert sorted(built) == sorted(TABLES)
    for name, columns in declared().items():
        assert built[name] == columns, name
    assert constraints(migrated) == declared_keys()
    assert migrated.execute("SELECT count(*) FROM duckdb_indexes()").fetchone() == (0,)


def test_create_sql_builds_the_tables_the_migrations_build(migrated):
    with duckdb.connect(":memory:") as fresh:
        for name in TABLES:
            fresh.execute(create_sql(name))
        assert describe(fresh) == describe(migrated)
        assert constraints(fresh) == constraints(migrated)


def test_a_frame_of_the_polars_schema_inserts_into_its_table_with_the_same_types(migrated):
    for name in TABLES:
        frame = pl.DataFrame(schema=polars_schema(name))
        migrated.register("frame", frame.to_arrow())
        try:
            types = migrated.execute("SELECT * FROM frame LIMIT 0").description
        finally:
            migrated.unregister("frame")
        assert [(column, str(kind)) for column, kind, *_ in types] == [
            (c, t) for c, t, _, _ in declared()[name]
        ], name


def test_window_tables_have_their_window_and_key_columns_not_null():
    for name, key in window_keys().items():
        columns = {c.name: c for c in TABLES[name].columns}
        window = TABLES[name].window
        assert window is not None and columns[window].dtype == pl.Datetime("us"), name
        assert all(columns[k].not_null for k in key), name
    for t in TABLES.values():
        if t.primary_key:
            assert t.key and all(c.not_null for c in t.columns if c.name in t.key), t.name


def test_polars_schema_picks_orders_and_leaves_out_columns():
    assert list(polars_schema("kline_spans")) == ["source", "span_start", "span_end", "fetched_at"]
    assert polars_schema("kline_spans", ["span_end", "source"]) == {
        "span_end": pl.Datetime("us"),
        "source": pl.String(),
    }
    assert list(polars_schema("kline_spans", exclude=["source", "fetched_at"])) == [
        "span_start",
        "span_end",
    ]
    with pytest.raises(KeyError, match="no column 'nope'"):
        polars_schema("kline_spans", ["source", "nope"])
    with pytest.raises(KeyError, match="no warehouse table 'nope'"):
        polars_schema("nope")


def test_duckdb_types_of_polars_dtypes():
    assert duckdb_type(pl.Datetime("us")) == "TIMESTAMP"
    assert duckdb_type(pl.String()) == "VARCHAR"
    assert duckdb_type(pl.Int8()) == "TINYINT"
    assert duckdb_type(pl.Int32) == "INTEGER"
    assert duckdb_type(pl.Int64()) == "BIGINT"
    assert duckdb_type(pl.Float64()) == "DOUBLE"
    assert duckdb_type(pl.Boolean()) == "BOOLEAN"
    for other in (pl.Datetime("us", "UTC"), pl.Datetime("ns"), pl.Date(), pl.List(pl.String)):
        with pytest.raises(TypeError, match="no warehouse column type"):
            duckdb_type(other)
    assert Column("x", pl.String(), sql_type="VARCHAR(8)").definition() == '"x" VARCHAR(8)'
