"""The Postgres instance (deploy/postgres/dagster.yaml) against a real PostgreSQL server:
Debian's binaries, a throwaway cluster on a free loopback port, a partition materialized
with the ``dagster`` CLI against the replay server, and the run and its events read back
from Postgres (SQL and Dagster's instance API).

Skipped, with the reason, where dagster-postgres or the server binaries are missing or the
server cannot start (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from unittest import mock

import pytest
import yaml

from btc_tracker_pipeline.environment import replay_variables
from btc_tracker_pipeline.partitions import window_of
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.warehouse import warehouse
from btc_tracker_pipeline_tests.e2e.helpers import ROOT, free_port, tail

pytestmark = pytest.mark.e2e

PG_YAML = ROOT / "deploy" / "postgres" / "dagster.yaml"
PARTITION = "2026-02-28-23:30"
ASSETS = ("tracked_markets", "market_snapshots", "btc_spot_prices")
DB_USER = "dagster"
DB_PASSWORD = "e2e-only-password"


def find_pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` with initdb and pg_ctl (Debian's layout),
    else the folder of an ``initdb`` on PATH."""
    found = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if p.parent.parent.name.isdigit() and (p.parent / "pg_ctl").exists()
    ]
    if found:
        return max(found, key=lambda b: int(b.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=DB_USER, password=DB_PASSWORD, dbname=dbname
        )

    def create_database(self, name: str) -> None:
        conn = self.connect()
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def env(self, db_name: str) -> dict[str, str]:
        """The variables deploy/postgres/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": db_name,
            "DAGSTER_PG_USERNAME": DB_USER,
            "DAGSTER_PG_PASSWORD": DB_PASSWORD,
        }


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    """A PostgreSQL server in a temporary folder on a free loopback port (password auth
    over TCP), stopped and deleted afterwards. As root it runs as the ``postgres`` user
    (initdb refuses root)."""
    pytest.importorskip(
        "dagster_postgres", reason="dagster-postgres not installed: pip install -e '.[dev]'"
    )
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found: apt-get install postgresql")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp_path: its parents are private to root.
    folder = Path(tempfile.mkdtemp(prefix="btc-tracker-pg-"))
    data, sock, log, pwfile = folder / "data", folder / "sock", folder / "server.log", folder / "pw"
    sock.mkdir()
    pwfile.write_text(DB_PASSWORD + "\n")
    if owner is not None:
        for path in (folder, sock, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        initdb = [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", DB_USER]
        initdb += [f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256"]
        initdb += ["-E", "UTF8", "--no-locale"]
        proc = subprocess.run(initdb, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.skip(f"initdb failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-800:]}")
        port = free_port()
        # A throwaway cluster: durability off for speed.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        proc = subprocess.run(
            [*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", options, "start"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            pytest.skip(f"PostgreSQL did not start ({proc.returncode}): {tail(log, 800)}")
        started = True
        yield PgServer("127.0.0.1", port)
    finally:
        if started:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_instance_is_valid_and_keeps_the_sqlite_instances_settings(tmp_path):
    """Schema-valid for Dagster (no server needed), and the same pools, retries and
    monitoring as the repository's dagster.yaml: only storage and the run queue differ."""
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(PG_YAML, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] > 1
    assert {limit["key"] for limit in runs["tag_concurrency_limits"]} >= {"dagster/backfill"}
    postgres_db = dict(config["storage"]["postgres"]["postgres_db"])
    # Connection settings come from the environment, never from the file.
    assert postgres_db.pop("scheme") == "postgresql+psycopg2"
    assert all(isinstance(v, dict) and "env" in v for v in postgres_db.values()), postgres_db

    sqlite = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    pg = yaml.safe_load(PG_YAML.read_text())
    assert pg["concurrency"]["pools"] == sqlite["concurrency"]["pools"]
    for key in ("run_retries", "run_monitoring", "telemetry", "local_artifact_storage"):
        assert pg[key] == sqlite[key], key


def test_materialize_a_partition_on_postgres_and_read_the_run_back(postgres, tmp_path):
    import dagster as dg
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    db_name = "dagster_e2e"
    postgres.create_database(db_name)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PG_YAML, home / "dagster.yaml")
    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    with ReplayServer(world) as server:
        env = postgres.env(db_name) | {
            "DAGSTER_HOME": str(home),
            "BTC_TRACKER_DAGSTER_STORAGE": str(tmp_path / "dagster"),
            "BTC_TRACKER_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "BTC_TRACKER_MODELS": str(tmp_path / "models"),
            **replay_variables(server.url),
        }
        # The multiprocess executor: every step is its own process writing to Postgres.
        cmd = [sys.executable, "-m", "dagster", "asset", "materialize"]
        cmd += ["-m", "btc_tracker_pipeline.definitions", "--select", ",".join(ASSETS)]
        cmd += ["--partition", PARTITION]
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=os.environ | env, capture_output=True, text=True, timeout=240
        )
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Straight from the database: the run, its events and the pool's slots.
    conn = postgres.connect(db_name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs")
            ((run_id, status),) = cur.fetchall()
            assert status == "SUCCESS"
            cur.execute(
                "SELECT asset_key, partition FROM event_logs "
                "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                [run_id],
            )
            materialized = cur.fetchall()
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                [run_id, dg.DagsterEventType.RUN_SUCCESS.value],  # stored as PIPELINE_SUCCESS
            )
            (run_success_events,) = cur.fetchone()
            cur.execute("SELECT concurrency_key FROM concurrency_limits")
            pools = {row[0] for row in cur.fetchall()}
    finally:
        conn.close()
    assert sorted(materialized) == sorted((f'["{a}"]', PARTITION) for a in ASSETS)
    assert run_success_events == 1
    assert "duckdb_write" in pools

    # Through Dagster's own instance API, as the webserver and daemon would read it.
    with mock.patch.dict(os.environ, env), dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        (record,) = instance.get_run_records()
        assert record.dagster_run.run_id == run_id
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert record.dagster_run.tags["dagster/partition"] == PARTITION
        for asset in ASSETS:
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            assert event is not None and event.run_id == run_id
            assert event.asset_materialization.partition == PARTITION

    start, _ = window_of(PARTITION)
    with warehouse(tmp_path / "warehouse.duckdb", read_only=True) as wh:
        (snapshots,) = wh.execute(
            "SELECT count(*) FROM market_snapshots WHERE window_start = ?", [start]
        ).fetchone()
    assert snapshots > 20
