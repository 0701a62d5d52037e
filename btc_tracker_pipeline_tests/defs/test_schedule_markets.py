"""Which markets the 15-minute schedule collects, set without code: BTC_TRACKER_MARKET_IDS
(in the service's settings file or the root .env) becomes the tick's run config, the same
selection as ``btc-tracker collect --market-ids``; unset, every BTC market."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from btc_tracker_pipeline.definitions import defs
from btc_tracker_pipeline.environment import ConfigurationError
from btc_tracker_pipeline.market_selection import families, market_ids
from btc_tracker_pipeline.runner import ChunkOutcome, run_windows
from btc_tracker_pipeline.warehouse import warehouse
from btc_tracker_pipeline_tests.defs.test_chosen_markets import PER_MARKET, by_market

KEY = "2026-02-28-23:30"
TICK = datetime(2026, 2, 28, 23, 45, tzinfo=UTC)  # the tick that collects KEY


def tick_request(at: datetime = TICK) -> dg.RunRequest:
    """The run request collect_job_schedule makes at ``at``, as the daemon evaluates it."""
    d = defs()
    schedule = d.resolve_schedule_def("collect_job_schedule")
    with dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=d.get_repository_def()
    ) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    return request


def clear_settings(monkeypatch, tmp_path) -> None:
    """No market setting, and the models in a temporary folder."""
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("BTC_TRACKER_MARKET_IDS", raising=False)
    monkeypatch.delenv("BTC_TRACKER_FAMILIES", raising=False)


def run_tick(instance: dg.DagsterInstance) -> tuple[dg.RunRequest, ChunkOutcome]:
    """The schedule's request at TICK, and the outcome of running it on ``instance``."""
    request = tick_request()
    [outcome] = run_windows(
        [request.partition_key], run_config=request.run_config, instance=instance
    )
    return request, outcome


@pytest.mark.integration
def test_a_tick_with_market_ids_set_collects_them_and_keeps_the_other_markets_rows(
    replay_env, tmp_path, monkeypatch
):
    clear_settings(monkeypatch, tmp_path)
    path = replay_env["BTC_TRACKER_WAREHOUSE"]
    with dg.instance_for_test() as instance:
        every, whole = run_tick(instance)
        assert market_ids(every.run_config) == ()
        assert whole.success
        before = by_market(path)
        assert len(before["tracked_markets"]) > 100
        ids = sorted(before["market_snapshots"])[:2]

        monkeypatch.setenv("BTC_TRACKER_MARKET_IDS", f" {ids[0]}, {ids[1]} ,")
        chosen, outcome = run_tick(instance)
        assert (chosen.partition_key, chosen.run_key) == (KEY, KEY)
        assert market_ids(chosen.run_config) == tuple(ids)
        assert outcome.success
        run = instance.get_run_by_id(outcome.run_id)
        assert market_ids(run.run_config) == tuple(ids)

    after = by_market(path)
    for table in PER_MARKET:
        assert after[table].keys() == before[table].keys(), f"{table} lost or gained markets"
        others = {m: r for m, r in before[table].items() if m not in ids}
        assert {m: after[table][m] for m in others} == others, f"{table}: other markets moved"


@pytest.mark.unit
def test_bad_market_ids_fail_the_tick_with_one_line_naming_the_setting(monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_MARKET_IDS", "1344329,abc")
    with pytest.raises(dg.DagsterUserCodeExecutionError) as failed:
        tick_request()
    cause = failed.value.__cause__
    assert isinstance(cause, ConfigurationError)
    assert str(cause) == (
        "BTC_TRACKER_MARKET_IDS='1344329,abc': not Gamma market ids (digits only): abc; "
        "expected e.g. 1344329,1344330, or unset for every BTC market"
    )


def family_of(path: str, family: str) -> set[str]:
    """The markets of ``family`` tracked in window KEY."""
    with warehouse(path, read_only=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT market_id FROM tracked_markets WHERE family = ?", [family]
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.integration
def test_a_tick_with_families_set_replaces_only_their_markets_rows(
    replay_env, tmp_path, monkeypatch
):
    clear_settings(monkeypatch, tmp_path)
    path = replay_env["BTC_TRACKER_WAREHOUSE"]
    with dg.instance_for_test() as instance:
        _, whole = run_tick(instance)
        assert whole.success
        before = by_market(path)
        hourly = family_of(path, "updown_1h")
        assert hourly and len(before["tracked_markets"]) > len(hourly) + 100
        with warehouse(path) as conn:  # as if the hourly markets' first collection failed
            conn.execute(
                "DELETE FROM market_snapshots WHERE market_id IN (SELECT unnest(?))",
                [sorted(hourly)],
            )

        monkeypatch.setenv("BTC_TRACKER_FAMILIES", "updown_1h")
        chosen, outcome = run_tick(instance)
        assert families(chosen.run_config) == ("updown_1h",)
        assert outcome.success

    after = by_market(path)
    for table in PER_MARKET:
        assert after[table].keys() == before[table].keys(), f"{table} lost or gained markets"
        others = {m: r for m, r in before[table].items() if m not in hourly}
        assert {m: after[table][m] for m in others} == others, f"{table}: other markets moved"


@pytest.mark.unit
def test_families_are_checked_and_exclusive_with_market_ids(monkeypatch):
    monkeypatch.delenv("BTC_TRACKER_MARKET_IDS", raising=False)
    monkeypatch.setenv("BTC_TRACKER_FAMILIES", "updown_15m,weekly")
    with pytest.raises(dg.DagsterUserCodeExecutionError) as failed:
        tick_request()
    assert str(failed.value.__cause__).startswith(
        "BTC_TRACKER_FAMILIES='updown_15m,weekly': unknown family weekly; expected some of "
    )
    monkeypatch.setenv("BTC_TRACKER_FAMILIES", "updown_15m")
    monkeypatch.setenv("BTC_TRACKER_MARKET_IDS", "1344329")
    with pytest.raises(dg.DagsterUserCodeExecutionError) as failed:
        tick_request()
    assert "both set" in str(failed.value.__cause__)


@pytest.mark.integration
def test_a_families_tick_with_none_of_them_open_succeeds_and_changes_nothing(
    replay_env, tmp_path, monkeypatch
):
    clear_settings(monkeypatch, tmp_path)
    path = replay_env["BTC_TRACKER_WAREHOUSE"]
    with dg.instance_for_test() as instance:
        _, whole = run_tick(instance)
        assert whole.success
        before = by_market(path)
        assert not family_of(path, "updown_4h")  # the simulated world lists none
        # A tick for a family with no market open: not a failure (no alert every tick).
        monkeypatch.setenv("BTC_TRACKER_FAMILIES", "updown_4h")
        _, outcome = run_tick(instance)
        assert outcome.success, outcome
    assert by_market(path) == before
