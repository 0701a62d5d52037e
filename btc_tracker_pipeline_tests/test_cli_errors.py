"""Every expected failure of collect, backfill and train says one ``error:`` line on stderr
(plus at most one ``hint:``), exit code 1, no trace; --verbose brings Dagster's log back.

The real command in a subprocess against a replay server; nothing is mocked.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline_tests.cli_process import cli_env, instance, run_cli, runs

pytestmark = pytest.mark.integration

WINDOW = "2026-02-28-23:30"


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))


@pytest.fixture(scope="module")
def server(world) -> Iterator[ReplayServer]:
    with ReplayServer(world) as server:
        yield server


@pytest.fixture
def env(server, tmp_path) -> dict[str, str]:
    return cli_env(server, tmp_path)


def market_ending(world: SimulatedWorld, end: str) -> str:
    """The id of the 15-minute up/down market that resolves at ``end`` (ISO, Z)."""
    return next(
        m["id"]
        for m in world.gamma_markets()
        if m["slug"].startswith("btc-updown-15m") and m["endDate"] == end
    )


def one_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Assert exit code 1 and one ``error:`` line (with ``fragments``) among at most two
    lines on stderr; return it."""
    output = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 1, output
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) <= 2, output
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), output
    for fragment in fragments:
        assert fragment in errors[0], output
    assert "Traceback" not in proc.stdout + proc.stderr
    return errors[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unknown_market_id_is_named_and_the_run_log_keeps_the_trace(env):
    proc = run_cli(env, "collect", "--partition", WINDOW, "--market-ids", "999999999")

    one_error(proc, "market 999999999: not found on Gamma")
    assert "0 of 1 windows written" in proc.stdout
    (run,) = runs(env)
    with instance(env) as inst:
        failures = [e for e in inst.all_logs(run.run_id) if e.is_dagster_event]
        stacks = [
            e.dagster_event.step_failure_data.error.stack
            for e in failures
            if e.dagster_event.is_step_failure
        ]
    assert stacks and all(stacks)


def test_unknown_market_id_among_known_ones_is_one_warning(env, world):
    known = market_ending(world, "2026-03-01T00:00:00Z")

    proc = run_cli(env, "collect", "--partition", WINDOW, "--market-ids", f"999999999,{known}")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "warning: market 999999999: not found on Gamma (recorded in collection_runs)"
    ]
    assert "1 of 1 windows written" in proc.stdout
    with duckdb.connect(env["BTC_TRACKER_WAREHOUSE"], read_only=True) as conn:
        tracked = conn.execute("SELECT list(market_id) FROM tracked_markets").fetchone()[0]
    assert tracked == [known]


def test_verbose_shows_dagsters_log_and_the_trace(env):
    proc = run_cli(env, "collect", "--partition", WINDOW, "--market-ids", "999999999", "--verbose")

    assert proc.returncode == 1
    assert "STEP_FAILURE" in proc.stderr and "Stack Trace" in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [errors[0]] and "market 999999999: not found on Gamma" in errors[0]


def test_api_down_is_one_line_naming_the_api(env):
    base = f"http://127.0.0.1:{closed_port()}"
    env |= {
        "BTC_TRACKER_GAMMA_URL": f"{base}/gamma",
        "BTC_TRACKER_CLOB_URL": f"{base}/clob",
        "BTC_TRACKER_BINANCE_URL": f"{base}/binance",
        "BTC_TRACKER_HTTP_TIMEOUT_S": "1",
    }

    proc = run_cli(env, "collect", "--partition", WINDOW)

    one_error(proc, f"Gamma API unreachable at {base}/gamma: connection refused")
    assert proc.stderr.splitlines()[1].startswith("hint: existing rows were kept")


def test_corrupted_warehouse_is_one_line(env):
    path = Path(env["BTC_TRACKER_WAREHOUSE"])
    path.write_bytes(os.urandom(1 << 16))

    proc = run_cli(env, "collect", "--partition", WINDOW)

    one_error(proc, str(path))


def test_new_warehouse_where_no_folder_can_be_made_is_one_line(env, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    path = tmp_path / "afile" / "warehouse.duckdb"
    env["BTC_TRACKER_WAREHOUSE"] = str(path)

    proc = run_cli(env, "collect", "--partition", WINDOW)

    one_error(proc, str(path))
    assert "run a collection first" not in proc.stderr


def test_dagster_storage_that_cannot_be_made_is_one_line(env, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    env["BTC_TRACKER_DAGSTER_STORAGE"] = str(tmp_path / "afile" / "dagster")

    proc = run_cli(env, "collect", "--partition", WINDOW)

    one_error(proc, "cannot create the Dagster storage folder", str(tmp_path / "afile"))


def test_too_few_markets_to_train_says_how_many_and_what_to_do(env):
    proc = run_cli(env, "train")

    one_error(proc, "have 0 resolved markets, need 200")
    assert proc.stderr.splitlines()[1].startswith("hint: collect more history")


def test_models_folder_that_cannot_be_written_is_one_line(env, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    env["BTC_TRACKER_MODELS"] = str(tmp_path / "afile" / "models")

    proc = run_cli(env, "train", "--min-markets", "1")

    one_error(proc, "cannot write models to", str(tmp_path / "afile" / "models"))


def test_failed_backfill_counts_written_windows_and_prints_the_resume_command(env, world):
    # Two runs (96 + 1 windows); the one market is open in the first run's windows only,
    # so the second run finds nothing to collect and fails.
    market = market_ending(world, "2026-02-27T00:15:00Z")

    proc = run_cli(
        env, "backfill", "--from", "2026-02-27-00:00", "--to", "2026-02-28-00:00",
        "--market-ids", market,
    )  # fmt: skip

    one_error(proc, "2026-02-28-00:00 … 2026-02-28-00:00: ", "no BTC markets found")
    assert "2 run(s), 1 failed; 96 of 97 windows written" in proc.stdout
    resume = (
        "resume with: btc-tracker backfill --from 2026-02-28-00:00 --to 2026-02-28-00:00 "
        f"--market-ids {market}"
    )
    assert resume in proc.stdout.splitlines()
