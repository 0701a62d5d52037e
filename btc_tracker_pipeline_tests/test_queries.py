"""The read functions behind `btc-tracker stats/history/export/markets`, on small warehouses
built by hand (every edge case exact) and on Gamma discovery against the replay server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest
import yaml

from btc_tracker_pipeline import queries
from btc_tracker_pipeline.features.market_terms import FAMILIES
from btc_tracker_pipeline.warehouse.schema import migrate

T0 = datetime(2026, 2, 28, 0, 0)
Q = timedelta(minutes=15)


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    """An empty in-memory warehouse with the real schema."""
    connection = duckdb.connect()
    migrate(connection)
    yield connection
    connection.close()


def add_snapshot(conn, window: datetime, market_id: str = "1", price: float = 0.5) -> None:
    conn.execute(
        "INSERT INTO market_snapshots (window_start, window_end, market_id, snapshot_ts, "
        "yes_price, source) VALUES (?, ?, ?, ?, ?, 'history')",
        [window, window + Q, market_id, window + Q, price],
    )


def add_tracked(conn, window: datetime, market_id: str, family: str = "above") -> None:
    conn.execute(
        "INSERT INTO tracked_markets (window_start, window_end, market_id, question, family, "
        "strike, expiry, discovered_by) VALUES (?, ?, ?, ?, ?, 80000, ?, 'tag')",
        [window, window + Q, market_id, f"Will BTC be above 80k? ({market_id})", family, T0],
    )


def add_indicator(conn, window: datetime, market_id: str, quality: float | None, p=None) -> None:
    conn.execute(
        "INSERT INTO market_indicators (window_start, window_end, market_id, quality_score, "
        "structural_probability) VALUES (?, ?, ?, ?, ?)",
        [window, window + Q, market_id, quality, p],
    )


def add_run(conn, started: datetime, asset: str, errors: list[str], status: str = "ok") -> None:
    conn.execute(
        "INSERT INTO collection_runs VALUES ('r', NULL, ?, ?, ?, ?, ?, 1.5, 10, 9, 3, 0, ?, ?)",
        [asset, T0, T0 + Q, started, started, status, json.dumps(errors)],
    )


# --------------------------------------------------------------------------- gaps


@pytest.mark.unit
def test_gaps_are_merged_into_ranges_of_missing_windows(conn):
    for i in (0, 1, 4, 8, 9):  # 00:00 00:15 | 00:30 00:45 missing | 01:00 | 01:15-01:45 missing
        add_snapshot(conn, T0 + i * Q)
    add_snapshot(conn, T0 + 9 * Q, market_id="2")  # several markets per window count once
    gaps = queries.window_gaps(conn)
    assert gaps == [
        queries.Gap(T0 + 2 * Q, T0 + 3 * Q, 2),
        queries.Gap(T0 + 5 * Q, T0 + 7 * Q, 3),
    ]
    assert gaps[0].label() == "2026-02-28-00:30 … 2026-02-28-00:45 (2 windows)"
    assert queries.Gap(T0, T0, 1).label() == "2026-02-28-00:00 (1 window)"


@pytest.mark.unit
def test_no_gaps_without_holes_or_without_rows(conn):
    assert queries.window_gaps(conn) == []
    for i in range(4):
        add_snapshot(conn, T0 + i * Q)
    assert queries.window_gaps(conn) == []


# --------------------------------------------------------------------------- stats


@pytest.mark.unit
def test_quality_buckets_and_share_at_least_point_eight(conn):
    for i, q in enumerate([1.0, 0.8, 0.8, 0.4, None, 0.6000000001]):
        add_indicator(conn, T0, str(i), q)
    buckets = queries.quality_distribution(conn)
    assert buckets == [
        queries.QualityBucket(1.0, 1),
        queries.QualityBucket(0.8, 2),
        queries.QualityBucket(0.6, 1),
        queries.QualityBucket(0.4, 1),
        queries.QualityBucket(None, 1),
    ]
    assert queries.good_quality_share(buckets) == pytest.approx(3 / 6)
    assert queries.good_quality_share([]) is None


@pytest.mark.unit
def test_recent_runs_newest_first_with_the_first_error(conn):
    for minute in range(12):
        add_run(conn, T0 + timedelta(minutes=minute), f"asset{minute}", [])
    add_run(
        conn, T0 + timedelta(hours=1), "market_snapshots", ["market 7: HTTP 500", "x"], "partial"
    )
    runs = queries.recent_runs(conn)
    assert len(runs) == 10
    assert runs[0].asset == "market_snapshots" and runs[0].status == "partial"
    assert runs[0].first_error == "market 7: HTTP 500"
    assert (runs[0].markets_tried, runs[0].markets_ok, runs[0].window) == (
        10,
        9,
        "2026-02-28-00:00",
    )
    assert [r.asset for r in runs[1:]] == [f"asset{m}" for m in range(11, 2, -1)]
    assert runs[1].first_error is None


@pytest.mark.unit
def test_stats_of_an_empty_warehouse(conn, tmp_path):
    stats = queries.warehouse_stats(conn, tmp_path / "missing.duckdb")
    assert (stats.snapshots, stats.markets, stats.windows, stats.expected_windows) == (0, 0, 0, 0)
    assert stats.first_window is None and stats.gaps == [] and stats.size_bytes == 0
    assert stats.good_quality_share is None and stats.labels_by_status == {}
    data = stats.to_json()
    assert data["first_window_key"] is None and data["missing_windows"] == 0


@pytest.mark.unit
def test_stats_count_windows_markets_gaps_labels(conn, tmp_path):
    for i in (0, 1, 3):
        add_snapshot(conn, T0 + i * Q, "1")
        add_snapshot(conn, T0 + i * Q, "2")
    conn.execute(
        "INSERT INTO market_resolutions (window_start, window_end, market_id, status, source, "
        "label_check) VALUES (?, ?, '1', 'resolved', 'gamma', 'agrees'), "
        "(?, ?, '2', 'void', 'gamma', NULL)",
        [T0, T0 + Q, T0, T0 + Q],
    )
    db = tmp_path / "w.duckdb"
    db.write_bytes(b"x" * 100)
    stats = queries.warehouse_stats(conn, db)
    assert (stats.snapshots, stats.markets, stats.windows, stats.expected_windows) == (6, 2, 3, 4)
    assert stats.missing_windows == 1 and stats.size_bytes == 100
    assert stats.labels_by_status == {"resolved": 1, "void": 1}
    assert stats.label_checks == {"agrees": 1, "none": 1}
    data = stats.to_json()
    assert data["gaps"] == [{"first": "2026-02-28-00:30", "last": "2026-02-28-00:30", "windows": 1}]
    assert data["first_window"] == "2026-02-28T00:00:00"
    assert data["last_window_key"] == "2026-02-28-00:45"
    json.dumps(data)  # plain JSON all the way down


# --------------------------------------------------------------------------- history


@pytest.mark.unit
def test_history_joins_spot_and_structural_probability_by_window(conn):
    for i in range(3):
        add_tracked(conn, T0 + i * Q, "42")
        add_snapshot(conn, T0 + i * Q, "42", price=0.1 * (i + 1))
        add_snapshot(conn, T0 + i * Q, "43")
    conn.execute(
        "INSERT INTO btc_spot_windows (window_start, window_end, as_of, spot_price, source) "
        "VALUES (?, ?, ?, 80000, 'klines'), (?, ?, ?, 80100, 'klines')",
        [T0, T0 + Q, T0 + Q, T0 + Q, T0 + 2 * Q, T0 + 2 * Q],
    )
    add_indicator(conn, T0, "42", 0.4, p=0.33)
    frame = queries.market_history(conn, "42")
    assert frame["window_start"].to_list() == [T0, T0 + Q, T0 + 2 * Q]
    assert frame["yes_price"].to_list() == pytest.approx([0.1, 0.2, 0.3])
    assert frame["btc_spot"].to_list() == [80000, 80100, None]  # left joins keep every snapshot
    assert frame["structural_probability"].to_list() == [0.33, None, None]
    assert queries.market_history(conn, "42", tail=1)["window_start"].to_list() == [T0 + 2 * Q]


@pytest.mark.unit
def test_market_info_newest_terms_and_resolution(conn):
    assert queries.market_info(conn, "42") is None
    add_tracked(conn, T0, "42")
    info = queries.market_info(conn, "42")
    assert info is not None and info.family == "above" and info.strike == 80000
    assert info.resolution_status is None and info.settled_at is None
    conn.execute(
        "INSERT INTO market_resolutions (window_start, window_end, market_id, status, source, "
        "winner_outcome, settled_at) VALUES (?, ?, '42', 'resolved', 'gamma', 'Yes', ?)",
        [T0, T0 + Q, T0 + timedelta(minutes=3)],
    )
    info = queries.market_info(conn, "42")
    assert info is not None
    assert (info.resolution_status, info.winner_outcome) == ("resolved", "Yes")
    assert info.to_json()["settled_at"] == "2026-02-28T00:03:00"


def add_path(conn, window: datetime, market_id: str, offsets, price=0.5, btc=None) -> None:
    """market_paths rows of a market that opened at T0, at ``offsets`` minutes."""
    for k in offsets:
        minute = T0 + timedelta(minutes=k)
        conn.execute(
            "INSERT INTO market_paths (window_start, window_end, market_id, minute_ts, family, "
            "offset_min, minutes_left, price, quote_ts, quote_age_s, btc_close, source) "
            "VALUES (?, ?, ?, ?, 'updown_15m', ?, ?, ?, ?, 30, ?, 'history')",
            [
                window,
                window + Q,
                market_id,
                minute,
                k,
                15 - k,
                price,
                minute - timedelta(seconds=30),
                80_000 + 10 * k if btc is None else btc,
            ],
        )


@pytest.mark.unit
def test_market_path_one_row_per_minute_with_the_open_btc_price(conn):
    assert queries.market_path(conn, "42").is_empty()
    add_path(conn, T0, "42", range(4), price=0.6)
    add_path(conn, T0, "43", range(2), price=0.1)  # another market
    add_path(conn, T0 - Q, "42", [2], price=None)  # minute 2 again, without a price: not kept
    add_path(conn, T0 - 2 * Q, "42", [3], price=0.7, btc=1.0)  # minute 3 again, older: not kept
    frame = queries.market_path(conn, "42")
    assert frame["offset_min"].to_list() == [0, 1, 2, 3]
    assert frame["minute_ts"].to_list() == [T0 + timedelta(minutes=k) for k in range(4)]
    assert frame["price"].to_list() == [0.6] * 4
    assert frame["btc_close"].to_list() == [80_000, 80_010, 80_020, 80_030]
    assert frame["open_btc"].to_list() == [80_000] * 4
    assert frame["btc_move"].to_list() == [0, 10, 20, 30]
    tail = queries.market_path(conn, "42", tail=2)
    assert tail["offset_min"].to_list() == [2, 3]
    assert tail["open_btc"].to_list() == [80_000] * 2  # still the open's, not the first shown


@pytest.mark.unit
def test_market_path_without_its_open_minute_has_no_open_price(conn):
    add_path(conn, T0, "42", [5, 6])
    frame = queries.market_path(conn, "42")
    assert frame["open_btc"].to_list() == [None, None]
    assert frame["btc_move"].to_list() == [None, None]
    assert frame["btc_close"].to_list() == [80_050, 80_060]


# --------------------------------------------------------------------------- export


@pytest.mark.unit
def test_table_names_and_their_time_columns(conn):
    names = queries.table_names(conn)
    assert {"market_snapshots", "btc_spot_prices", "markets", "collection_runs"} <= set(names)
    assert names == sorted(names)
    assert queries.time_column(conn, "btc_spot_prices") == "open_time"
    assert queries.time_column(conn, "market_indicators") == "window_start"
    assert queries.time_column(conn, "markets") is None


@pytest.mark.unit
def test_export_select_bounds():
    assert queries.export_select("markets", None, T0, T0) == 'SELECT * FROM "markets"'
    sql = queries.export_select("market_snapshots", "window_start", T0, T0 + Q)
    assert sql == (
        'SELECT * FROM "market_snapshots" WHERE "window_start" >= '
        "TIMESTAMP '2026-02-28 00:00:00' AND \"window_start\" < TIMESTAMP '2026-02-28 00:15:00'"
    )
    assert queries.window_bounds(T0, T0 + Q) == (T0, T0 + 2 * Q)
    assert queries.window_bounds(None, None) == (None, None)


@pytest.mark.unit
@pytest.mark.parametrize("fmt", queries.EXPORT_FORMATS)
def test_export_streams_the_window_range(conn, tmp_path, fmt):
    for i in range(6):
        add_snapshot(conn, T0 + i * Q, "1")
        add_snapshot(conn, T0 + i * Q, "2")
    out = tmp_path / f"it's here.{fmt}"  # a quote in the path is escaped
    rows = queries.export_table(conn, "market_snapshots", fmt, out, T0 + Q, T0 + 4 * Q)
    assert rows == 6
    read = {"csv": pl.read_csv, "json": pl.read_ndjson, "parquet": pl.read_parquet}[fmt]
    frame = read(out)
    assert frame.height == 6
    assert frame.columns == [r[0] for r in conn.execute("DESCRIBE market_snapshots").fetchall()]
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no partial file left


@pytest.mark.unit
def test_export_refuses_unknown_tables_and_formats(conn, tmp_path):
    with pytest.raises(ValueError, match="unknown table"):
        queries.export_table(conn, "nope", "csv", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="unknown format"):
        queries.export_table(conn, "markets", "xlsx", tmp_path / "x.xlsx")


class CopyFailsAfterWriting:
    """A connection whose COPY writes its file, then fails (a full disk, Ctrl+C)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    def execute(self, sql: str, *args):
        result = self.conn.execute(sql, *args)
        if sql.startswith("COPY"):
            raise duckdb.IOException("No space left on device")
        return result


