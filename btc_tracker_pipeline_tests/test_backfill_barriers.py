"""Monthly barriers through a backfill: one that touched weeks before its endDate is
labelled YES (and its touch is a feature), ones that never touched are labelled NO at
the end of their month."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_windows

pytestmark = pytest.mark.integration

# The world starts on March 30: March's barriers that never touched settle NO on
# April 1 05:00 UTC; April's $84,000 dip touches that morning, 29 days before its end.
FIRST, LAST = "2026-04-01-00:00", "2026-04-01-11:45"
APRIL_DIP = "12007508400"


@dataclass
class Run:
    world: SimulatedWorld
    warehouse: Path

    def sql(self, query: str, *params: object) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as conn:
            return conn.execute(query, list(params)).fetchall()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("barriers")
    world = SimulatedWorld(
        seed=7,
        start=datetime(2026, 3, 30),
        now=datetime(2026, 4, 2),
        strikes_per_ladder=5,
        updown_lead=timedelta(hours=1),
    )
    with replay_session(world, tmp) as session:
        run_windows(partition_keys(FIRST, LAST), instance=session.instance)
        yield Run(world, session.warehouse)


def test_a_barrier_that_touched_weeks_early_is_labelled_yes(run):
    rows = run.sql(
        "SELECT yes_won, expiry, settled_at FROM market_resolutions WHERE market_id = ?",
        APRIL_DIP,
    )
    assert len(rows) == 1
    yes_won, expiry, settled_at = rows[0]
    assert yes_won is True and run.world.resolution_of(APRIL_DIP) == "Yes"
    assert expiry - settled_at > timedelta(days=10)


def test_its_touch_is_a_feature_from_the_start_of_its_month(run):
    touched = run.sql(
        "SELECT window_start, barrier_touched, structural_probability FROM market_indicators"
        " WHERE market_id = ? ORDER BY window_start",
        APRIL_DIP,
    )
    assert touched and touched[0][1] is False
    assert any(flag for _, flag, _ in touched)
    assert all(p == 1.0 for _, flag, p in touched if flag)
    (start,) = run.sql(
        "SELECT DISTINCT reference_start FROM tracked_markets WHERE market_id = ?", APRIL_DIP
    )[0]
    assert start == datetime(2026, 4, 1, 4)  # April 1, 00:00 EDT


def test_barriers_that_never_touched_are_labelled_no_at_their_end(run):
    rows = run.sql(
        "SELECT market_id, yes_won, expiry, settled_at FROM market_resolutions"
        " WHERE family IN ('reach', 'dip') AND question LIKE '% in March?'"
    )
    no = [r for r in rows if r[1] is False]
    assert len(no) == 3
    for market_id, _, expiry, settled_at in no:
        assert run.world.resolution_of(market_id) == "No"
        assert timedelta(0) < settled_at - expiry < timedelta(hours=2)


def test_labels_hold_both_outcomes_of_barriers(run):
    counts = dict(
        run.sql(
            "SELECT yes_won, count(*) FROM market_resolutions WHERE family IN ('reach', 'dip')"
            " GROUP BY yes_won"
        )
    )
    assert counts.get(True, 0) >= 1 and counts.get(False, 0) >= 3


def test_a_barrier_is_no_longer_tracked_once_it_closed(run):
    """After its touch the market is closed and its history stops: the windows after its
    close neither track it nor count it as a missing quote."""
    (closed_at,) = run.sql(
        "SELECT settled_at FROM market_resolutions WHERE market_id = ?", APRIL_DIP
    )[0]
    windows = run.sql(
        "SELECT window_start FROM tracked_markets WHERE market_id = ? ORDER BY 1", APRIL_DIP
    )
    assert windows and all(ws < closed_at for (ws,) in windows)
    partial = run.sql(
        "SELECT count(*) FROM collection_runs WHERE asset = 'market_snapshots' "
        "AND status <> 'ok' AND window_start > ?",
        closed_at,
    )
    assert partial == [(0,)]
