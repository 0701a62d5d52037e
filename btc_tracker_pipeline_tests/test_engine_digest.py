"""The window engine writes exactly the rows the per-window loops wrote before it.

A one-day backfill in two runs, then a run for three chosen markets, on a fixed world;
every table's digest (``table_digest``) must equal the one recorded at commit 5bc84b2,
before the engine (edge_report's collection_runs rows, which it did not write
then, are checked on their own). A change that alters what the pipeline writes fails here; if the
change is intended, regenerate the file with ``python -m
btc_tracker_pipeline_tests.table_digest <commit>`` and say why in the commit.
"""

from __future__ import annotations

import duckdb
import pytest

from btc_tracker_pipeline_tests import table_digest as td

pytestmark = pytest.mark.integration


def test_every_table_matches_the_digest_before_the_engine(tmp_path):
    edge_runs: list[tuple] = []
    paths: list[tuple] = []
    ledger: list[tuple] = []

    def inspect(conn: duckdb.DuckDBPyConnection) -> None:
        edge_runs.extend(
            conn.execute(
                "SELECT window_start, count(*), min(status) FROM collection_runs "
                "WHERE asset = 'edge_report' GROUP BY window_start ORDER BY window_start"
            ).fetchall()
        )
        ledger.extend(conn.execute("SELECT count(*) FROM paper_ledger").fetchall())
        paths.extend(
            conn.execute(
                "SELECT family, count(*), count(price) FROM market_paths GROUP BY ALL ORDER BY 1"
            ).fetchall()
        )

    digests = td.digest_after_runs(tmp_path, inspect)
    # New with the engine: edge_report records its runs like every other asset (one row
    # per window per run: the backfill's, plus the chosen-markets run's 8 windows).
    assert len(edge_runs) == 96
    assert sum(n for _, n, _ in edge_runs) == 96 + 8
    assert {status for _, _, status in edge_runs} == {"ok"}
    # New with the paper ledger: no position, a backfill has no live window.
    assert ledger == [(0,)]
    # New with minute paths: every minute of the day for each up/down family, priced.
    assert paths == [("updown_15m", 96 * 15, 96 * 15), ("updown_1h", 96 * 15, 96 * 15)]
    golden = td.load_golden()
    assert sorted(digests) == sorted(golden)
    differing = {t: (digests[t], golden[t]) for t in golden if digests[t] != golden[t]}
    assert not differing, f"tables differ from the pre-engine digest: {differing}"


def test_the_digest_sees_a_changed_value(tmp_path):
    """The digest is not blind: one changed price changes its table's digest."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t (a DOUBLE, b VARCHAR)")
        conn.execute("INSERT INTO t VALUES (0.5, 'x'), (0.25, 'y')")
        before = td.table_digests(conn)
        conn.execute("UPDATE t SET a = 0.2500001 WHERE b = 'y'")
        assert td.table_digests(conn) != before
