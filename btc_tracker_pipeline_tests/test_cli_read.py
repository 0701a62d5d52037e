"""`btc-tracker markets/stats/history/export` on a warehouse the real pipeline built: sixteen
windows of the replay world (seed 7) through Dagster, then every command's tables and JSON,
exports read back, and the one-line errors (unknown ids and tables, bad keys, no warehouse,
a writer holding the lock)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from btc_tracker_pipeline import cli_read
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_windows

FIRST, LAST = "2026-02-28-20:00", "2026-02-28-23:45"
COMMANDS = {
    "markets": cli_read.markets_command,
    "stats": cli_read.stats_command,
    "history": cli_read.history_command,
    "export": cli_read.export_command,
}
runner = CliRunner()


def make_app() -> typer.Typer:
    """The commands registered the way cli.py registers them."""
    app = typer.Typer(pretty_exceptions_enable=False)
    for name, command in COMMANDS.items():
        app.command(name=name)(command)
    return app


app = make_app()


@dataclass
class Built:
    server: ReplayServer
    warehouse: Path

    def sql(self, query: str, *params: object, path: Path | None = None) -> list[tuple]:
        with duckdb.connect(str(path or self.warehouse), read_only=True) as conn:
            return conn.execute(query, list(params)).fetchall()

    def one(self, query: str, *params: object) -> object:
        return self.sql(query, *params)[0][0]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("read")
    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    with replay_session(world, tmp) as session:
        outcomes = run_windows(partition_keys(FIRST, LAST), instance=session.instance)
        assert all(o.success for o in outcomes)
        yield Built(session.server, session.warehouse)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Rich tables on one line per row. The consoles read COLUMNS once, when the module
    is first imported (maybe by another test), so their width is set as well."""
    monkeypatch.setenv("COLUMNS", "250")
    for console in (cli_read.console, cli_read.err_console):
        monkeypatch.setattr(console, "width", 250)


def invoke(*args: str):
    return runner.invoke(app, list(args))


def as_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def has_row(out: str, *cells: object) -> bool:
    """True when a table line shows ``cells`` in order, separated only by spaces."""
    pattern = r"(^|\s)" + r"\s+".join(re.escape(str(c)) for c in cells) + r"(\s|$)"
    return re.search(pattern, out, flags=re.MULTILINE) is not None


