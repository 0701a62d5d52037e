"""Chainlink close calls end to end: the simulated world settles 15-minute up/down markets
on a "Chainlink" print a few dollars off its Binance klines, so a few of them settle on
the side the klines contradict. A two-day backfill keeps those labels as ``close_call``
(the check passes, the model trains on them); then `btc-tracker train` leaves the newest
window's edge report with the new model's view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.defs.model.inputs import training_tables
from btc_tracker_pipeline.model.dataset import build_dataset
from btc_tracker_pipeline.replay.session import ReplaySession, replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import ChunkOutcome, partition_keys, run_windows

ROOT = Path(__file__).resolve().parents[1]
FIRST, LAST = "2026-02-27-00:00", "2026-02-28-23:45"
MINUTE = timedelta(minutes=1)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@dataclass
class Backfill:
    world: SimulatedWorld
    session: ReplaySession
    outcomes: list[ChunkOutcome]

    def sql(self, query: str, *params: object) -> list[tuple]:
        with duckdb.connect(str(self.session.warehouse), read_only=True) as conn:
            return conn.execute(query, list(params)).fetchall()


@pytest.fixture(scope="module")
def backfill(tmp_path_factory) -> Iterator[Backfill]:
    # seed 7, path from 2026-02-26: four 15-minute windows in the two days settle on the
    # side their Binance klines contradict (the world's Chainlink noise).
    world = SimulatedWorld(seed=7, days=3, now=datetime(2026, 3, 1))
    with replay_session(world, tmp_path_factory.mktemp("close_calls")) as session:
        outcomes = run_windows(partition_keys(FIRST, LAST), instance=session.instance)
        yield Backfill(world, session, outcomes)


def _klines_say_up(world: SimulatedWorld, start: datetime, end: datetime) -> bool:
    """The 15-minute window's side by the Binance 1m klines: close at E-1m >= open at R."""
    return world.btc_close_at(end - MINUTE) >= world.btc_close_at(start - MINUTE)


def _contradicted_by_klines(backfill: Backfill) -> set[str]:
    """15-minute markets whose settled side (the world's truth) the klines contradict."""
    rows = backfill.sql(
        "SELECT DISTINCT r.market_id, t.reference_start, t.expiry FROM market_resolutions r "
        "JOIN tracked_markets t USING (market_id) WHERE r.family = 'updown_15m'"
    )
    return {
        market_id
        for market_id, start, end in rows
        if (backfill.world.resolution_of(market_id) == "Up")
        != _klines_say_up(backfill.world, start, end)
    }


def test_the_world_settles_a_few_15m_windows_against_the_klines(backfill):
    contradicted = _contradicted_by_klines(backfill)
    total = backfill.sql("SELECT count(*) FROM market_resolutions WHERE family = 'updown_15m'")
    assert 2 <= len(contradicted) <= 0.03 * total[0][0]


def test_contradicted_labels_are_close_calls_with_their_move(backfill):
    rows = backfill.sql(
        "SELECT market_id, family, label_check, label_check_detail FROM market_resolutions "
        "WHERE label_check NOT IN ('agrees', 'uncheckable')"
    )
    assert {r[0] for r in rows} == _contradicted_by_klines(backfill)
    for _, family, check, detail in rows:
        assert (family, check) == ("updown_15m", "close_call")
        assert detail.startswith("close call: Binance moved ") and " $ (" in detail
        assert " bp)" in detail
    # Hourly windows settle on the klines themselves: never a close call.
    hourly = backfill.sql(
        "SELECT DISTINCT label_check FROM market_resolutions WHERE family = 'updown_1h'"
    )
    assert {r[0] for r in hourly} <= {"agrees", "uncheckable"}


def test_day_runs_and_the_klines_check_pass(backfill):
    assert [o.success for o in backfill.outcomes] == [True, True]
    evaluations = {}
    for outcome in backfill.outcomes:
        records = backfill.session.instance.get_records_for_run(
            outcome.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        for r in records:
            data = r.event_log_entry.dagster_event.event_specific_data
            if data.check_name == "labels_match_klines":
                evaluations[outcome.first_key] = (data.passed, data.metadata["close_call"].value)
    passed = [p for p, _ in evaluations.values()]
    assert passed == [True, True]
    assert sum(n for _, n in evaluations.values()) == len(_contradicted_by_klines(backfill))


def test_close_call_labels_are_in_the_training_dataset(backfill):
    with duckdb.connect(str(backfill.session.warehouse), read_only=True) as conn:
        indicators, resolutions, markets = training_tables(conn)
    dataset = build_dataset(indicators, resolutions, markets)
    as_if_agreed = build_dataset(
        indicators,
        resolutions.with_columns(pl.col("label_check").replace("close_call", "agrees")),
        markets,
    )
    assert dataset.equals(as_if_agreed)  # nothing dropped for being a close call
    # The 15-minute windows themselves reach the dataset only through snapshots taken
    # inside them (live ticks); their labels are there for those rows, as any label.
    labels = resolutions.filter(pl.col("label_check") == "close_call")
    assert labels.height == len(_contradicted_by_klines(backfill))
    for market_id, yes_won in labels.select("market_id", "yes_won").iter_rows():
        assert yes_won == (backfill.world.resolution_of(market_id) == "Up")


def test_train_refreshes_the_newest_edge_report_with_the_new_model(backfill, tmp_path, monkeypatch):
    newest = backfill.sql("SELECT max(window_start) FROM market_indicators")[0][0]
    before_rows = backfill.sql(
        "SELECT model_version, flags FROM edge_report WHERE window_start = ?", newest
    )
    # Collected before any model: every row is no_model.
    assert before_rows and all(v is None and "no_model" in f for v, f in before_rows)
    monkeypatch.setenv("DAGSTER_HOME", str(ROOT))
    monkeypatch.setenv("BTC_TRACKER_DAGSTER_STORAGE", str(tmp_path / "dagster"))
    result = CliRunner().invoke(app, ["train", "--min-markets", "20"])
    assert result.exit_code == 0, result.output
    version = sorted(p.name for p in backfill.session.models.iterdir())[-1]
    after = backfill.sql(
        "SELECT e.model_version, e.flags, e.model_prob, "
        "e.family LIKE 'updown%' AND i.reference_price IS NULL AS not_open, e.family "
        "FROM edge_report e JOIN market_indicators i USING (window_start, market_id) "
        "WHERE window_start = ?",
        newest,
    )
    assert len(after) == len(before_rows)
    assert {v for v, *_ in after} == {version}
    # The model has no say on an up/down window that has not opened (a fair coin,
    # model/dataset.py rule 5) nor on a family it learned from no market of (here the
    # barriers: none has ended in two days, rule 6): those stay no_model; every other
    # row has its view.
    trained = json.loads((backfill.session.models / version / "card.json").read_text())[
        "trained_families"
    ]
    scored = [(f, p) for _, f, p, not_open, family in after if not not_open and family in trained]
    unlearned = [(f, p) for _, f, p, _, family in after if family not in trained]
    assert scored and all(prob is not None for _, prob in scored)
    assert not any("no_model" in (flags or "") for flags, _ in scored)
    assert unlearned and all(p is None and "no_model" in f for f, p in unlearned)
    assert f"edge report of window {newest:%Y-%m-%d-%H:%M} refreshed" in result.output
