"""The 24/7 service as deploy/systemd runs it: the two units' commands, a schedule tick
collected, both stopped with SIGTERM.

What runs: exactly the ExecStart of ``btc-tracker-daemon.service`` and
``btc-tracker-webserver.service`` (the virtualenv's ``dagster-daemon run -w
workspace.yaml`` and ``dagster-webserver -h 127.0.0.1 -p PORT -w workspace.yaml``, only
the port changed), each in its own process group as systemd gives each unit its own
cgroup, in a working folder outside the checkout, with the settings file's variables
(instance, storage, warehouse, models) pointing at temporary folders and the three API
URLs at a replay world that follows the wall clock. The daemon fires
``collect_job_schedule`` by itself; its run collects the window that ended at the tick,
and the test reads that window from the warehouse. Then SIGTERM to each unit's processes
(systemd's default ``KillMode=control-group``): both must exit 0 within the units'
``TimeoutStopSec`` and leave no process behind (no code server, no run worker).

What is not exercised: systemd itself (no unit is installed; ``test_deploy_units``
checks the files), the settings file as systemd reads it, restarts after a failure, and
a stop while a run is in progress. The tick is not waited for 15 minutes: as in
``test_ui``, the instance records the schedule as running since just before the last
quarter hour, as after a daemon that was down across a tick, and the daemon catches that
tick up as it starts (near a quarter hour the test waits for the next tick instead).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.environment import replay_variables
from btc_tracker_pipeline.partitions import WINDOW, key_of, window_of
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.warehouse import warehouse
from btc_tracker_pipeline_tests.deploy_units import DAEMON, WEBSERVER, local_command, read_unit
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
    tail,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SCHEDULE = "collect_job_schedule"
SELECTOR = {
    "repositoryLocationName": LOCATION,
    "repositoryName": REPOSITORY,
    "scheduleName": SCHEDULE,
}

SCHEDULE_STATE = """
query($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { status ticks(limit: 10) {
      timestamp status runIds error { message } } } }
  }
}"""


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def leftovers(pgid: int) -> list[str]:
    """The command lines of the processes still in group ``pgid`` (for a failure message)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found.append(cmdline.decode(errors="replace").strip())
        except (OSError, IndexError, ValueError):
            continue
    return found


def stop_seconds(unit: str) -> float:
    """The unit's TimeoutStopSec in seconds (``60`` or ``2min``)."""
    value = read_unit(unit)["Service"]["TimeoutStopSec"]
    return float(value.removesuffix("min")) * 60 if value.endswith("min") else float(value)


def terminate(proc: subprocess.Popen, unit: str) -> tuple[int | None, list[str], float]:
    """SIGTERM to every process of the group (systemd's stop of a unit); the main
    process's exit code (None if it outlived the timeout), what was left in the group once
    it exited, and the seconds it took. Whatever is left is then killed."""
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        code: int | None = proc.wait(timeout=stop_seconds(unit))
    except subprocess.TimeoutExpired:
        code = None
    # A moment for children that exit right after their parent.
    deadline = time.monotonic() + 10
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = leftovers(proc.pid)
    elapsed = time.monotonic() - started
    if group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=10)
    return code, left, elapsed


@pytest.fixture
def service(tmp_path) -> Iterator[dict[str, Any]]:
    """The two units' commands over a temporary instance and a wall-clock replay world."""
    world = SimulatedWorld(seed=7, days=1)
    with ReplayServer(world) as server:
        state = tmp_path / "var-lib-btc-tracker"  # the units' WorkingDirectory
        state.mkdir()
        shutil.copy(ROOT / "dagster.yaml", state / "dagster.yaml")  # deploy/README.md
        env = os.environ | {
            "DAGSTER_HOME": str(state),
            "BTC_TRACKER_DAGSTER_STORAGE": str(state / "dagster"),
            "BTC_TRACKER_WAREHOUSE": str(state / "warehouse.duckdb"),
            "BTC_TRACKER_MODELS": str(state / "models"),
            **replay_variables(server.url),
        }
        for name in ("BTC_TRACKER_MARKET_IDS", "BTC_TRACKER_ALERT_WEBHOOK"):
            env.pop(name, None)
        tick = seed_first_tick(env)

        port = free_port()
        bin_dir = Path(sys.executable).parent
        logs = {DAEMON: state / "daemon.log", WEBSERVER: state / "webserver.log"}
        procs = {
            DAEMON: start_process_group(local_command(DAEMON, bin_dir), env, logs[DAEMON], state),
            WEBSERVER: start_process_group(
                local_command(WEBSERVER, bin_dir, port), env, logs[WEBSERVER], state
            ),
        }
        gql = DagsterGraphQL(f"http://127.0.0.1:{port}")
        try:
            yield {"gql": gql, "procs": procs, "logs": logs, "tick": tick, "state": state}
        finally:
            gql.close()
            for unit, proc in procs.items():
                if proc.poll() is None or group_alive(proc.pid):
                    terminate(proc, unit)
                shutil.copy(logs[unit], artifacts_dir() / f"service_{unit}.log")


def test_the_units_commands_collect_a_scheduled_tick_and_stop_cleanly(service):
    gql: DagsterGraphQL = service["gql"]
    procs, logs = service["procs"], service["logs"]

    def up() -> bool:
        for unit, proc in procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{unit} exited {proc.returncode}:\n{tail(logs[unit])}")
        return gql.is_up()

    wait_for("the webserver", up, timeout_s=180)
    wait_for("the code location", gql.location_loaded, timeout_s=180)
    schedule = gql.query(SCHEDULE_STATE, selector=SELECTOR)["scheduleOrError"]
    assert schedule["scheduleState"]["status"] == "RUNNING", schedule

    tick_ts = service["tick"].replace(tzinfo=UTC).timestamp()

    def tick_done() -> dict[str, Any] | None:
        data = gql.query(SCHEDULE_STATE, selector=SELECTOR)["scheduleOrError"]
        mine = [t for t in data["scheduleState"]["ticks"] if t["timestamp"] == tick_ts]
        return mine[0] if mine and mine[0]["status"] != "STARTED" else None

    wait_s = (service["tick"] - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    try:
        tick = wait_for("the daemon's tick", tick_done, max(wait_s, 0) + 240, interval_s=2)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{tail(logs[DAEMON])}") from exc
    assert tick["status"] == "SUCCESS", tick
    (run_id,) = tick["runIds"]
    run = wait_for(
        f"run {run_id}",
        lambda: (r := gql.run(run_id))["status"] in FINISHED_RUN and r,
        timeout_s=300,
        interval_s=2,
    )
    assert run["status"] == "SUCCESS", f"{run}\n{tail(logs[DAEMON])}"
    window = key_of(service["tick"] - WINDOW)
    assert run["tags"]["dagster/partition"] == window
    start, _ = window_of(window)
    with warehouse(service["state"] / "warehouse.duckdb", read_only=True, wait_s=120) as conn:
        (snapshots,) = conn.execute(
            "SELECT count(*) FROM market_snapshots WHERE window_start = ?", [start]
        ).fetchone()
    assert snapshots > 0, f"no snapshots for the tick's window {window}"

    for unit in (DAEMON, WEBSERVER):
        code, left, elapsed = terminate(procs[unit], unit)
        assert code == 0, f"{unit}: exit {code} after SIGTERM\n{tail(logs[unit])}"
        assert left == [], f"{unit} left processes behind: {left}"
        assert elapsed < stop_seconds(unit)
