"""After the demo and live ticks, `btc-tracker paper` and `btc-tracker health` show real
figures from a trained model.

The demo's beatable world (`demo --lag-s 90 --updown-5m --bias 0.5`): four days of
history backfilled and trained as the demo trains them, then live schedule ticks (20 s
after each window end, on the world's clock). At a window end only the hourly up/down
markets are in the middle of their window, so the first positions are hourly ones,
scored on their minute paths; the hourly market settles at its expiry and the next
tick settles its position. bench/forward_ledger.py runs a day of such ticks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import DEMO_MIN_MARKETS, app
from btc_tracker_pipeline.partitions import key_of
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_job, run_windows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

FIRST_LIVE = datetime(2026, 11, 20)
QUARTER = timedelta(minutes=15)
DEMO_TRAINING = {"ops": {"price_model": {"config": {"min_resolved_markets": DEMO_MIN_MARKETS}}}}
runner = CliRunner()


@dataclass
class Ticked:
    warehouse: Path
    models: Path
    proven: list[str]
    first_positions: pl.DataFrame  # the ledger after the first tick that opened one
    first_buys: pl.DataFrame  # that tick's live BUY rows of edge_report
    ledger: pl.DataFrame  # after the tick that settled a position
    last_tick: datetime


def read(warehouse: Path, sql: str, *params: object) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql, list(params)).pl()


@pytest.fixture(scope="module")
def ticked(tmp_path_factory) -> Iterator[Ticked]:
    folder = tmp_path_factory.mktemp("forward")
    clock = [FIRST_LIVE]
    world = SimulatedWorld(
        seed=7, days=6, clock=lambda: clock[0], bias=0.5, lag_s=90.0, updown_5m=True
    )
    with replay_session(world, folder) as session:
        history = partition_keys(
            key_of(FIRST_LIVE - timedelta(days=4)), key_of(FIRST_LIVE - QUARTER)
        )
        with assets_clock(FIRST_LIVE):
            assert all(o.success for o in run_windows(history, instance=session.instance))
        train = run_job("train_job", instance=session.instance, run_config=DEMO_TRAINING)
        assert train.success
        report = next(
            e.materialization.metadata["report"].value
            for e in train.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "price_model"
        )
        proven = sorted(f for f, b in report["by_family"].items() if b.get("skill_proven"))
        first_positions = first_buys = None
        for i in range(12):
            start = FIRST_LIVE + i * QUARTER
            clock[0] = start + QUARTER + timedelta(seconds=20)
            with assets_clock(clock[0]):
                assert all(
                    o.success for o in run_windows([key_of(start)], instance=session.instance)
                )
            ledger = read(session.warehouse, "SELECT * FROM paper_ledger")
            if first_positions is None and ledger.height:
                first_positions = ledger
                first_buys = read(
                    session.warehouse,
                    "SELECT e.*, s.source FROM edge_report e JOIN market_snapshots s "
                    "USING (window_start, market_id) WHERE e.window_start = ? "
                    "AND e.recommendation <> 'PASS'",
                    start,
                )
            if (ledger["status"] == "settled").any():
                break
        assert first_positions is not None, "no live tick opened a position"
        yield Ticked(
            session.warehouse,
            session.models,
            proven,
            first_positions,
            first_buys,
            ledger,
            clock[0],
        )


def test_a_live_tick_after_training_opens_positions_on_in_window_markets(ticked):
    assert "updown_1h" in ticked.proven
    opened, buys = ticked.first_positions, ticked.first_buys
    assert set(buys["source"]) == {"live"} and not buys["in_sample"].any()
    assert sorted(opened["market_id"]) == sorted(buys["market_id"])
    # At a window end only the hourly markets are inside their window.
    assert set(opened["family"]) == {"updown_1h"}
    assert (opened["predicted_edge"] > 0).all() and (opened["stake"] > 0).all()


def test_paper_and_health_show_the_positions(ticked, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(ticked.warehouse))
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(ticked.models))
    settled = ticked.ledger.filter(pl.col("status") == "settled")
    assert settled.height >= 1, ticked.ledger
    paper = json.loads(runner.invoke(app, ["paper", "--json"]).stdout)
    assert paper["summary"]["settled"] == settled.height
    assert paper["summary"]["realised_pnl"] == pytest.approx(settled["pnl"].sum())
    text = runner.invoke(app, ["paper"]).stdout
    assert f"{settled.height} settled" in text
    assert settled["market_id"][0] in text
    now = ticked.last_tick.isoformat()
    health = json.loads(runner.invoke(app, ["health", "--json", "--now", now]).stdout)
    metrics = {m["key"]: m for m in health["metrics"]}
    win_rate = metrics["ledger_win_rate"]
    assert win_rate["n"] == settled.height and win_rate["measured"] is not None
    assert win_rate["status"] == "not meaningful yet"  # below 30 settled positions
    assert metrics["latency_p50"]["n"] >= 2  # the live ticks were timed
