"""The data folder fills up or turns read-only: a clear error, earlier windows intact, and
the same window succeeds once the disk takes writes again.

Uses a real tmpfs (a small disk that really fills, a real read-only remount), so it needs
root with mount rights; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline_tests.cli_process import cli_env, snapshot_rows, start_cli
from btc_tracker_pipeline_tests.tmpfs import mounted_tmpfs

pytestmark = pytest.mark.integration

EARLIER = ("2026-02-28-22:00", "2026-02-28-22:15")
LATER = "2026-02-28-22:30"


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 64 MB tmpfs mounted in tmp_path, unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "data", "size=64m") as mount_point:
        yield mount_point


@pytest.fixture
def env(small_disk, tmp_path) -> Iterator[dict[str, str]]:
    world = SimulatedWorld(seed=7, days=1, now=datetime(2026, 3, 1))
    with ReplayServer(world) as server:
        env = cli_env(server, tmp_path)  # Dagster's own storage stays on the big disk
        env["BTC_TRACKER_WAREHOUSE"] = str(small_disk / "warehouse.duckdb")
        yield env


def collect(env: dict[str, str], key: str) -> tuple[int, str]:
    proc = start_cli(env, "collect", "--partition", key)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def the_error(out: str) -> str:
    """The one ``error:`` line of a failed command; no other line of it is an error or trace."""
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out
    assert "Traceback" not in out and "STEP_FAILURE" not in out, out
    return errors[0]


def fill(folder: Path) -> Path:
    """Write a file until the disk says it is full."""
    filler = folder / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 20))
            f.flush()
    with filler.open("ab") as f, pytest.raises(OSError) as full:
        f.write(b"\0" * (1 << 16))
        f.flush()
    assert full.value.errno == errno.ENOSPC
    return filler


def test_disk_full_is_a_clear_error_and_loses_nothing(env, small_disk):
    for key in EARLIER:
        assert collect(env, key)[0] == 0
    before = snapshot_rows(env)
    filler = fill(small_disk)

    code, out = collect(env, LATER)

    assert code == 1
    error = the_error(out)
    assert "cannot write the warehouse: the disk is full" in error, out
    assert "earlier windows are intact" in error
    assert snapshot_rows(env) == before

    filler.unlink()
    code, out = collect(env, LATER)
    assert code == 0, out
    after = snapshot_rows(env)
    assert all(after[w] == rows for w, rows in before.items())
    assert datetime(2026, 2, 28, 22, 30) in after


def test_read_only_data_folder_is_a_clear_error_and_readers_still_work(env, small_disk):
    assert collect(env, EARLIER[0])[0] == 0
    before = snapshot_rows(env)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        code, out = collect(env, LATER)
        assert code == 1
        error = the_error(out)
        assert "read-only file system" in error, out
        assert "earlier data is untouched" in error
        stats = start_cli(env, "stats", "--json")
        stats_out, _ = stats.communicate(timeout=120)
        assert stats.returncode == 0, stats_out
        assert snapshot_rows(env) == before
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    code, out = collect(env, LATER)
    assert code == 0, out
    assert set(snapshot_rows(env)) == set(before) | {datetime(2026, 2, 28, 22, 30)}
