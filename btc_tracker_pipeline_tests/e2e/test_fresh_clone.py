"""Dagster's own commands in a fresh clone, from its root, with no environment variables:
`dagster definitions validate`, `dagster asset materialize`, `dagster job backfill`,
`dagster-daemon run` with `dagster-webserver`, then `dagster dev` — all on the clone's
instance under ``data/``, found through the committed ``.env``.

The clone is a copy of the files git tracks (and new files not yet ignored) in a
temporary folder; nothing of this repository's ``data/`` comes along. The commands run
through ``bash -c`` as a user's shell would, with a scrubbed environment: ``PATH``
(the test's venv), ``HOME``, ``LANG``, ``PYTHONPATH`` (so the copy's package is the one
imported, as an install in the clone would make it) and the three API URLs pointing at
a replay world (there is no internet here). No ``DAGSTER_HOME``, no
``BTC_TRACKER_DAGSTER_STORAGE``, no warehouse path.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from btc_tracker_pipeline.defs.markets.assets import FRESHNESS_FAIL, FRESHNESS_WARN
from btc_tracker_pipeline.environment import replay_variables
from btc_tracker_pipeline.partitions import WINDOW, floor_to_window, key_of, window_of
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.warehouse import warehouse
from btc_tracker_pipeline_tests.e2e.helpers import (
    FINISHED_RUN,
    ROOT,
    DagsterGraphQL,
    free_port,
    start_process_group,
    stop_process_group,
    tail,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SELECT = "tracked_markets,market_snapshots,btc_spot_prices"


@dataclass
class Clone:
    root: Path
    env: dict[str, str]
    logs: Path

    def shell(self, command: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """``command`` in bash, started in the clone's root, with the scrubbed environment."""
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def start(self, command: str, log_name: str) -> subprocess.Popen:
        """``command`` in bash in its own process group, output to ``logs/log_name``."""
        return start_process_group(
            ["/bin/bash", "-c", f"exec {command}"],
            self.env,
            self.logs / log_name,
            self.root,
        )


def copy_checkout(dest: Path) -> None:
    """The files a clone of this tree would have: tracked, and new but not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Iterator[Clone]:
    folder = tmp_path_factory.mktemp("fresh")
    root = folder / "btc-tracker"
    copy_checkout(root)
    assert not (root / "data" / "dagster").exists()
    (folder / "home").mkdir()
    (folder / "logs").mkdir()
    world = SimulatedWorld(seed=11, days=1)  # follows the wall clock
    with ReplayServer(world) as server:
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(folder / "home"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(root),
            **replay_variables(server.url),
        }
        yield Clone(root=root, env=env, logs=folder / "logs")


def history_keys() -> tuple[str, str]:
    """Two windows of a couple of hours ago: inside the world, never a live window."""
    first = floor_to_window(datetime.now(UTC)) - timedelta(hours=2)
    return key_of(first), key_of(first + WINDOW)


def rows_of(root: Path, key: str) -> int:
    start, _ = window_of(key)
    with warehouse(root / "data" / "warehouse.duckdb", read_only=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM market_snapshots WHERE window_start = ?", [start]
        ).fetchone()
    return int(row[0]) if row else 0


RUNS = """{ runsOrError { __typename ... on Runs { results {
  runId status jobName tags { key value } } } } }"""

FRESHNESS = """{ assetNodes(assetKeys: [{path: ["market_snapshots"]}]) {
  internalFreshnessPolicy { __typename
    ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } } } }"""


def runs(gql: DagsterGraphQL) -> list[dict]:
    return gql.query(RUNS)["runsOrError"]["results"]


def test_dagster_commands_work_in_a_fresh_clone_without_environment_variables(clone):
    materialized, backfilled = history_keys()

    validated = clone.shell("dagster definitions validate -w workspace.yaml")
    assert validated.returncode == 0, validated.stderr[-3000:]
    assert "Loaded environment variables from .env file" in validated.stdout + validated.stderr

    cmd = f"dagster asset materialize -m btc_tracker_pipeline.definitions --select {SELECT}"
    done = clone.shell(f"{cmd} --partition {shlex.quote(materialized)}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (clone.root / "data" / "dagster" / "history" / "runs.db").is_file()
    assert rows_of(clone.root, materialized) > 0

    queued = clone.shell(
        f"dagster job backfill -w workspace.yaml -j collect_job "
        f"--partitions {shlex.quote(backfilled)} --noprompt"
    )
    assert queued.returncode == 0, queued.stdout[-2000:] + queued.stderr[-2000:]

    port = free_port()
    daemon = clone.start("dagster-daemon run -w workspace.yaml", "daemon.log")
    webserver = clone.start(
        f"dagster-webserver -h 127.0.0.1 -p {port} -w workspace.yaml", "webserver.log"
    )
    gql = DagsterGraphQL(f"http://127.0.0.1:{port}")
    try:
        wait_for("the webserver", gql.is_up, timeout_s=180)
        wait_for("the code location", gql.location_loaded, timeout_s=180)

        def backfill_run_finished() -> list[dict]:
            if daemon.poll() is not None:
                raise AssertionError(f"the daemon exited:\n{tail(clone.logs / 'daemon.log')}")
            return [
                r
                for r in runs(gql)
                if {"key": "dagster/partition", "value": backfilled} in r["tags"]
                and r["status"] in FINISHED_RUN
            ]

        finished = wait_for("the backfill's run", backfill_run_finished, 420, interval_s=3)
        assert [r["status"] for r in finished] == ["SUCCESS"], tail(clone.logs / "daemon.log")
        # The webserver shows the run `asset materialize` made: one instance for all.
        partitions = {
            t["value"] for r in runs(gql) for t in r["tags"] if t["key"] == "dagster/partition"
        }
        assert {materialized, backfilled} <= partitions
        policy = gql.query(FRESHNESS)["assetNodes"][0]["internalFreshnessPolicy"]
        assert policy == {
            "__typename": "TimeWindowFreshnessPolicy",
            "failWindowSeconds": FRESHNESS_FAIL.total_seconds(),
            "warnWindowSeconds": FRESHNESS_WARN.total_seconds(),
        }
    finally:
        gql.close()
        stop_process_group(webserver)
        stop_process_group(daemon)
    assert rows_of(clone.root, backfilled) > 0

    port = free_port()
    dev = clone.start(f"dagster dev -h 127.0.0.1 -p {port}", "dev.log")
    gql = DagsterGraphQL(f"http://127.0.0.1:{port}")
    try:
        wait_for("dagster dev", gql.is_up, timeout_s=180)
        wait_for("the code location under dagster dev", gql.location_loaded, timeout_s=180)
        assert len(runs(gql)) >= 2, tail(clone.logs / "dev.log")
    finally:
        gql.close()
        stop_process_group(dev)
    assert "Using temporary directory" not in (clone.logs / "dev.log").read_text()
    assert not list(clone.root.glob(".tmp_dagster_home_*"))
