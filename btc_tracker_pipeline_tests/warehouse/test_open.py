"""open_warehouse on files that are not a warehouse of ours: a user's own DuckDB file, a
SQLite database, damaged bytes, a new warehouse where nothing can be written. Each is one
line naming the file, on read and on write, and the file is left as it was."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from btc_tracker_pipeline.warehouse import WarehouseError, open_warehouse
from btc_tracker_pipeline.warehouse.schema import SCHEMA_VERSION, migrate, table_names
from btc_tracker_pipeline_tests.tmpfs import mounted_tmpfs

MODES = pytest.mark.parametrize("read_only", [False, True], ids=["write", "read"])


def refusal(path: Path, read_only: bool) -> str:
    """The one-line WarehouseError opening ``path`` raises."""
    with pytest.raises(WarehouseError) as caught:
        open_warehouse(path, read_only=read_only, wait_s=0)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def tables(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return sorted(
            r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        )


def users_and_orders(path: Path) -> Path:
    """A user's own DuckDB file: two tables with rows, no btc-tracker schema version."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE users AS SELECT range AS id FROM range(3)")
        conn.execute("CREATE TABLE orders AS SELECT range AS id, 'x' AS item FROM range(5)")
    return path


# --------------------------------------------------------------------------- not ours


@pytest.mark.unit
@MODES
def test_a_duckdb_file_of_someone_else_is_refused_and_left_as_it_was(tmp_path, read_only):
    path = users_and_orders(tmp_path / "theirs.duckdb")
    before = path.read_bytes()

    message = refusal(path, read_only)

    assert message == (
        f"{path} is not a btc-tracker warehouse: it holds 2 tables we did not create "
        "(orders, users) and no schema version; point BTC_TRACKER_WAREHOUSE at another file"
    )
    assert path.read_bytes() == before
    assert tables(path) == ["orders", "users"]


@pytest.mark.unit
def test_a_long_list_of_their_tables_is_cut_short(tmp_path):
    path = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(path)) as conn:
        for i in range(9):
            conn.execute(f"CREATE TABLE t{i} (x INTEGER)")
        conn.execute("CREATE SCHEMA sales")
        conn.execute("CREATE VIEW sales.summary AS SELECT 1 AS x")

    message = refusal(path, read_only=False)

    assert "holds 10 tables we did not create (sales.summary, t0, t1, t2, t3, …)" in message
    assert tables(path) == [f"t{i}" for i in range(9)]


@pytest.mark.unit
def test_a_rails_style_schema_migrations_table_is_not_our_version(tmp_path):
    path = tmp_path / "rails.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE schema_migrations (version VARCHAR PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('20240101000000')")
        conn.execute("CREATE TABLE users (id INTEGER)")
    before = path.read_bytes()

    assert "holds 1 table we did not create (users) and no schema version" in refusal(path, False)
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- ours


@pytest.mark.unit
def test_an_empty_duckdb_file_becomes_a_warehouse(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    conn = open_warehouse(path)
    try:
        version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    finally:
        conn.close()
    assert version == SCHEMA_VERSION
    assert set(tables(path)) == table_names()


@pytest.mark.unit
def test_a_warehouse_with_a_table_the_user_added_still_opens(tmp_path):
    path = tmp_path / "w.duckdb"
    open_warehouse(path).close()
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE my_notes (note VARCHAR)")
    for read_only in (False, True):
        open_warehouse(path, read_only=read_only).close()
    assert "my_notes" in tables(path)


@pytest.mark.unit
def test_a_file_holding_only_our_tables_is_migrated(tmp_path):
    """Every table is one we create (a copy without its version table): ours."""
    path = tmp_path / "copy.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE markets (market_id VARCHAR PRIMARY KEY, slug VARCHAR)")
    open_warehouse(path).close()
    assert set(tables(path)) == table_names()


