"""A run for chosen markets (``--market-ids``) adds or replaces only those markets' rows:
the window's other markets keep theirs, in every table of collect_job."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.defs.resources import ModelStoreResource
from btc_tracker_pipeline.defs.schedules import COLLECT_ASSETS
from btc_tracker_pipeline.queries import warehouse_stats
from btc_tracker_pipeline.warehouse.coverage import thin_windows

pytestmark = pytest.mark.integration

KEY = "2026-02-28-23:30"
PER_MARKET = ("tracked_markets", "market_snapshots", "market_indicators", "edge_report")


def by_market(path: str) -> dict[str, dict[str, tuple]]:
    """Every per-market table of the warehouse, as {table: {market_id: row}}."""
    with duckdb.connect(path, read_only=True) as conn:
        out = {}
        for table in PER_MARKET:
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY window_start, market_id")
            names = [d[0] for d in cursor.description]
            at = names.index("market_id")
            out[table] = {row[at]: row for row in cursor.fetchall()}
        return out


@pytest.fixture
def collect_resources(resources, tmp_path) -> dict:
    return resources | {"model_store": ModelStoreResource(models_dir=str(tmp_path / "models"))}


def chosen(ids: list[str]) -> dict:
    return {"ops": {"tracked_markets": {"config": {"market_ids": ids}}}}


def test_a_run_for_one_market_leaves_the_other_markets_rows_untouched(collect_resources):
    path = collect_resources["warehouse"].path
    assert dg.materialize(COLLECT_ASSETS, partition_key=KEY, resources=collect_resources).success
    before = by_market(path)
    assert len(before["tracked_markets"]) > 100
    one = sorted(before["market_snapshots"])[len(before["market_snapshots"]) // 2]

    result = dg.materialize(
        COLLECT_ASSETS, partition_key=KEY, resources=collect_resources, run_config=chosen([one])
    )

    assert result.success
    after = by_market(path)
    for table in PER_MARKET:
        assert after[table].keys() == before[table].keys(), f"{table} lost or gained markets"
        others = {m: r for m, r in before[table].items() if m != one}
        assert {m: after[table][m] for m in others} == others, f"{table}: other markets moved"
        assert one in after[table]
    # The run says what it did, in each asset's metadata.
    scopes = {
        e.asset_key.path[-1]: e.materialization.metadata["scope"].value
        for e in result.get_asset_materialization_events()
        if "scope" in e.materialization.metadata
    }
    assert set(PER_MARKET) <= scopes.keys()
    assert all(f"1 chosen market(s) ({one})" in text for text in scopes.values())


def test_a_run_for_chosen_markets_on_a_new_window_writes_just_them(collect_resources):
    path = collect_resources["warehouse"].path
    assert dg.materialize(COLLECT_ASSETS, partition_key=KEY, resources=collect_resources).success
    ids = sorted(by_market(path)["market_snapshots"])[:2]
    earlier = "2026-02-28-23:15"
    assert dg.materialize(
        COLLECT_ASSETS, partition_key=earlier, resources=collect_resources, run_config=chosen(ids)
    ).success
    with duckdb.connect(path, read_only=True) as conn:
        got = conn.execute(
            "SELECT DISTINCT market_id FROM market_snapshots WHERE window_start = "
            "strptime(?, '%Y-%m-%d-%H:%M') ORDER BY 1",
            [earlier],
        ).fetchall()
    assert [r[0] for r in got] == ids


def test_a_window_holding_only_chosen_markets_is_reported_thin(collect_resources):
    """tracked_markets' coverage check and ``stats`` catch a window that holds far fewer
    markets than were open in it (here: a window first collected for two markets)."""
    path = collect_resources["warehouse"].path
    assert dg.materialize(COLLECT_ASSETS, partition_key=KEY, resources=collect_resources).success
    ids = sorted(by_market(path)["market_snapshots"])[:2]
    earlier = "2026-02-28-23:15"
    result = dg.materialize(
        COLLECT_ASSETS, partition_key=earlier, resources=collect_resources, run_config=chosen(ids)
    )
    [check] = [
        c for c in result.get_asset_check_evaluations() if c.check_name == "tracked_coverage"
    ]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert "2026-02-28 23:15 UTC: 2 of " in (check.description or "")

    with duckdb.connect(path, read_only=True) as conn:
        stats = warehouse_stats(conn, Path(path)).to_json()
    [thin] = stats["thin_windows"]
    assert (thin["window"], thin["tracked"], thin["quoted"]) == (earlier, 2, 2)
    assert thin["open"] > 100


def test_a_window_that_lost_markets_is_reported_thin(collect_resources):
    """A window damaged outside the pipeline (or by an older btc-tracker, whose runs for
    chosen markets replaced the whole window) shows in ``stats`` as thin, not as fine."""
    path = collect_resources["warehouse"].path
    assert dg.materialize(COLLECT_ASSETS, partition_key=KEY, resources=collect_resources).success
    with duckdb.connect(path) as conn:
        assert thin_windows(conn) == []
        conn.execute(
            "DELETE FROM market_snapshots WHERE market_id <> (SELECT min(market_id) "
            "FROM market_snapshots)"
        )
        [quotes_lost] = thin_windows(conn)
        assert quotes_lost.quoted == 1 and quotes_lost.tracked > 100
        conn.execute(
            "DELETE FROM tracked_markets WHERE market_id <> (SELECT min(market_id) "
            "FROM tracked_markets)"
        )
        [shrunk] = thin_windows(conn)
    assert (shrunk.tracked, shrunk.quoted) == (1, 1) and shrunk.expected > 100
