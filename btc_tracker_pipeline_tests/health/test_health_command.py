"""`btc-tracker health` and the `health` asset on a warehouse the real pipeline built: the
replay world (seed 7) through Dagster — sixteen windows with one missed, the newest one
collected live as the schedule's tick would — then the table, its JSON and its errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import typer
from typer.testing import CliRunner

from btc_tracker_pipeline import cli_health, cli_read
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_windows

pytestmark = pytest.mark.integration

FIRST, MISSED, LAST = "2026-02-28-20:00", "2026-02-28-22:00", "2026-02-28-23:45"
TICK = datetime(2026, 3, 1, 0, 2)  # the schedule's tick for LAST: it is collected live
AS_OF = "2026-03-01T00:05:00Z"

app = typer.Typer(pretty_exceptions_enable=False)
app.command(name="health")(cli_health.health_command)
app.command(name="stats")(cli_read.stats_command)  # a second command keeps the name
runner = CliRunner()


@dataclass
class Built:
    warehouse: Path
    models: Path
    instance: dg.DagsterInstance


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("health")
    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    keys = partition_keys(FIRST, "2026-02-28-23:30")
    with replay_session(world, tmp) as session:
        before, after = keys[: keys.index(MISSED)], keys[keys.index(MISSED) + 1 :]
        outcomes = [*run_windows(before, instance=session.instance)]
        outcomes += run_windows(after, instance=session.instance)
        with assets_clock(TICK):
            outcomes += run_windows([LAST], instance=session.instance)
        assert all(o.success for o in outcomes)
        yield Built(session.warehouse, session.models, session.instance)


@pytest.fixture
def env(built, monkeypatch, tmp_path):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(built.warehouse))
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "no-models"))
    monkeypatch.setenv("COLUMNS", "250")
    for console in (cli_read.console, cli_read.err_console):
        monkeypatch.setattr(console, "_width", 250)
    return built


def health_json() -> dict[str, dict]:
    result = runner.invoke(app, ["health", "--json", "--now", AS_OF])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return {m["key"]: m for m in data["metrics"]} | {"_report": data}


def test_json_has_every_metric_with_target_value_sample_and_status(env):
    metrics = health_json()
    report = metrics.pop("_report")
    assert report["as_of"] == "2026-03-01T00:05:00"
    assert len(metrics) == 19
    for m in metrics.values():
        assert {"name", "target", "measured", "n", "min_n", "meaningful", "status"} <= set(m)
    # 16 windows scheduled since the first one, 22:00 missed: 15 / 16, too few to judge.
    uptime = metrics["uptime_all"]
    assert (uptime["measured"], uptime["n"], uptime["min_n"]) == (15 / 16, 16, 96)
    assert (uptime["meaningful"], uptime["status"]) == (False, "not meaningful yet")
    assert uptime["target"] == "> 99 %" and uptime["measured_text"] == "93.8 %"
    assert "15 of 16 windows" in uptime["detail"] and "(1 collected live)" in uptime["detail"]


def test_live_and_history_quality_are_reported_apart(env):
    metrics = health_json()
    live, history = metrics["quality_live"], metrics["quality_history"]
    # The tick's live quotes have a book, volume and liquidity; history rows never do.
    assert live["n"] > 100 and live["measured"] > 0.8 and live["status"] == "pass"
    assert history["n"] > 10 * live["n"] and history["measured"] == 0.0
    assert history["status"] == "info" and history["target"] == "—"
    assert any("score at most 0.4" in note for note in metrics["_report"]["notes"])


def test_the_live_tick_is_timed_and_backfills_are_not(env):
    metrics = health_json()
    p50 = metrics["latency_p50"]
    assert p50["n"] == 1 and p50["n_unit"] == "ticks"  # the tick, not the two backfill runs
    assert p50["status"] == "not meaningful yet"
    assert metrics["coverage"]["measured"] == 1.0  # every tracked market was quoted


def test_without_model_or_ledger_nothing_is_judged(env):
    metrics = health_json()
    for key in ("accuracy", "roc_auc", "precision"):
        assert metrics[key]["detail"] == "no model yet: btc-tracker train"
    for key in ("ledger_win_rate", "ledger_ev", "ledger_sharpe", "ledger_max_drawdown"):
        assert metrics[key]["detail"].startswith("no settled positions yet")
        assert metrics[key]["status"] == "not meaningful yet"


def test_table_in_a_pipe_has_one_line_per_metric(env):
    result = runner.invoke(app, ["health", "--now", AS_OF])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "health as of 2026-03-01 00:05 UTC: the targets from the original tracker's workflow"
    )
    uptime = next(line for line in lines if line.startswith("uptime, all time"))
    assert " ".join(uptime.split()) == (
        "uptime, all time > 99 % 93.8 % 16 windows no (needs 96) not meaningful yet "
        "15 of 16 windows 2026-02-28-20:00 … 2026-02-28-23:45 (1 collected live)"
    )
    assert any(line.startswith("win rate") for line in lines)
    assert lines[-1] == "health: 1 pass, 0 fail, 17 not meaningful yet (of 18 with a target)"


def test_missing_warehouse_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "none.duckdb"))
    result = runner.invoke(app, ["health"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no warehouse at {tmp_path / 'none.duckdb'}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_now_is_a_usage_error(env):
    result = runner.invoke(app, ["health", "--now", "yesterday"])
    assert result.exit_code == 2
    assert "'yesterday' is not an ISO time" in result.output


def test_the_schedules_tick_materializes_the_health_table(env):
    event = env.instance.get_latest_materialization_event(dg.AssetKey("health"))
    assert event is not None
    metadata = event.asset_materialization.metadata
    table = metadata["health"].value
    assert "| uptime, last 24 h | > 99 % |" in table
    assert "**trading: backtest (walk-forward paper_trades)**" in table
    assert metadata["quality_live"].value > 0.8  # the tick's live quotes
    assert metadata["metrics_fail"].value == 0