@pytest.mark.unit
def test_a_warehouse_of_a_newer_btc_tracker_is_still_refused(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as conn:
        migrate(conn)
        conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(RuntimeError, match="newer than this btc-tracker supports"):
        open_warehouse(path)


@pytest.mark.unit
def test_our_table_names_are_every_table_the_migrations_create():
    names = table_names()
    assert {"schema_migrations", "markets", "market_snapshots", "edge_report"} <= names
    assert not any(name.endswith("__v5") for name in names)  # migration 5's scratch tables


# --------------------------------------------------------------------------- SQLite


@pytest.mark.unit
@MODES
def test_a_sqlite_file_is_refused_at_once_without_fetching_an_extension(tmp_path, read_only):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as lite:
        lite.execute("CREATE TABLE users (id INTEGER)")
    lite.close()
    before = path.read_bytes()

    started = time.monotonic()
    message = refusal(path, read_only)

    assert time.monotonic() - started < 3
    assert message == (
        f"{path} is a SQLite database, not a DuckDB warehouse; "
        "point BTC_TRACKER_WAREHOUSE at another file"
    )
    assert path.read_bytes() == before


@pytest.mark.unit
@MODES
def test_connections_never_install_or_load_extensions_on_their_own(tmp_path, read_only):
    """DuckDB fetches a known extension from the internet when a file or query needs one
    (sqlite_scanner for a SQLite file); the warehouse never needs one."""
    path = tmp_path / "w.duckdb"
    open_warehouse(path).close()
    conn = open_warehouse(path, read_only=read_only)
    try:
        settings = conn.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchone()
    finally:
        conn.close()
    assert settings == (False, False)


# --------------------------------------------------------------------------- damaged


def truncated_warehouse(path: Path) -> bytes:
    open_warehouse(path).close()
    return path.read_bytes()[:5000]


DAMAGE = {
    "random bytes": lambda path: os.urandom(300_000),
    "text": lambda path: b"market_id,price\n1,0.5\n" * 50,
    "truncated": truncated_warehouse,
    "empty file": lambda path: b"",
}


@pytest.mark.unit
@MODES
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_file_is_one_line_naming_it(tmp_path, damage, read_only):
    path = tmp_path / "w.duckdb"
    path.write_bytes(DAMAGE[damage](path))
    before = path.read_bytes()

    message = refusal(path, read_only)

    assert message.startswith(
        f"cannot open {path} as a DuckDB warehouse: the file is damaged or not a DuckDB database"
    ), message
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- no folder


@pytest.mark.unit
@pytest.mark.parametrize("under", ["a-file", "a-file/sub"])
def test_a_new_warehouse_under_a_file_is_one_line(tmp_path, under):
    (tmp_path / "a-file").write_text("not a folder")
    path = tmp_path / under / "warehouse.duckdb"

    message = refusal(path, read_only=False)

    assert message == (
        f"cannot create the warehouse {path}: a file is in the way of its folder {path.parent}; "
        "set BTC_TRACKER_WAREHOUSE to a file in a writable folder"
    )
    assert (tmp_path / "a-file").read_text() == "not a folder"


@pytest.fixture
def read_only_disk(tmp_path) -> Iterator[Path]:
    """A tmpfs mounted read-only in tmp_path (root with mount rights; skipped elsewhere)."""
    with mounted_tmpfs(tmp_path / "ro", "size=1m,ro") as mount_point:
        yield mount_point


@pytest.mark.integration
@pytest.mark.parametrize("name", ["warehouse.duckdb", "data/warehouse.duckdb"])
def test_a_new_warehouse_in_a_read_only_folder_is_one_line(read_only_disk, name):
    path = read_only_disk / name

    message = refusal(path, read_only=False)

    assert message == (
        f"cannot create the warehouse {path}: the folder is on a read-only file system; "
        "set BTC_TRACKER_WAREHOUSE to a file in a writable folder"
    )
    assert "earlier data" not in message  # there is none
    assert list(read_only_disk.iterdir()) == []
    assert "no warehouse at" in refusal(path, read_only=True)