def copy_of(built: Built, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the warehouse, made the one the commands read."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(built.warehouse, path)
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    return path


# --------------------------------------------------------------------------- help


@pytest.mark.unit
@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0
    assert f"Example: btc-tracker {name}" in result.output


@pytest.mark.unit
def test_constants_agree_with_the_pipeline():
    from btc_tracker_pipeline.defs.resources import DEFAULT_GAMMA_URL
    from btc_tracker_pipeline.features.market_terms import FAMILIES

    assert cli_read.FAMILY_NAMES == FAMILIES
    assert cli_read.DEFAULT_GAMMA_URL == DEFAULT_GAMMA_URL


# --------------------------------------------------------------------------- stats


@pytest.mark.integration
def test_stats_json(built):
    data = as_json(invoke("stats", "--json"))
    assert data["snapshots"] == built.one("SELECT count(*) FROM market_snapshots") > 1000
    assert data["markets"] == built.one("SELECT count(DISTINCT market_id) FROM market_snapshots")
    assert (data["windows"], data["expected_windows"], data["gaps"]) == (16, 16, [])
    assert (data["first_window_key"], data["last_window_key"]) == (FIRST, LAST)
    indicator_rows = built.one("SELECT count(*) FROM market_indicators")
    assert sum(b["rows"] for b in data["quality"]) == data["quality_rows"] == indicator_rows
    # History windows have no book, volume or liquidity: 0.4 at most
    # (docs/data.md, "Quality score").
    assert data["good_quality_share"] == 0.0
    assert {b["score"] for b in data["quality"]} <= {0.0, 0.2, 0.4}
    labels = dict(built.sql("SELECT status, count(*) FROM market_resolutions GROUP BY 1"))
    assert data["labels_by_status"] == labels and labels["resolved"] > 0
    assert len(data["recent_runs"]) == 10
    assert {r["status"] for r in data["recent_runs"]} == {"ok"}
    assert data["recent_runs"][0]["window"] == LAST
    assert data["size_bytes"] >= built.warehouse.stat().st_size > 0


@pytest.mark.integration
def test_stats_tables(built):
    result = invoke("stats")
    assert result.exit_code == 0, result.output
    out = result.stdout
    snapshots = built.one("SELECT count(*) FROM market_snapshots")
    assert has_row(out, "snapshots", f"{snapshots:,}")
    assert f"16 ({FIRST} … {LAST} UTC)" in out
    assert "0 in 0 gap(s)" in out
    assert "quality_score distribution" in out and "0.40" in out
    assert "last 10 collection_runs" in out
    # The newest runs are paper_ledger's, the last asset of a tick (one row per window;
    # no position opened: a backfill has no live window).
    tried = built.one(
        "SELECT markets_tried FROM collection_runs WHERE asset = 'paper_ledger' "
        "ORDER BY started_at DESC, window_start DESC LIMIT 1"
    )
    assert tried == 0
    assert has_row(out, "paper_ledger", LAST, "ok", "0/0")


@pytest.mark.integration
def test_stats_lists_gaps_when_windows_are_missing(built, tmp_path, monkeypatch):
    path = copy_of(built, tmp_path, monkeypatch)
    with duckdb.connect(str(path)) as conn:
        conn.execute(
            "DELETE FROM market_snapshots WHERE window_start IN "
            "('2026-02-28 21:00', '2026-02-28 21:15', '2026-02-28 22:30')"
        )
    data = as_json(invoke("stats", "--json"))
    assert data["gaps"] == [
        {"first": "2026-02-28-21:00", "last": "2026-02-28-21:15", "windows": 2},
        {"first": "2026-02-28-22:30", "last": "2026-02-28-22:30", "windows": 1},
    ]
    assert (data["windows"], data["expected_windows"], data["missing_windows"]) == (13, 16, 3)
    result = invoke("stats")
    assert "3 in 2 gap(s)" in result.stdout
    assert has_row(result.stdout, "2026-02-28-21:00", "2026-02-28-21:15", 2)
    assert has_row(result.stdout, "2026-02-28-22:30", "2026-02-28-22:30", 1)


# --------------------------------------------------------------------------- history


def resolved_market(built: Built) -> str:
    """The resolved market with the most snapshots."""
    return str(
        built.one(
            "SELECT r.market_id FROM market_resolutions r JOIN market_snapshots s USING "
            "(market_id) WHERE r.status = 'resolved' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        )
    )


@pytest.mark.integration
def test_history_json_is_the_snapshots_beside_spot_and_structural_probability(built):
    market_id = resolved_market(built)
    data = as_json(invoke("history", market_id, "--json"))
    expected = built.sql(
        "SELECT s.window_start, s.yes_price, w.spot_price, i.structural_probability "
        "FROM market_snapshots s JOIN btc_spot_windows w USING (window_start) "
        "JOIN market_indicators i USING (window_start, market_id) "
        "WHERE market_id = ? ORDER BY 1",
        market_id,
    )
    assert data["windows"] == len(expected) == len(data["rows"]) > 5
    got = [
        (
            datetime.fromisoformat(r["window_start"]),
            r["yes_price"],
            r["btc_spot"],
            r["structural_probability"],
        )
        for r in data["rows"]
    ]
    assert got == expected
    status, winner = built.sql(
        "SELECT status, winner_outcome FROM market_resolutions WHERE market_id = ?", market_id
    )[0]
    assert data["market"]["resolution_status"] == status == "resolved"
    assert data["market"]["winner_outcome"] == winner
    assert data["market"]["family"].startswith("updown")
    tail = as_json(invoke("history", market_id, "--json", "--tail", "2"))
    assert [r["window_start"] for r in tail["rows"]] == [
        r["window_start"] for r in data["rows"][-2:]
    ]


@pytest.mark.integration
def test_history_table(built):
    market_id = resolved_market(built)
    question = built.one("SELECT question FROM tracked_markets WHERE market_id = ?", market_id)
    windows = built.sql(
        "SELECT window_start FROM market_snapshots WHERE market_id = ? ORDER BY 1", market_id
    )
    result = invoke("history", market_id)
    assert result.exit_code == 0, result.output
    assert f"{market_id}: {question}" in result.stdout
    assert "resolved" in result.stdout
    for (window,) in windows:
        assert has_row(result.stdout, f"{window:%Y-%m-%d-%H:%M}", "history")
    assert "struct p" in result.stdout and "BTC" in result.stdout
    assert " bid " not in result.stdout  # history rows have no book: the column is left out


@pytest.mark.integration
def test_history_of_an_unknown_market_is_a_one_line_error(built):
    line = one_line_error(invoke("history", "999"))
    assert line == (
        "error: unknown market id 999: not in tracked_markets (run btc-tracker markets to find ids)"
    )


@pytest.mark.integration
def test_history_plot_without_matplotlib_says_how_to_install_it(built, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    line = one_line_error(
        invoke("history", resolved_market(built), "--plot", str(tmp_path / "p.png"))
    )
    assert "pip install matplotlib" in line
    assert not (tmp_path / "p.png").exists()


@pytest.mark.integration
def test_history_plot_writes_a_png(built, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "market.png"
    result = invoke("history", resolved_market(built), "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.integration
def test_history_plot_into_a_missing_folder_is_refused(built, tmp_path):
    pytest.importorskip("matplotlib")
    line = one_line_error(
        invoke("history", resolved_market(built), "--plot", str(tmp_path / "no/p.png"))
    )
    assert "does not exist" in line


# --------------------------------------------------------------------------- minute path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def path_market(built: Built) -> str:
    """A resolved 15-minute up/down market with all 15 minutes and the BTC price at its open."""
    return str(
        built.one(
            "SELECT p.market_id FROM market_paths p JOIN market_resolutions r USING (market_id) "
            "WHERE p.family = 'updown_15m' AND r.status = 'resolved' GROUP BY 1 "
            "HAVING count(*) = 15 AND count(p.btc_close) = 15 ORDER BY 1 LIMIT 1"
        )
    )


def market_without_path(built: Built) -> str:
    """The market with the most snapshots and no minute path (not up/down)."""
    return str(
        built.one(
            "SELECT market_id FROM market_snapshots WHERE market_id NOT IN "
            "(SELECT market_id FROM market_paths) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        )
    )


def path_rows(built: Built, market_id: str) -> list[tuple]:
    return built.sql(
        "SELECT minute_ts, offset_min, price, quote_age_s, btc_close FROM market_paths "
        "WHERE market_id = ? ORDER BY minute_ts",
        market_id,
    )


def png_text(path: Path) -> dict[str, str]:
    """A PNG's tEXt chunks (keyword → text), after checking its signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    chunks, at = {}, 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"tEXt":
            key, _, text = body.partition(b"\0")
            chunks[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return chunks


@pytest.mark.integration
def test_history_prints_the_minute_path_with_the_btc_move_since_the_open(built):
    market_id = path_market(built)
    rows = path_rows(built, market_id)
    open_btc = rows[0][4]
    assert len(rows) == 15 and rows[0][1] == 0
    result = invoke("history", market_id)
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = [line.strip() for line in out.splitlines()]
    title = f"minute path: 15 minute(s), price to beat {open_btc:,.2f}"
    assert title in lines  # on one line
    assert has_row(out, "window", "source")  # the window table is still printed first
    assert out.index("window(s)") < out.index(title)
    assert has_row(out, "minute UTC", "offset", "YES", "quote age s", "BTC close", "move $")
    for minute, offset, price, age, btc in rows:
        cells = (f"{minute:%H:%M}", offset, f"{price:.3f}", f"{age:.0f}", f"{btc:,.2f}")
        assert has_row(out, *cells, f"{btc - open_btc:+,.2f}"), (cells, out)
    assert has_row(out, f"{rows[0][0]:%H:%M}", 0, f"{rows[0][2]:.3f}", f"{rows[0][3]:.0f}")
    assert has_row(out, f"{rows[0][4]:,.2f}", "+0.00")

    newest = invoke("history", market_id, "--minutes", "3").stdout
    assert f"minute path: 3 minute(s), price to beat {open_btc:,.2f}" in newest
    shown = [r for r in rows if has_row(newest, f"{r[0]:%H:%M}", r[1], f"{r[2]:.3f}")]
    assert shown == rows[-3:]
    one_window = invoke("history", market_id, "--tail", "1").stdout  # --tail: windows only
    assert "1 window(s)" in one_window and "minute path: 15 minute(s)" in one_window
    plain = invoke("history", market_without_path(built)).stdout  # no path: windows only
    assert "window(s)" in plain and "minute path" not in plain


@pytest.mark.integration
def test_history_json_lists_the_minute_path(built):
    market_id = path_market(built)
    rows = path_rows(built, market_id)
    data = as_json(invoke("history", market_id, "--json"))
    assert data["open_btc"] == rows[0][4]
    got = [
        (
            datetime.fromisoformat(r["minute_ts"]),
            r["offset_min"],
            r["price"],
            r["quote_age_s"],
            r["btc_close"],
        )
        for r in data["path"]
    ]
    assert got == rows
    assert [r["btc_move"] for r in data["path"]] == pytest.approx(
        [btc - rows[0][4] for *_, btc in rows]
    )
    assert data["rows"]  # the windows are still there
    newest = as_json(invoke("history", market_id, "--json", "--minutes", "3"))
    assert [r["offset_min"] for r in newest["path"]] == [12, 13, 14]
    assert newest["open_btc"] == rows[0][4] and newest["rows"] == data["rows"]
    plain = as_json(invoke("history", market_without_path(built), "--json"))
    assert plain["path"] == [] and plain["open_btc"] is None and plain["rows"]


@pytest.mark.integration
def test_history_plot_draws_the_minute_path_or_else_the_windows(built, tmp_path):
    pytest.importorskip("matplotlib")
    market_id = path_market(built)
    out = tmp_path / "path.png"
    result = invoke("history", market_id, "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert f"chart written to {out}" in result.stdout
    assert png_text(out)["Title"] == f"minute path of market {market_id}"
    assert out.stat().st_size > 10_000

    plain = tmp_path / "windows.png"
    result = invoke("history", market_without_path(built), "--plot", str(plain))
    assert result.exit_code == 0, result.output
    assert "Title" not in png_text(plain) and plain.stat().st_size > 10_000


@pytest.mark.integration
def test_the_minute_path_chart_shows_the_price_to_beat_open_expiry_and_winner(built):
    pytest.importorskip("matplotlib")
    from btc_tracker_pipeline import queries

    market_id = path_market(built)
    with duckdb.connect(str(built.warehouse), read_only=True) as conn:
        info = queries.market_info(conn, market_id)
        path = queries.market_path(conn, market_id)
    assert info is not None and info.winner_outcome and info.expiry is not None
    fig = cli_read.path_figure(path, info)
    ax, spot = fig.axes
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    opened = path["minute_ts"][0]
    assert labels == [
        "YES price",
        f"open {opened:%H:%M}",
        f"expiry {info.expiry:%H:%M}",
        f"winner: {info.winner_outcome}",
        "BTC 1-minute close",
        f"price to beat {path['open_btc'][0]:,.2f}",
    ]
    assert ax.get_ylim() == (-0.02, 1.02)
    assert f"minute path, resolved {info.winner_outcome}" in ax.get_title()
    beat = [line for line in spot.get_lines() if line.get_label().startswith("price to beat")]
    assert list(beat[0].get_ydata()) == [path["open_btc"][0]] * 2


@pytest.mark.integration
def test_history_plot_needs_snapshots_or_a_minute_path(built, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    path = copy_of(built, tmp_path, monkeypatch)
    market_id = path_market(built)
    with duckdb.connect(str(path)) as conn:  # a path and no snapshot, like a 5-minute market
        conn.execute("DELETE FROM market_snapshots WHERE market_id = ?", [market_id])
    out = tmp_path / "p.png"
    result = invoke("history", market_id, "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert has_row(result.stdout, "0 window(s)") and "minute path: 15 minute(s)" in result.stdout
    assert png_text(out)["Title"] == f"minute path of market {market_id}"
    out.unlink()
    with duckdb.connect(str(path)) as conn:
        conn.execute("DELETE FROM market_paths WHERE market_id = ?", [market_id])
    line = one_line_error(invoke("history", market_id, "--plot", str(out)))
    assert line == f"error: market {market_id} has no snapshots or minute path to plot yet"
    assert not out.exists()


# --------------------------------------------------------------------------- export


def columns_of(built: Built, table: str) -> list[str]:
    return [r[0] for r in built.sql(f"DESCRIBE {table}")]


@pytest.mark.integration
def test_export_names_a_long_path_on_one_line_in_a_narrow_terminal(built, tmp_path, monkeypatch):
    """Paths in messages are never wrapped (a log or a pipe has no terminal: rich uses
    80 columns), so they can be copied whole."""
    monkeypatch.setattr(cli_read.console, "width", 40)
    out = tmp_path / ("a-long-folder-name-" * 5) / "markets.parquet"
    out.parent.mkdir()
    result = invoke("export", "--table", "markets", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    count = built.one("SELECT count(*) FROM markets")
    assert f"{count:,} rows of markets written to {out} (parquet," in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize(
    "table",
    [
        "tracked_markets",
        "markets",
        "market_snapshots",
        "btc_spot_prices",
        "btc_spot_windows",
        "market_resolutions",
        "market_indicators",
        "collection_runs",
    ],
)
def test_export_parquet_round_trips_every_table(built, tmp_path, table):
    out = tmp_path / "t.parquet"
    result = invoke("export", "--table", table, "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    count = built.one(f"SELECT count(*) FROM {table}")
    assert f"{count:,} rows of {table} written to {out}" in result.stdout
    frame = pl.read_parquet(out)
    assert frame.height == count > 0
    assert frame.columns == columns_of(built, table)


@pytest.mark.integration
def test_export_offers_every_table_of_user_data_and_no_internal_one(built, tmp_path):
    tables = {r[0] for r in built.sql("SELECT table_name FROM duckdb_tables()")}
    # A table added by a later migration must be listed as data or as internal.
    assert tables == set(cli_read.EXPORT_TABLES) | set(cli_read.INTERNAL_TABLES)
    help_text = " ".join(invoke("export", "--help").stdout.split())
    for table in cli_read.EXPORT_TABLES:
        assert table in help_text
    for table in cli_read.INTERNAL_TABLES:
        assert table not in help_text
        line = one_line_error(invoke("export", "--table", table, "--out", str(tmp_path / "x.csv")))
        assert line.startswith(f"error: {table} is ") and "not data to export" in line
        assert "market_snapshots" in line and "kline_cache" not in line.split("tables:")[1]
    assert list(tmp_path.iterdir()) == []
    for table in cli_read.EXPORT_TABLES:  # empty or not
        out = tmp_path / f"{table}.parquet"
        data = as_json(invoke("export", "--table", table, "--out", str(out), "--json"))
        frame = pl.read_parquet(out)
        assert data["rows"] == frame.height == built.one(f"SELECT count(*) FROM {table}")
        assert frame.columns == columns_of(built, table)


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_text_formats_with_a_window_range(built, tmp_path, fmt):
    out = tmp_path / f"snaps.{fmt}"
    args = ["--table", "market_snapshots", "--format", fmt, "--out", str(out)]
    data = as_json(
        invoke("export", *args, "--from", "2026-02-28-21:00", "--to", "2026-02-28-21:30", "--json")
    )
    count = built.one(
        "SELECT count(*) FROM market_snapshots "
        "WHERE window_start BETWEEN '2026-02-28 21:00' AND '2026-02-28 21:30'"
    )
    assert data == {"table": "market_snapshots", "format": fmt, "out": str(out), "rows": count}
    frame = pl.read_csv(out, infer_schema=False) if fmt == "csv" else pl.read_ndjson(out)
    assert frame.height == count > 0
    assert frame.columns == columns_of(built, "market_snapshots")
    assert sorted(frame["window_start"].cast(pl.String).str.slice(11, 5).unique()) == [
        "21:00",
        "21:15",
        "21:30",
    ]
    if fmt == "json":  # newline-delimited: one object per line
        assert len(out.read_text().splitlines()) == count


@pytest.mark.integration
def test_export_klines_filter_on_open_time_and_format_from_suffix(built, tmp_path):
    out = tmp_path / "klines.parquet"
    data = as_json(
        invoke(
            "export",
            "--table",
            "btc_spot_prices",
            "--out",
            str(out),
            "--from",
            LAST,
            "--to",
            LAST,
            "--json",
        )
    )
    assert data["format"] == "parquet" and data["rows"] == 15  # the 1-minute klines of 23:45
    times = pl.read_parquet(out)["open_time"]
    assert (times.min(), times.max()) == (
        datetime(2026, 2, 28, 23, 45),
        datetime(2026, 2, 28, 23, 59),
    )


@pytest.mark.integration
def test_export_errors_are_one_line(built, tmp_path):
    out = str(tmp_path / "x.csv")
    line = one_line_error(invoke("export", "--table", "snapshots", "--out", out))
    assert "unknown table 'snapshots'; valid tables:" in line
    assert "market_snapshots" in line and "btc_spot_prices" in line
    line = one_line_error(invoke("export", "--table", "markets", "--out", out, "--from", FIRST))
    assert "has no window column" in line
    line = one_line_error(
        invoke("export", "--table", "market_snapshots", "--out", out, "--from", "2026-02-28")
    )
    assert line.startswith("error: --from: partition key '2026-02-28'")
    line = one_line_error(
        invoke("export", "--table", "market_snapshots", "--out", out, "--from", LAST, "--to", FIRST)
    )
    assert "is after --to" in line
    line = one_line_error(
        invoke("export", "--table", "market_snapshots", "--out", str(tmp_path / "x.xlsx"))
    )
    assert "--format is needed" in line
    line = one_line_error(
        invoke("export", "--table", "markets", "--out", str(tmp_path / "no" / "x.csv"))
    )
    assert "does not exist" in line
    assert list(tmp_path.iterdir()) == []
    usage = invoke("export", "--table", "markets", "--out", out, "--format", "xlsx")
    assert usage.exit_code == 2  # typer's usage error


@pytest.mark.integration
@pytest.mark.parametrize(
    ("fmt", "name", "suffix_format"),
    [("csv", "x.parquet", "parquet"), ("parquet", "x.csv", "csv"), ("json", "x.CSV", "csv")],
)
def test_export_refuses_a_format_that_contradicts_the_file_name(
    built, tmp_path, fmt, name, suffix_format
):
    out = tmp_path / name
    line = one_line_error(
        invoke("export", "--table", "markets", "--format", fmt, "--out", str(out))
    )
    assert line == (
        f"error: --format {fmt} does not match --out '{name}' ({suffix_format}): "
        "drop --format or rename the file"
    )
    assert list(tmp_path.iterdir()) == []


def read_text_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)  # token ids are too long for any integer


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "read"),
    [("m.csv", read_text_csv), ("m.jsonl", pl.read_ndjson), ("m.parquet", pl.read_parquet)],
)
def test_export_infers_the_format_from_the_suffix(built, tmp_path, name, read):
    out = tmp_path / name
    data = as_json(invoke("export", "--table", "markets", "--out", str(out), "--json"))
    assert read(out).height == data["rows"] == built.one("SELECT count(*) FROM markets")
    # --format that agrees with the name, or a name with no known suffix, is fine.
    assert (
        invoke(
            "export", "--table", "markets", "--out", str(out), "--format", data["format"]
        ).exit_code
        == 0
    )
    other = tmp_path / "m.dat"
    assert (
        invoke("export", "--table", "markets", "--out", str(other), "--format", "csv").exit_code
        == 0
    )
    assert read_text_csv(other).height == data["rows"]


# --------------------------------------------------------------------------- opening


@pytest.mark.unit
def test_a_missing_warehouse_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "nothing.duckdb"))
    for args in (
        ["stats"],
        ["history", "1"],
        ["export", "--table", "markets", "--out", str(tmp_path / "m.csv")],
    ):
        line = one_line_error(invoke(*args))
        assert "no warehouse at" in line and "btc-tracker demo" in line
    assert not (tmp_path / "nothing.duckdb").exists()  # reading never creates it


@pytest.mark.unit
def test_a_corrupted_warehouse_is_a_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    line = one_line_error(invoke("stats", "--json"))
    assert f"cannot open {path} as a DuckDB warehouse" in line


HOLD_LOCK = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


def hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse read-write (a running collection)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.integration
def test_a_reader_waits_for_a_brief_writer(built, tmp_path, monkeypatch):
    path = copy_of(built, tmp_path, monkeypatch)
    writer = hold_write_lock(path, 1.0)
    try:
        started = time.monotonic()
        data = as_json(invoke("stats", "--json"))
        waited = time.monotonic() - started
    finally:
        writer.wait(timeout=30)
    assert data["windows"] == 16
    assert waited > 0.3  # it did wait for the lock


@pytest.mark.integration
def test_a_reader_reports_a_writer_that_never_lets_go(built, tmp_path, monkeypatch):
    path = copy_of(built, tmp_path, monkeypatch)
    writer = hold_write_lock(path, 60)
    try:
        line = one_line_error(invoke("history", "1", "--wait", "0.5"))
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert "is locked by another process" in line and "try again when it finishes" in line


@pytest.mark.integration
def test_tables_in_a_pipe_keep_every_value_whole(built, monkeypatch):
    """A log or a pipe is not a terminal: however narrow COLUMNS was when the consoles
    were made, no id, question or number is cut with "…" or wrapped."""
    for console in (cli_read.console, cli_read.err_console):
        monkeypatch.setattr(console, "width", 40)
    market_id = resolved_market(built)
    question = built.one("SELECT question FROM tracked_markets WHERE market_id = ?", market_id)
    history = invoke("history", market_id)
    stats = invoke("stats")
    markets = invoke("markets", "--limit", "5")
    for result in (history, stats, markets):
        assert result.exit_code == 0, result.output
        assert "…" not in result.stdout.replace(f"{FIRST} … {LAST}", "")
    assert f"{market_id}: {question}" in history.stdout
    snapshots = built.one("SELECT count(*) FROM market_snapshots")
    assert has_row(stats.stdout, "snapshots", f"{snapshots:,}")
    assert has_row(stats.stdout, "windows", "covered", f"16 ({FIRST} … {LAST} UTC)")
    for market in as_json(invoke("markets", "--limit", "5", "--json"))["markets"]:
        assert has_row(markets.stdout, market["market_id"], market["question"], market["family"])


# --------------------------------------------------------------------------- markets


@pytest.mark.integration
def test_markets_lists_the_simulated_markets_and_the_run_config(built):
    result = invoke("markets", "--limit", "5")
    assert result.exit_code == 0, result.output
    data = as_json(invoke("markets", "--limit", "5", "--json"))
    ids = data["market_ids"]
    assert len(ids) == 5 and data["gamma_url"] == f"{built.server.url}/gamma"
    volumes = [m["volume"] for m in data["markets"]]
    assert volumes == sorted(volumes, reverse=True)
    for market in data["markets"]:
        assert has_row(result.stdout, market["market_id"], market["question"])
    quoted = ", ".join(f'"{i}"' for i in ids)
    assert f"ops:\n  tracked_markets:\n    config:\n      market_ids: [{quoted}]" in result.stdout
    assert f"btc-tracker collect --market-ids {','.join(ids)}" in result.stdout
    assert data["run_config"] == {"ops": {"tracked_markets": {"config": {"market_ids": ids}}}}
    # The pipeline tracked these very markets in the newest window.
    tracked = {
        r[0]
        for r in built.sql(
            "SELECT market_id FROM tracked_markets WHERE window_start = ?",
            datetime(2026, 2, 28, 23, 45),
        )
    }
    assert set(ids) <= tracked


@pytest.mark.integration
def test_markets_filters(built):
    data = as_json(
        invoke(
            "markets",
            "--family",
            "above",
            "--family",
            "reach",
            "--min-volume",
            "100000",
            "--limit",
            "0",
            "--json",
        )
    )
    assert data["markets"]
    assert {m["family"] for m in data["markets"]} <= {"above", "reach"}
    assert min(m["volume"] for m in data["markets"]) >= 100_000
    closed = as_json(invoke("markets", "--closed", "--limit", "3", "--json"))
    assert len(closed["markets"]) == 3 and all(m["closed"] for m in closed["markets"])
    none = invoke("markets", "--keywords", "ethereum")
    assert none.exit_code == 0 and "no markets matched" in none.stdout
    assert invoke("markets", "--family", "bogus").exit_code == 2


@pytest.mark.unit
def test_markets_when_gamma_is_unreachable(monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_GAMMA_URL", "http://127.0.0.1:9/gamma")
    result = invoke("markets")
    assert result.exit_code == 1
    assert "error: Gamma listing failed" in result.stderr and "Traceback" not in result.output