@pytest.mark.unit
def test_a_failed_export_leaves_the_old_file_and_no_partial_one(conn, tmp_path):
    add_snapshot(conn, T0)
    out = tmp_path / "x.csv"
    out.write_text("old")
    with pytest.raises(duckdb.IOException):
        queries.export_table(CopyFailsAfterWriting(conn), "market_snapshots", "csv", out)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


@pytest.mark.unit
def test_database_size_counts_the_wal(tmp_path):
    db = tmp_path / "w.duckdb"
    db.write_bytes(b"1" * 10)
    assert queries.database_size(db) == 10
    (tmp_path / "w.duckdb.wal").write_bytes(b"1" * 5)
    assert queries.database_size(db) == 15
    assert queries.database_size(tmp_path / "nothing.duckdb") == 0


# --------------------------------------------------------------------------- discovery


@pytest.mark.unit
def test_run_config_yaml_is_the_run_config():
    ids = ["1344329", "1344330"]
    assert yaml.safe_load(queries.run_config_yaml(ids)) == queries.run_config(ids)
    assert queries.collect_command(ids) == "btc-tracker collect --market-ids 1344329,1344330"


@pytest.fixture(scope="module")
def gamma() -> Iterator:
    from btc_tracker_pipeline.replay import ReplayServer
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld
    from btc_tracker_pipeline.sources.gamma import GammaClient
    from btc_tracker_pipeline.sources.http import JsonHttp, make_client

    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    with ReplayServer(world) as server, JsonHttp(make_client()) as http:
        yield GammaClient(http, f"{server.url}/gamma")


@pytest.mark.integration
def test_find_markets_lists_open_btc_markets_by_volume(gamma):
    seen: list[int] = []
    frame = queries.find_markets(gamma, on_market=seen.append)
    assert frame.height > 100 and seen == list(range(1, len(seen) + 1))
    assert not frame["closed"].any()
    volumes = frame["volume"].to_list()
    assert volumes == sorted(volumes, reverse=True)
    assert set(frame["family"].unique()) <= set(FAMILIES)
    above = frame.filter(pl.col("family") == "above")
    assert above.height > 0 and above["strike"].null_count() == 0
    assert frame["yes_price"].is_between(0, 1).all()


@pytest.mark.integration
def test_find_markets_filters(gamma):
    big = queries.find_markets(gamma, families=["above", "reach"], min_volume=100_000, limit=5)
    assert 0 < big.height <= 5
    assert set(big["family"]) <= {"above", "reach"} and big["volume"].min() >= 100_000
    closed = queries.find_markets(gamma, closed=True, limit=3)
    assert closed.height == 3 and closed["closed"].all()
    assert queries.find_markets(gamma, keywords=["ethereum"]).is_empty()
