"""The btc-tracker command: help everywhere, clear one-line errors, and real runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.environment import replay_variables

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    "replay",
    "demo",
    "collect",
    "backfill",
    "ui",
    "train",
    "model",
    "edges",
    "markets",
    "stats",
    "history",
    "export",
    "health",
]
runner = CliRunner()


@pytest.mark.unit
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: btc-tracker " + command in result.output


@pytest.mark.unit
@pytest.mark.parametrize("command", ["demo", "replay"])
def test_demo_and_replay_take_the_worlds_noise(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())  # the help box wraps
    assert "--noise" in text and "(0 = none; 0.12 = the old default world)" in text


@pytest.mark.integration
def test_help_of_the_world_options_does_not_import_numpy():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from btc_tracker_pipeline.cli import app\n"
        "for command in ('demo', 'replay'):\n"
        "    assert '--noise' in CliRunner().invoke(app, [command, '--help']).output\n"
        "assert 'numpy' not in sys.modules, 'numpy imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.unit
def test_the_demo_says_which_world_it_collects():
    from btc_tracker_pipeline.cli import world_line

    assert world_line(0.0, 0.0) == (
        "world: efficient (bias 0, noise 0): no model can beat this market; "
        "any skill shown would be a leak"
    )
    assert (
        world_line(0.5, 0.12) == "world: bias 0.5, noise 0.12 (distorted: the market is beatable)"
    )
    assert world_line(0.0, 0.12) == "world: bias 0, noise 0.12 (distorted: the market is beatable)"
    assert "distorted" in world_line(-0.2, 0.0)


@pytest.mark.unit
def test_bad_partition_key_is_a_one_line_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "w.duckdb"))
    result = runner.invoke(app, ["collect", "--partition", "2026-13-01-00:00"])
    assert result.exit_code == 1
    assert "is not a partition key" in result.output


@pytest.mark.unit
def test_bad_market_ids_are_refused_before_any_request(tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "w.duckdb"))
    result = runner.invoke(
        app, ["collect", "--partition", "2026-02-28-23:30", "--market-ids", "12,abc"]
    )
    assert result.exit_code == 1
    assert "not Gamma market ids" in result.output and "abc" in result.output


@pytest.mark.unit
def test_bad_fault_spec_is_a_user_error():
    result = runner.invoke(app, ["replay", "--faults", "teapot=0.5"])
    assert result.exit_code == 1
    assert "--faults" in result.output


def dump(path: Path) -> dict[str, list[tuple]]:
    order = {
        "tracked_markets": "window_start, market_id",
        "market_snapshots": "window_start, market_id",
        "btc_spot_prices": "open_time",
        "btc_spot_windows": "window_start",
    }
    with duckdb.connect(str(path), read_only=True) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall() for t, o in order.items()
        }


@pytest.mark.integration
def test_dagster_cli_materializes_a_window_twice_with_identical_rows(tmp_path):
    """The issue's acceptance run: replay --seed 7 --days 2 --now 2026-03-01T00:00:00Z,
    then `dagster asset materialize ... --partition 2026-02-28-23:30`, twice."""
    replay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "btc_tracker_pipeline.cli",
            "replay",
            "--port",
            "0",
            "--seed",
            "7",
            "--days",
            "2",
            "--now",
            "2026-03-01T00:00:00Z",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = replay.stdout.readline()
        url = line.split(" on ")[1].split()[0]
        env = os.environ | {
            "DAGSTER_HOME": str(ROOT),
            "BTC_TRACKER_DAGSTER_STORAGE": str(tmp_path / "dagster"),
            "BTC_TRACKER_WAREHOUSE": str(tmp_path / "w.duckdb"),
            **replay_variables(url),
        }
        cmd = [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "btc_tracker_pipeline.definitions",
            "--select",
            "tracked_markets,market_snapshots,btc_spot_prices",
            "--partition",
            "2026-02-28-23:30",
        ]
        dumps = []
        for _ in range(2):
            proc = subprocess.run(
                # Not from the root, whose .env would override DAGSTER_HOME and storage.
                cmd,
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            dumps.append(dump(tmp_path / "w.duckdb"))
    finally:
        replay.terminate()
        replay.wait(timeout=30)
    assert len(dumps[0]["tracked_markets"]) > 20
    assert len(dumps[0]["market_snapshots"]) > 20
    assert len(dumps[0]["btc_spot_prices"]) == 15
    assert dumps[0] == dumps[1]


@pytest.mark.unit
def test_broken_recorded_data_is_a_one_line_error_naming_file_and_line(tmp_path):
    (tmp_path / "markets.jsonl").write_text("{not json}\n")
    (tmp_path / "klines.csv").write_text(
        "open_time_ms,open,high,low,close,volume\n"
        "1773259200000,80000,80010,79990,80005,1.5\n"
        "1773259260000,80005,80020,80000,80010,2.0\n"
    )
    result = runner.invoke(app, ["replay", "--data", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1
    assert "markets.jsonl:1" in result.output
    assert "Traceback" not in result.output


@pytest.mark.unit
def test_recorded_15_minute_candles_are_refused_in_one_line_at_start(tmp_path):
    (tmp_path / "markets.jsonl").write_text("")
    (tmp_path / "klines.csv").write_text(
        "open_time_ms,open,high,low,close,volume\n"
        + "".join(f"{1773259200000 + i * 900_000},80000,80010,79990,80005,1.5\n" for i in range(8))
    )
    result = runner.invoke(app, ["replay", "--data", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1
    assert "holds 15-minute candles (900 s apart); the pipeline needs 1-minute" in " ".join(
        result.output.split()
    )
    assert "Traceback" not in result.output and "replay server on" not in result.output


@pytest.mark.unit
def test_model_command_without_a_model_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "models"))
    result = runner.invoke(app, ["model", "--json"])
    assert result.exit_code == 1
    assert "run price_model first" in result.output
