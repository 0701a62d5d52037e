"""The Dagster UI end to end, as a person runs it: ``dagster dev`` (webserver + daemon)
on a temporary instance (the repository's dagster.yaml) with a replay world behind the
APIs; a partition backfill launched through GraphQL; the schedule's tick fired by the
daemon; a headless Chromium screenshot of the asset graph.

One ``dagster dev`` serves the whole module (~2-3 minutes on 2 cores). The screenshot
goes to ``$BTC_TRACKER_ARTIFACTS`` (default ``artifacts/``, gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.defs.schedules import COLLECT_ASSET_NAMES
from btc_tracker_pipeline.environment import replay_variables
from btc_tracker_pipeline.partitions import WINDOW, floor_to_window, key_of, window_of
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.warehouse import warehouse
from btc_tracker_pipeline_tests.e2e.helpers import (
    FINISHED_RUN,
    LOCATION,
    REPOSITORY,
    ROOT,
    DagsterGraphQL,
    artifacts_dir,
    free_port,
    seed_first_tick,
    start_process_group,
    stop_process_group,
    tail,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SCHEDULE = "collect_job_schedule"
PARTITION_SET = "collect_job_partition_set"
COLLECT_ASSETS = COLLECT_ASSET_NAMES
BACKFILL_WINDOWS = 3
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class UiSession:
    """A running ``dagster dev`` over a temporary instance and a replay world."""

    url: str
    gql: DagsterGraphQL
    log: Path
    warehouse: Path
    expected_tick: datetime  # naive UTC: the schedule tick the daemon fires during the test
    backfill_id: str
    backfill_keys: list[str]


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""


def launch_backfill(gql: DagsterGraphQL, keys: list[str]) -> str:
    """A backfill of collect_job over ``keys``, as the UI's "Launch backfill" makes it."""
    params = {
        "selector": {
            "partitionSetName": PARTITION_SET,
            "repositorySelector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
            },
        },
        "partitionNames": keys,
        "title": "e2e backfill",
    }
    result = gql.query(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[UiSession]:
    folder = tmp_path_factory.mktemp("ui")
    # The world follows the wall clock, like the daemon: the tick's window is live.
    world = SimulatedWorld(seed=7, days=1)
    with ReplayServer(world) as server:
        home = folder / "home"
        (home / ".nux").mkdir(parents=True)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        # Dismisses the UI's first-visit "Join the Dagster community" dialog.
        (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
        env = {
            "DAGSTER_HOME": str(home),
            "BTC_TRACKER_DAGSTER_STORAGE": str(folder / "dagster"),
            "BTC_TRACKER_WAREHOUSE": str(folder / "warehouse.duckdb"),
            "BTC_TRACKER_MODELS": str(folder / "models"),
            **replay_variables(server.url),
        }
        last_tick = floor_to_window(datetime.now(UTC).replace(tzinfo=None))
        expected_tick = seed_first_tick(env)

        port = free_port()
        log = folder / "dagster_dev.log"
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml")]
        cmd += ["-p", str(port), "-h", "127.0.0.1"]
        # Not from the root, whose .env would point Dagster at the repository's instance.
        proc = start_process_group(cmd, os.environ | env, log, folder)
        gql = DagsterGraphQL(f"http://127.0.0.1:{port}")
        try:

            def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"dagster dev exited {proc.returncode}:\n{tail(log)}")
                return gql.is_up()

            wait_for("the Dagster webserver", up, timeout_s=180)
            wait_for("the code location", gql.location_loaded, timeout_s=180)
            # Three windows of a couple of hours ago (history), in the world's range.
            first = last_tick - timedelta(hours=2)
            keys = [key_of(first + i * WINDOW) for i in range(BACKFILL_WINDOWS)]
            backfill_id = launch_backfill(gql, keys)
            yield UiSession(
                url=gql.base_url,
                gql=gql,
                log=log,
                warehouse=folder / "warehouse.duckdb",
                expected_tick=expected_tick,
                backfill_id=backfill_id,
                backfill_keys=keys,
            )
        finally:
            gql.close()
            stop_process_group(proc)
            shutil.copy(log, artifacts_dir() / "dagster_dev.log")


def wait_for_run(ui: UiSession, run_id: str, timeout_s: float = 300) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run = ui.gql.run(run_id)
        return run if run["status"] in FINISHED_RUN else None

    return wait_for(f"run {run_id}", finished, timeout_s=timeout_s, interval_s=2)


BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      partitionNames
      error { message }
      runs(limit: 20) { runId status tags { key value } }
    }
    ... on PythonError { message }
  }
}"""


@pytest.fixture(scope="module")
def backfill(ui: UiSession) -> dict[str, Any]:
    """The launched backfill, once the daemon has finished it."""

    def done() -> dict[str, Any] | None:
        data = ui.gql.query(BACKFILL_STATUS, id=ui.backfill_id)["partitionBackfillOrError"]
        assert data["__typename"] == "PartitionBackfill", data
        return data if data["status"] not in ("REQUESTED", "CANCELING") else None

    try:
        result = wait_for(f"backfill {ui.backfill_id}", done, timeout_s=360, interval_s=3)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{tail(ui.log)}") from exc
    for run in result["runs"]:
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return result


SCHEDULE_TICKS = """
query($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { status ticks(limit: 10) {
      tickId status timestamp runIds error { message } } } }
  }
}"""

SCHEDULE_DRY_RUN = """
mutation($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick {
      evaluationResult { runRequests { runKey tags { key value } } skipReason error { message } }
    }
    ... on PythonError { message }
  }
}"""

SCHEDULE_SELECTOR = {
    "repositoryLocationName": LOCATION,
    "repositoryName": REPOSITORY,
    "scheduleName": SCHEDULE,
}


def test_schedule_evaluated_at_10_15_requests_window_10_00(ui):
    """The UI's "Test schedule" (a dry run in the code server) at a fixed tick time."""
    tick = datetime(2026, 3, 1, 10, 15, tzinfo=UTC).timestamp()
    result = ui.gql.query(SCHEDULE_DRY_RUN, selector=SCHEDULE_SELECTOR, timestamp=tick)
    evaluation = result["scheduleDryRun"]["evaluationResult"]
    assert evaluation["error"] is None, evaluation
    (request,) = evaluation["runRequests"]
    tags = {t["key"]: t["value"] for t in request["tags"]}
    assert tags["dagster/partition"] == "2026-03-01-10:00"
    assert request["runKey"] == "2026-03-01-10:00"


