"""In-process runs over ranges: a day of windows per run, recorded in the instance."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.runner import chunks, partition_keys, run_windows


@pytest.mark.unit
def test_partition_keys_and_day_chunks():
    keys = partition_keys("2026-02-27-00:00", "2026-02-28-23:45")
    assert len(keys) == 192
    assert [(c[0], c[-1], len(c)) for c in chunks(keys)] == [
        ("2026-02-27-00:00", "2026-02-27-23:45", 96),
        ("2026-02-28-00:00", "2026-02-28-23:45", 96),
    ]


@pytest.mark.unit
@pytest.mark.parametrize("key", ["2024-12-31-23:45", "2026-02-28-23:10", "soon"])
def test_keys_outside_the_partitions_are_refused(key):
    with pytest.raises(ValueError, match="is not a partition key"):
        partition_keys(key, key)


@pytest.mark.integration
def test_a_range_runs_as_one_run_per_day_and_shows_in_the_instance(replay_env, tmp_path):
    keys = partition_keys("2026-02-28-22:00", "2026-02-28-23:45")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        outcomes = run_windows(keys, chunk_size=4, instance=instance)
        assert [o.success for o in outcomes] == [True] * 2
        runs = instance.get_runs()
        assert len(runs) == 2
        assert {r.tags["dagster/asset_partition_range_start"] for r in runs} == {
            "2026-02-28-22:00",
            "2026-02-28-23:00",
        }
    with duckdb.connect(replay_env["BTC_TRACKER_WAREHOUSE"], read_only=True) as conn:
        windows = conn.execute(
            "SELECT count(DISTINCT window_start) FROM market_snapshots"
        ).fetchone()[0]
        runs_logged = conn.execute(
            "SELECT count(*) FROM collection_runs WHERE asset = 'market_snapshots'"
        ).fetchone()[0]
    assert windows == 8 and runs_logged == 8


@pytest.mark.integration
def test_demo_collects_windows_and_prints_a_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("BTC_TRACKER_DAGSTER_STORAGE", str(tmp_path / "dagster"))
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "w.duckdb"))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name in ("BTC_TRACKER_GAMMA_URL", "BTC_TRACKER_CLOB_URL", "BTC_TRACKER_BINANCE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["demo", "--days", "0.25"])
    assert result.exit_code == 0, result.output
    assert "market_snapshots rows" in result.output
    assert "0 failed" in result.output
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        windows, sources = conn.execute(
            "SELECT count(DISTINCT window_start), list(DISTINCT source ORDER BY source) "
            "FROM market_snapshots"
        ).fetchone()
    assert windows == 24
    assert "history" in sources


@pytest.mark.integration
def test_a_backfill_for_chosen_markets_keeps_the_other_markets_of_each_window(replay_env, tmp_path):
    """``backfill --market-ids``: a ranged run (several windows) replaces only the chosen
    markets' rows in each window."""
    keys = partition_keys("2026-02-28-23:00", "2026-02-28-23:45")
    path = replay_env["BTC_TRACKER_WAREHOUSE"]
    query = "SELECT window_start, market_id, yes_price FROM market_snapshots ORDER BY 1, 2"
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        assert run_windows(keys, instance=instance)[0].success
        with duckdb.connect(path, read_only=True) as conn:
            before = conn.execute(query).fetchall()
        one = before[len(before) // 2][1]
        config = {"ops": {"tracked_markets": {"config": {"market_ids": [one]}}}}
        [outcome] = run_windows(keys, run_config=config, instance=instance)
        assert outcome.success and outcome.windows == 4
    with duckdb.connect(path, read_only=True) as conn:
        after = conn.execute(query).fetchall()
    assert [r for r in after if r[1] != one] == [r for r in before if r[1] != one]
    assert len(after) == len(before)
