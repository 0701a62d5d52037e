"""The commands that read the warehouse, pointed at a file that is not a warehouse of ours
(another program's DuckDB tables, a SQLite database, damaged bytes, a path under a file):
one ``error:`` line naming the file, exit 1, the file untouched."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline import cli, cli_read
from btc_tracker_pipeline.cli import app

pytestmark = pytest.mark.unit

runner = CliRunner()


def theirs(path: Path) -> str:
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE users AS SELECT range AS id FROM range(3)")
        conn.execute("CREATE TABLE orders AS SELECT range AS id FROM range(5)")
    return f"{path} is not a btc-tracker warehouse: it holds 2 tables we did not create"


def sqlite_file(path: Path) -> str:
    with sqlite3.connect(path) as lite:
        lite.execute("CREATE TABLE users (id INTEGER)")
    lite.close()
    return f"{path} is a SQLite database, not a DuckDB warehouse"


def damaged(path: Path) -> str:
    path.write_bytes(os.urandom(100_000))
    return f"cannot open {path} as a DuckDB warehouse: the file is damaged or not a DuckDB"


FILES: dict[str, Callable[[Path], str]] = {
    "their duckdb": theirs,
    "sqlite": sqlite_file,
    "damaged": damaged,
}


def commands(folder: Path) -> list[list[str]]:
    """Every command that reads the warehouse, with the options it needs."""
    return [
        ["stats"],
        ["stats", "--json"],
        ["history", "1"],
        ["export", "--table", "markets", "--out", str(folder / "out" / "m.csv")],
        ["edges", "--json"],
        ["dataset", "--out", str(folder / "out" / "d.parquet")],
    ]


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Errors on one line whatever the terminal: the consoles read COLUMNS once."""
    monkeypatch.setenv("COLUMNS", "250")
    for console in (cli.err_console, cli_read.err_console):
        monkeypatch.setattr(console, "width", 250)


def one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, (args, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("kind", FILES)
def test_every_read_command_refuses_a_file_that_is_not_a_warehouse(tmp_path, monkeypatch, kind):
    path = tmp_path / "given.db"
    expected = FILES[kind](path)
    before = path.read_bytes()
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    (tmp_path / "out").mkdir()

    for args in commands(tmp_path):
        assert expected in one_line_error(args), args

    assert path.read_bytes() == before
    assert list((tmp_path / "out").iterdir()) == []


def test_every_read_command_on_a_warehouse_under_a_file_says_there_is_none(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("not a folder")
    path = tmp_path / "a-file" / "warehouse.duckdb"
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    (tmp_path / "out").mkdir()

    for args in commands(tmp_path):
        assert f"error: no warehouse at {path}: run a collection first" in one_line_error(args)