def test_daemon_fires_the_tick_and_collects_the_window_that_just_ended(ui):
    """The daemon's own tick (schedule on by default): its run requests the window that
    ended at the tick, runs collect_job and writes that window."""
    tick_ts = ui.expected_tick.replace(tzinfo=UTC).timestamp()

    def tick_done() -> dict[str, Any] | None:
        data = ui.gql.query(SCHEDULE_TICKS, selector=SCHEDULE_SELECTOR)["scheduleOrError"]
        assert data["__typename"] == "Schedule", data
        mine = [t for t in data["scheduleState"]["ticks"] if t["timestamp"] == tick_ts]
        return mine[0] if mine and mine[0]["status"] != "STARTED" else None

    wait_s = (ui.expected_tick - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    try:
        tick = wait_for(
            f"the daemon's {ui.expected_tick:%H:%M} tick",
            tick_done,
            timeout_s=max(wait_s, 0) + 180,
            interval_s=2,
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{tail(ui.log)}") from exc
    assert tick["status"] == "SUCCESS", tick
    (run_id,) = tick["runIds"]
    expected = key_of(ui.expected_tick - WINDOW)
    run = ui.gql.run(run_id)
    assert run["jobName"] == "collect_job"
    assert run["tags"]["dagster/schedule_name"] == SCHEDULE
    assert run["tags"]["dagster/partition"] == expected
    assert run["tags"]["dagster/run_key"] == expected
    finished = wait_for_run(ui, run_id)
    assert finished["status"] == "SUCCESS", f"run {run_id}: {finished['status']}\n{tail(ui.log)}"
    start, _ = window_of(expected)
    with warehouse(ui.warehouse, read_only=True, wait_s=120) as conn:
        (snapshots,) = conn.execute(
            "SELECT count(*) FROM market_snapshots WHERE window_start = ?", [start]
        ).fetchone()
    assert snapshots > 0, f"no snapshots for the tick's window {expected}"


def test_backfill_through_graphql_materializes_every_window_with_passing_checks(ui, backfill):
    assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{tail(ui.log)}"
    assert sorted(backfill["partitionNames"]) == ui.backfill_keys
    runs = backfill["runs"]
    assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
    # BackfillPolicy.multi_run(96): the three windows are one ranged run.
    (run,) = runs
    assert run["tags"]["dagster/asset_partition_range_start"] == ui.backfill_keys[0]
    assert run["tags"]["dagster/asset_partition_range_end"] == ui.backfill_keys[-1]

    data = ui.gql.query(
        """query($keys: [AssetKeyInput!], $partitions: [String!]) {
             assetNodes(assetKeys: $keys) {
               assetKey { path }
               assetMaterializations(partitions: $partitions) { partition runId }
               assetChecksOrError { ... on AssetChecks { checks { name } } }
             } }""",
        keys=[{"path": [name]} for name in COLLECT_ASSETS],
        partitions=ui.backfill_keys,
    )
    nodes = {n["assetKey"]["path"][-1]: n for n in data["assetNodes"]}
    assert set(nodes) == set(COLLECT_ASSETS)
    checks: list[tuple[str, str]] = []
    for name, node in nodes.items():
        materialized = {m["partition"] for m in node["assetMaterializations"]}
        assert materialized == set(ui.backfill_keys), (name, materialized)
        assert {m["runId"] for m in node["assetMaterializations"]} == {run["runId"]}
        checks += [(name, c["name"]) for c in node["assetChecksOrError"].get("checks", [])]
    # tracked_markets: 1 check, market_snapshots: 3, market_paths: 3, market_resolutions: 2
    # (docs/data.md, "Checks").
    assert len(checks) == 9, checks

    for asset, check in checks:
        executions = ui.gql.query(
            """query($key: AssetKeyInput!, $check: String!) {
                 assetCheckExecutions(assetKey: $key, checkName: $check, limit: 50) {
                   runId status evaluation { success severity } } }""",
            key={"path": [asset]},
            check=check,
        )["assetCheckExecutions"]
        mine = [e for e in executions if e["runId"] == run["runId"]]
        assert not [e for e in mine if e["status"] in ("FAILED", "EXECUTION_FAILED")], mine
        passed = [e for e in mine if e["status"] == "SUCCEEDED" and e["evaluation"]["success"]]
        assert passed, (asset, check, mine)

    starts = [window_of(k)[0] for k in ui.backfill_keys]
    with warehouse(ui.warehouse, read_only=True, wait_s=120) as conn:
        for table in ("tracked_markets", "market_snapshots", "btc_spot_windows"):
            per_window = dict(
                conn.execute(
                    f"SELECT window_start, count(*) FROM {table} "
                    "WHERE window_start IN (?, ?, ?) GROUP BY 1",
                    starts,
                ).fetchall()
            )
            assert set(per_window) == set(starts), (table, per_window)
        (failed,) = conn.execute(
            "SELECT count(*) FROM collection_runs WHERE dagster_run_id = ? AND status = 'failed'",
            [run["runId"]],
        ).fetchone()
        assert failed == 0


def test_asset_graph_page_renders_in_headless_chromium(ui, backfill):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does, as root)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed: pip install -e '.[dev]'"
    )
    nodes = ui.gql.query("{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    names = sorted(n["assetKey"]["path"][-1] for n in nodes)
    groups = sorted({n["groupName"] for n in nodes})
    # Every group expanded (the UI's "Expand all groups", kept in the URL).
    expanded = ",".join(f"global@global:{g}" for g in groups)
    url = f"{ui.url}/asset-groups?expanded={expanded}"
    shot = artifacts_dir() / "ui_asset_graph.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # Large enough that the fitted graph is drawn whole at full detail (zoom >= 0.6):
            # latest event, check results and partition counts on every node.
            page = browser.new_page(viewport={"width": 3200, "height": 2600})
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            for name in names:
                page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("Latest event").first.wait_for(timeout=60_000)
            page.get_by_text(re.compile(r"\d+ / \d+ Passed")).first.wait_for(timeout=60_000)
            page.wait_for_timeout(1_500)  # let edges and status badges settle
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 50_000, "screenshot suspiciously small (blank page?)"
