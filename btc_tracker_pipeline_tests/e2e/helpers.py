"""Process, port and GraphQL helpers for the end-to-end tests (real servers on loopback)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

ROOT = Path(__file__).resolve().parents[2]
LOCATION = "btc_tracker_pipeline"
REPOSITORY = "__repository__"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def artifacts_dir() -> Path:
    """Where tests leave files for people to look at: ``$BTC_TRACKER_ARTIFACTS`` or
    ``artifacts/`` under the repository (gitignored)."""
    folder = Path(os.environ.get("BTC_TRACKER_ARTIFACTS") or ROOT / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log file, for assertion messages."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log at {path}: {exc})"


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float, interval_s: float = 1.0) -> Any:
    """Call ``probe`` until it returns something truthy; fail with ``what`` after
    ``timeout_s``. Returns the truthy value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


# dagster dev routes SIGTERM to its SIGINT handler, and a process started from a
# non-interactive shell inherits SIGINT ignored (docs/dagster.md §3): restore both
# dispositions before exec (no preexec_fn: the test process runs server threads).
_EXEC_WITH_DEFAULT_SIGNALS = (
    "import os, signal, sys; "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def start_process_group(
    cmd: list[str], env: dict[str, str], log: Path, cwd: Path
) -> subprocess.Popen:
    """Start ``cmd`` in its own session (process group) with default SIGINT/SIGTERM
    handling, stdout and stderr to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _EXEC_WITH_DEFAULT_SIGNALS, *cmd],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process_group(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group (webserver, daemon, runs)?
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=10)


class GraphQLError(AssertionError):
    """The webserver answered a GraphQL request with errors."""


class DagsterGraphQL:
    """A minimal client for the Dagster webserver's ``/graphql`` endpoint."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._client = httpx.Client(timeout=60.0)

    def close(self) -> None:
        self._client.close()

    def query(self, document: str, **variables: Any) -> dict[str, Any]:
        response = self._client.post(
            f"{self.base_url}/graphql", json={"query": document, "variables": variables}
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def is_up(self) -> bool:
        try:
            return self._client.get(f"{self.base_url}/server_info", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def location_loaded(self) -> bool:
        """True once the code location has loaded; raises if it failed to load."""
        data = self.query(
            """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                 name loadStatus
                 locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        )
        entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
        entry = entries.get(LOCATION)
        if entry is None or entry["loadStatus"] != "LOADED":
            return False
        error = entry["locationOrLoadError"]
        if error and error["__typename"] == "PythonError":
            raise AssertionError(f"code location failed to load: {error['message']}")
        return True

    def run(self, run_id: str) -> dict[str, Any]:
        data = self.query(
            """query($id: ID!) { runOrError(runId: $id) { __typename
                 ... on Run { runId status jobName tags { key value } } } }""",
            id=run_id,
        )
        run = data["runOrError"]
        assert run["__typename"] == "Run", run
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return run


# Closer than this to the next quarter hour, a test waits for that tick instead of having
# the daemon catch up the last one.
NATURAL_TICK_WAIT = timedelta(minutes=2, seconds=30)


def seed_first_tick(env: dict[str, str]) -> datetime:
    """The collect schedule's first tick for a daemon about to start on the instance of
    ``env`` (naive UTC), seeded there (``seed_schedule_running_since``).

    Far from the next quarter hour, the daemon catches up the last one at once; close
    to it, the test waits for the next one (firing both would make two runs contend for
    the pool). Seeded either way: the first tick is then the one returned however long
    the daemon takes to start. (Unseeded, a daemon that first sees the schedule after
    the quarter hour starts counting from there and the first tick comes 15 minutes
    later: the CI failure of 2026-11-27.)"""
    from btc_tracker_pipeline.partitions import WINDOW, floor_to_window

    now = datetime.now(UTC).replace(tzinfo=None)
    last_tick = floor_to_window(now)
    tick = last_tick if last_tick + WINDOW - now >= NATURAL_TICK_WAIT else last_tick + WINDOW
    with mock.patch.dict(os.environ, env):
        seed_schedule_running_since(tick - timedelta(minutes=1))
    return tick


def seed_schedule_running_since(started: datetime, schedule: str = "collect_job_schedule") -> None:
    """Record in the instance (``DAGSTER_HOME``) that ``schedule`` has been
    running since ``started`` (naive UTC), as on a deployment whose daemon was down
    across the last quarter hour: on start the daemon fires the tick it missed.

    Without this, a schedule that is on by default starts counting when the daemon first
    sees it, and the first tick comes at the next quarter hour (up to 15 minutes away).
    The state is what the daemon itself writes for a schedule on by default; only the
    start time is earlier. (Internal Dagster types: no public API sets a start time.)
    """
    import dagster as dg
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        ScheduleInstigatorData,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name="btc_tracker_pipeline.definitions",
            working_directory=str(ROOT),
        ),
        location_name=LOCATION,
    )
    origin = RemoteInstigatorOrigin(RemoteRepositoryOrigin(location, REPOSITORY), schedule)
    state = InstigatorState(
        origin,
        InstigatorType.SCHEDULE,
        InstigatorStatus.DECLARED_IN_CODE,
        ScheduleInstigatorData(
            "*/15 * * * *", start_timestamp=started.replace(tzinfo=UTC).timestamp()
        ),
    )
    with dg.DagsterInstance.get() as instance:
        instance.add_instigator_state(state)


FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
