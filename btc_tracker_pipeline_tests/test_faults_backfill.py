"""Faults from the APIs do not change what lands: a backfill under a ~10 % fault rate
(429 with Retry-After, 5xx, malformed bodies) ends with exactly the rows of the same
backfill without faults, nothing missing and nothing doubled."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from btc_tracker_pipeline.replay import FaultSpec
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_windows
from btc_tracker_pipeline_tests.window_tables import COLLECTED, window_rows

pytestmark = pytest.mark.integration

FAULTS = "429=0.03,5xx=0.05,malformed=0.02,retry_after=0,seed=3"


def backfill(folder, faults: FaultSpec | None) -> tuple[dict, dict]:
    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    keys = partition_keys("2026-02-28-20:00", "2026-02-28-22:45")
    with replay_session(world, folder, faults) as session:
        outcomes = run_windows(keys, instance=session.instance)
        assert all(o.success for o in outcomes), [o.error for o in outcomes]
        injected = session.server.stats()["faults"]
    with duckdb.connect(str(session.warehouse), read_only=True) as conn:
        rows = window_rows(conn)
    return rows, injected


def test_backfill_under_faults_gives_the_rows_of_a_clean_backfill(tmp_path):
    clean, none = backfill(tmp_path / "clean", None)
    faulty, injected = backfill(tmp_path / "faulty", FaultSpec.parse(FAULTS))
    assert sum(none.values()) == 0
    assert injected["429"] > 0 and injected["5xx"] > 0 and injected["malformed"] > 0
    assert all(clean[t] for t in COLLECTED if t != "market_resolutions")
    assert faulty == clean
