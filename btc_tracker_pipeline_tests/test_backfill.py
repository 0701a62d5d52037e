"""A two-day backfill through the runner (the `btc-tracker backfill` path) against the
replay server: every window, labels that match the world, indicators, request bounds,
idempotent reruns and no look-ahead."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import ChunkOutcome, partition_keys, run_windows
from btc_tracker_pipeline_tests.window_tables import window_rows

pytestmark = pytest.mark.integration

FIRST, LAST = "2026-02-27-00:00", "2026-02-28-23:45"


@dataclass
class Backfill:
    world: SimulatedWorld
    server: ReplayServer
    warehouse: Path
    instance: dg.DagsterInstance
    outcomes: list[ChunkOutcome]
    stats: dict

    def sql(self, query: str, *params: object) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as conn:
            return conn.execute(query, list(params)).fetchall()

    def dump(self) -> dict[str, list[tuple]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as conn:
            return window_rows(conn)


@pytest.fixture(scope="module")
def backfill(tmp_path_factory) -> Iterator[Backfill]:
    tmp = tmp_path_factory.mktemp("backfill")
    world = SimulatedWorld(seed=7, days=5, now=datetime(2026, 3, 1))
    with replay_session(world, tmp) as session:
        outcomes = run_windows(partition_keys(FIRST, LAST), instance=session.instance)
        yield Backfill(
            world,
            session.server,
            session.warehouse,
            session.instance,
            outcomes,
            session.server.stats(),
        )


def test_every_window_materialized_in_one_run_per_day(backfill):
    assert [(o.first_key, o.last_key, o.success) for o in backfill.outcomes] == [
        ("2026-02-27-00:00", "2026-02-27-23:45", True),
        ("2026-02-28-00:00", "2026-02-28-23:45", True),
    ]
    for table in ("market_snapshots", "btc_spot_windows", "market_indicators", "tracked_markets"):
        assert backfill.sql(f"SELECT count(DISTINCT window_start) FROM {table}") == [(192,)]


def test_prices_history_at_most_once_per_token_per_run(backfill):
    per_chunk = backfill.sql(
        "SELECT sum(n) FROM (SELECT count(DISTINCT yes_token_id) AS n FROM tracked_markets "
        "GROUP BY date_trunc('day', window_start))"
    )[0][0]
    calls = backfill.stats["routes"]["/clob/prices-history"]
    assert calls <= per_chunk
    # Klines: the 24 h lookback and the two days, each minute fetched once (the second
    # run reads the first run's from the kline cache), in 1000-candle pages, plus one
    # empty page: the second run's cached span reaches past the world's clock (it stands
    # at 2026-03-01, the pipeline's clock is today), and a short page is not the end of a
    # range (Binance skips outages), so the client pages once more and finds nothing.
    minutes = (1 + 2) * 24 * 60
    assert backfill.stats["routes"]["/binance/api/v3/klines"] == math.ceil(minutes / 1000) + 1


def test_labels_agree_with_the_world_and_with_klines(backfill):
    rows = backfill.sql(
        "SELECT market_id, family, status, yes_won, label_check FROM market_resolutions"
    )
    updown = [r for r in rows if r[1].startswith("updown")]
    assert len(updown) > 200
    for market_id, _, status, yes_won, _ in rows:
        winner = backfill.world.resolution_of(market_id)
        assert status == "resolved"
        assert yes_won == (winner in ("Up", "Yes")), market_id
    checks = {r[4] for r in rows}
    assert "disagrees" not in checks and "agrees" in checks


def test_indicators_non_null_where_lookback_exists_and_rsi_varies(backfill):
    (n, rsi, rsi_std, mom, spot, struct, lo, hi, quality) = backfill.sql(
        "SELECT count(*), count(rsi_14), stddev(rsi_14), count(price_momentum_15m), "
        "count(btc_spot_price), count(structural_probability), min(structural_probability), "
        "max(structural_probability), avg(quality_score) FROM market_indicators "
        "WHERE window_start >= '2026-02-28'"
    )[0]
    assert spot == n
    assert mom > 0.9 * n and rsi > 0.5 * n and rsi_std > 5
    assert struct > 0.9 * n and 0.0 <= lo <= hi <= 1.0
    assert 0.0 < quality <= 1.0
    # Where the 28-window lookback exists (every market quoted for 7 h), RSI is there.
    missing = backfill.sql(
        "SELECT count(*) FROM market_indicators i WHERE rsi_14 IS NULL "
        "AND window_start >= '2026-02-28' AND (SELECT count(*) FROM market_snapshots s "
        "WHERE s.market_id = i.market_id AND s.window_start <= i.window_start "
        "AND s.window_start >= i.window_start - INTERVAL 7 HOUR) = 29"
    )
    assert missing == [(0,)]


def test_checks_are_recorded_for_the_ui(backfill):
    run_id = backfill.outcomes[-1].run_id
    records = backfill.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = {
        r.event_log_entry.dagster_event.event_specific_data.check_name: (
            r.event_log_entry.dagster_event.event_specific_data.passed
        )
        for r in records
    }
    assert evaluations == {
        "tracked_coverage": True,
        "prices_in_unit_interval": True,
        "outcome_prices_sum_to_one": True,
        "coverage": True,
        "label_integrity": True,
        "labels_match_klines": True,
        "minutes_within_market_life": True,
        "path_prices_in_unit_interval": True,
        "path_coverage": True,
    }


def test_rerun_is_identical_and_replaces_only_its_windows_without_look_ahead(backfill):
    before = backfill.dump()
    # An overlapping range (the second half of day 2) rerun: same rows everywhere.
    outcomes = run_windows(partition_keys("2026-02-28-12:00", LAST), instance=backfill.instance)
    assert all(o.success for o in outcomes)
    assert backfill.dump() == before
    # Indicators of an early window recomputed now that later windows exist: identical.
    one = run_windows(["2026-02-27-18:00"], job_name="collect_job", instance=backfill.instance)
    assert one[0].success
    assert backfill.dump() == before
