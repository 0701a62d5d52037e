"""The code location loads, validates with the dagster CLI, and schedules the right window."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from btc_tracker_pipeline.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


def loaded() -> dg.Definitions:
    return defs()


@pytest.mark.unit
def test_collection_assets_grouped_with_descriptions_kinds_owners():
    d = loaded()
    specs = {s.key.to_user_string(): s for s in d.resolve_all_asset_specs()}
    assert {"tracked_markets", "market_snapshots", "btc_spot_prices"} <= set(specs)
    assert specs["tracked_markets"].group_name == "markets"
    assert specs["btc_spot_prices"].group_name == "btc"
    for spec in specs.values():
        assert spec.description, spec.key
        assert "duckdb" in spec.kinds
        assert spec.owners == ["team:btc-tracker"]
        assert d.resolve_assets_def(spec.key).op.pool == "duckdb_write"


@pytest.mark.unit
def test_schedule_is_on_by_default_and_requests_the_window_that_just_ended():
    d = loaded()
    schedule = d.resolve_schedule_def("collect_job_schedule")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 1, 10, 15, tzinfo=UTC),
        repository_def=d.get_repository_def(),
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-03-01-10:00"]


@pytest.mark.unit
def test_backfills_run_a_day_of_windows_per_run():
    d = loaded()
    for key in ("tracked_markets", "market_snapshots", "btc_spot_prices"):
        policy = d.resolve_assets_def(key).backfill_policy
        assert policy is not None and policy.max_partitions_per_run == 96


@pytest.mark.integration
def test_dagster_cli_validates_the_workspace(tmp_path):
    env = os.environ.copy() | {
        "DAGSTER_HOME": str(ROOT),
        "BTC_TRACKER_DAGSTER_STORAGE": str(tmp_path / "dagster"),
    }
    workspace = str(ROOT / "workspace.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", workspace],
        cwd=tmp_path,  # not the root, whose .env would override DAGSTER_HOME
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration
def test_a_successful_training_requests_the_newest_edge_report(tmp_path):
    from btc_tracker_pipeline.defs.model.sensors import edges_after_training
    from btc_tracker_pipeline.defs.resources import WarehouseResource
    from btc_tracker_pipeline.warehouse import warehouse

    d = loaded()
    sensor = d.resolve_sensor_def("edges_after_training")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert d.resolve_job_def("edge_refresh_job").asset_layer.selected_asset_keys == {
        dg.AssetKey("edge_report")
    }
    path = tmp_path / "warehouse.duckdb"
    with warehouse(path) as conn:
        conn.execute(
            "INSERT INTO market_indicators (window_start, window_end, market_id) VALUES "
            "('2026-03-01 09:45', '2026-03-01 10:00', '1'), "
            "('2026-03-01 10:00', '2026-03-01 10:15', '1')"
        )

    @dg.op
    def noop() -> None:
        pass

    @dg.job(name="train_job")
    def finished() -> None:
        noop()

    with dg.instance_for_test() as instance:
        result = finished.execute_in_process(instance=instance)
        success = next(
            e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS
        )
        context = dg.build_run_status_sensor_context(
            sensor_name="edges_after_training",
            dagster_event=success,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"warehouse": WarehouseResource(path=str(path))},
        )
        request = edges_after_training(context)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-03-01-10:00"
    assert request.run_key == f"edges-after-{result.run_id}"


@pytest.mark.integration
def test_the_ui_lists_windows_from_the_configured_first_partition(tmp_path):
    # A fresh process, as every Dagster process reads the setting when the code loads.
    code = (
        "from btc_tracker_pipeline.definitions import defs; import datetime as d; "
        "p = defs().resolve_assets_def('market_snapshots').partitions_def; "
        "k = p.get_partition_keys(current_time=d.datetime(2026, 12, 1)); print(k[0], len(k))"
    )
    env = os.environ | {"BTC_TRACKER_FIRST_PARTITION": "2026-11-30"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.stdout.split() == ["2026-11-30-00:00", "96"], proc.stderr[-2000:]
