"""A digest of every warehouse table, for proving two versions of the pipeline write the
same rows (``test_engine_digest``).

Columns that record when or by which run something happened (run ids, wall-clock
timestamps, durations) are left out; floats are compared to 10 significant digits, so a
digest does not depend on the last bits of a sum's order or of a platform's libm.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

# The world and the runs the digest is taken after (test_engine_digest and the script
# below share them, so the golden file and the test cannot drift apart).
WORLD = {"seed": 7, "days": 3, "now": datetime(2026, 3, 1)}
BACKFILL = ("2026-02-28-00:00", "2026-02-28-23:45")
CHUNK_SIZE = 48
CHOSEN_RUN = ("2026-02-28-10:00", "2026-02-28-11:45")
CHOSEN_COUNT = 3
GOLDEN = Path(__file__).parent / "data" / "engine_digest.json"

VOLATILE = frozenset(
    {
        "run_id",
        "dagster_run_id",
        "started_at",
        "finished_at",
        "duration_s",
        "fetched_at",
        "applied_at",
    }
)
# Rows the pipeline did not write before the window engine: edge_report's collection_runs
# rows (it wrote none; test_engine_digest checks the new ones on their own), and since
# minute paths (migration 10) market_paths' runs and the history cache's quotes at minutes
# other than quarter hours; since the paper ledger (migration 12) its runs.
NEW_ROWS = {
    "collection_runs": "asset IN ('edge_report', 'market_paths', 'paper_ledger')",
    "history_quotes": "minute(window_end) % 15 <> 0",
    "schema_migrations": "version >= 10",
}
# Tables and columns added since the golden was recorded (test_engine_digest checks them;
# live_edges, migration 11, is written only by live_edge_job, never by collect_job;
# paper_ledger, migration 12, holds no row after a backfill: no window is live).
NEW_TABLES = frozenset({"market_paths", "live_edges", "paper_ledger"})
NEW_COLUMNS = {"history_spans": frozenset({"minutes_start", "minutes_end"})}
# The backfill caches name their source by the replay server's URL, whose port is random.
CACHES = frozenset({"history_quotes", "history_spans", "kline_cache", "kline_spans"})


def table_digests(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, object]]:
    """Per table: its row count and a SHA-256 of its rows (volatile columns left out),
    ordered by every column."""
    out: dict[str, dict[str, object]] = {}
    tables = [
        t
        for (t,) in conn.execute(
            "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
        ).fetchall()
    ]
    for table in tables:
        if table in NEW_TABLES:
            continue
        columns = conn.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
            "ORDER BY column_index",
            [table],
        ).fetchall()
        kept = [
            f"printf('%.10g', \"{name}\")" if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
            for name, kind in columns
            if name not in VOLATILE
            and not (table in CACHES and name == "source")
            and name not in NEW_COLUMNS.get(table, ())
        ]
        where = f" WHERE NOT ({NEW_ROWS[table]})" if table in NEW_ROWS else ""
        rows = conn.execute(f"SELECT {', '.join(kept)} FROM {table}{where} ORDER BY ALL").fetchall()
        sha = hashlib.sha256()
        for row in rows:
            sha.update(repr(row).encode())
        out[table] = {"rows": len(rows), "sha256": sha.hexdigest()}
    return out


def load_golden() -> dict[str, dict[str, object]]:
    """The digests recorded before the window engine (see GOLDEN's ``made_at``)."""
    return json.loads(GOLDEN.read_text())["tables"]


def digest_after_runs(
    folder: Path, inspect: Callable[[duckdb.DuckDBPyConnection], None] | None = None
) -> dict[str, dict[str, object]]:
    """Backfill ``BACKFILL`` in runs of ``CHUNK_SIZE`` windows on ``WORLD``, rerun
    ``CHOSEN_RUN`` for the first ``CHOSEN_COUNT`` markets of its first window, and return
    the digests of the resulting warehouse (``inspect`` sees it first)."""
    from btc_tracker_pipeline.replay.session import replay_session
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld
    from btc_tracker_pipeline.runner import partition_keys, run_windows

    with replay_session(SimulatedWorld(**WORLD), folder) as session:
        outcomes = run_windows(
            partition_keys(*BACKFILL), instance=session.instance, chunk_size=CHUNK_SIZE
        )
        assert all(o.success for o in outcomes), outcomes
        first = datetime.strptime(CHOSEN_RUN[0], "%Y-%m-%d-%H:%M")
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            ids = [
                market_id
                for (market_id,) in conn.execute(
                    "SELECT DISTINCT market_id FROM tracked_markets WHERE window_start = ? "
                    "ORDER BY market_id LIMIT ?",
                    [first, CHOSEN_COUNT],
                ).fetchall()
            ]
        chosen = {"ops": {"tracked_markets": {"config": {"market_ids": ids}}}}
        outcomes = run_windows(
            partition_keys(*CHOSEN_RUN), instance=session.instance, run_config=chosen
        )
        assert all(o.success for o in outcomes), outcomes
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            if inspect is not None:
                inspect(conn)
            return table_digests(conn)


if __name__ == "__main__":  # python -m btc_tracker_pipeline_tests.table_digest <commit>
    made_at = sys.argv[1] if len(sys.argv) > 1 else "unknown"
    digests = digest_after_runs(Path(tempfile.mkdtemp(prefix="btc-digest-")))
    GOLDEN.write_text(json.dumps({"made_at": made_at, "tables": digests}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
