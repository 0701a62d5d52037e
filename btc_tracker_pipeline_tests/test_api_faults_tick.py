"""One window under one kind of API fault: what can complete does, what failed is in
collection_runs with the reason, and running the window again fills the hole."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from btc_tracker_pipeline.replay import FaultSpec
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import run_windows

pytestmark = pytest.mark.integration

WINDOW = "2026-02-28-22:00"
TABLES = {
    "tracked_markets": "market_id",
    "market_snapshots": "market_id",
    "btc_spot_prices": "open_time",
    "btc_spot_windows": "window_start",
    "market_resolutions": "market_id",
    "market_indicators": "market_id",
}


def world() -> SimulatedWorld:
    # Long enough up/down leads that the open-markets listing of a window takes three
    # keyset pages (a cursor fault needs a second page that is not the last).
    return SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1), updown_lead=timedelta(days=2))


def rows(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in TABLES.items()
        }


def runs_table(warehouse: Path) -> list[tuple[str, str, list[str]]]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        found = conn.execute(
            "SELECT asset, status, errors FROM collection_runs ORDER BY started_at"
        ).fetchall()
    return [(a, s, json.loads(e)) for a, s, e in found]


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory) -> dict[str, list[tuple]]:
    folder = tmp_path_factory.mktemp("clean")
    with replay_session(world(), folder) as session:
        assert all(o.success for o in run_windows([WINDOW], instance=session.instance))
    return rows(folder / "warehouse.duckdb")


def faulted_then_retried(folder: Path, faults: str) -> tuple[bool, dict, list, dict]:
    """Run the window with ``faults``, then again without; returns (first run ok?,
    faults injected, collection_runs after the first run, rows after the retry)."""
    with replay_session(world(), folder, FaultSpec.parse(faults)) as session:
        first = run_windows([WINDOW], instance=session.instance)[0]
        injected = session.server.stats()["faults"]
        recorded = runs_table(session.warehouse)
        session.server.set_faults(None)
        retry = run_windows([WINDOW], instance=session.instance)[0]
        assert retry.success, retry.error
    return first.success, injected, recorded, rows(session.warehouse)


def test_repeating_keyset_cursor_fails_only_the_listing_that_loops(tmp_path, clean_rows):
    ok, injected, recorded, retried = faulted_then_retried(tmp_path, "cursor=1,only=gamma")

    assert not ok and injected["cursor"] > 0
    looped = [a for a, s, e in recorded if s == "failed" and "next_cursor repeats" in e[0]]
    assert looped, recorded
    # Here the open-markets listing loops; the healthy part of the tick (BTC spot,
    # independent of it) landed.
    assert "tracked_markets" in looped
    assert "btc_spot_prices" in {a for a, s, _ in recorded if s == "ok"}
    assert retried == clean_rows


def test_page_missing_fields_skips_those_markets_and_records_them(tmp_path, clean_rows):
    _, injected, recorded, retried = faulted_then_retried(tmp_path, "missing=1,only=gamma")

    assert injected["missing"] > 0
    tracked = [(s, e) for a, s, e in recorded if a == "tracked_markets"]
    assert tracked and tracked[0][0] == "partial"
    assert any("id" in error for error in tracked[0][1])
    assert retried == clean_rows


def test_answers_slower_than_the_timeout_are_retried(tmp_path, clean_rows, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_HTTP_TIMEOUT_S", "0.5")
    ok, injected, recorded, retried = faulted_then_retried(tmp_path, "slow=0.15,slow_s=1.5,seed=4")

    assert ok and injected["slow"] > 0
    assert all(status == "ok" for _, status, _ in recorded)
    assert retried == clean_rows


def test_unknown_market_id_is_recorded_and_the_known_one_collected(tmp_path):
    with replay_session(world(), tmp_path) as session:
        assert run_windows([WINDOW], instance=session.instance)[0].success
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            known = conn.execute("SELECT min(market_id) FROM tracked_markets").fetchone()[0]
            before = conn.execute("SELECT market_id FROM market_snapshots ORDER BY 1").fetchall()
        config = {"ops": {"tracked_markets": {"config": {"market_ids": [known, "999999999"]}}}}
        outcome = run_windows([WINDOW], run_config=config, instance=session.instance)[0]
        assert outcome.success, outcome.error
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            by_ids = conn.execute(
                "SELECT market_id FROM tracked_markets WHERE discovered_by = 'ids'"
            ).fetchall()
            snapshots = conn.execute("SELECT market_id FROM market_snapshots ORDER BY 1").fetchall()
        last_runs = runs_table(session.warehouse)
    # The known market was collected again by id; the window's other markets kept theirs.
    assert by_ids == [(known,)] and snapshots == before and len(before) > 100
    discovery = [e for a, _, e in last_runs if a == "tracked_markets"][-1]
    assert "market 999999999: not found on Gamma" in discovery
