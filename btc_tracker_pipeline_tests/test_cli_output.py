"""What `btc-tracker` prints in a pipe or a log: every value whole at any COLUMNS, the
replay hint on one line, `--version`, and one-line errors for bad numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline import cli
from btc_tracker_pipeline.cli import app
from btc_tracker_pipeline.model.edges import INPUT_SCHEMA, edge_report
from btc_tracker_pipeline.warehouse import open_warehouse

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
QUESTION = "Will the price of Bitcoin be above $104,000 on March 1, 2026 at 12:00 ET?"
WINDOW = datetime(2026, 2, 28, 23, 45)


def cli_process(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """`btc-tracker ARGS` in a child process, stdout and stderr pipes, at 40 columns."""
    full_env = {**os.environ, "COLUMNS": "40", "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "btc_tracker_pipeline.cli", *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = cli_process(*args, env=env)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def edge_inputs() -> pl.DataFrame:
    """Two markets of one window: a YES edge and a PASS."""
    rows = []
    for market_id, model_prob in (("3253104567", 0.71), ("3253104568", 0.5)):
        rows.append(
            {
                "window_start": WINDOW,
                "market_id": market_id,
                "family": "above",
                "question": QUESTION if model_prob > 0.6 else "Will Bitcoin reach $150,000?",
                "cluster": "btc-above-mar-1",
                "market_prob": 0.5,
                "best_bid": 0.49,
                "best_ask": 0.51,
                "model_prob": model_prob,
                "structural_probability": 0.6,
                "fees_enabled": True,
                "fee_rate": 0.07,
                "fee_exponent": 1.0,
                "time_to_expiry_hours": 12.0,
                "q_spot": 1,
                "parse_source": "regex",
                "barrier_touched": False,
            }
        )
    return pl.DataFrame(rows, schema=INPUT_SCHEMA)


def stored_edge_report(path: Path, model_version: str) -> pl.DataFrame:
    """Write edge_report() of edge_inputs() as the newest window of the warehouse at
    ``path``, scored by ``model_version``; return it."""
    report = edge_report(edge_inputs()).with_columns(
        window_end=pl.lit(datetime(2026, 3, 1)),
        model_version=pl.lit(model_version),
        in_sample=pl.lit(False),
    )
    conn = open_warehouse(path)
    try:
        conn.register("report", report.to_arrow())
        conn.execute("INSERT INTO edge_report BY NAME SELECT * FROM report")
    finally:
        conn.close()
    return report


@pytest.fixture
def edges_warehouse(tmp_path) -> tuple[Path, dict]:
    """A warehouse whose newest edge report is edge_report() of edge_inputs()."""
    path = tmp_path / "warehouse.duckdb"
    report = stored_edge_report(path, "test")
    best = report.filter(pl.col("recommendation") != "PASS").to_dicts()[0]
    return path, best


@pytest.mark.integration
def test_edges_in_a_pipe_shows_whole_ids_questions_edges_and_ev(edges_warehouse):
    path, best = edges_warehouse
    code, out, err = run_cli("edges", env={"BTC_TRACKER_WAREHOUSE": str(path)})
    assert code == 0, err
    assert "…" not in out
    line = next(line for line in out.splitlines() if best["market_id"] in line)
    for cell in (
        QUESTION,
        "BUY YES",
        f"{best['net_edge']:+.3f}",
        f"{best['ev_per_dollar']:+.3f}",
        f"{best['stake']:.2f}",
    ):
        assert cell in line, line
    assert "EV/$" in out and "question" in out


@pytest.mark.unit
def test_tables_are_never_squeezed_when_stdout_is_not_a_terminal(edges_warehouse, monkeypatch):
    """A console created at 40 columns (COLUMNS read at import) still prints whole rows
    when its output is not a terminal (CliRunner's stdout is not one)."""
    path, best = edges_warehouse
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    monkeypatch.setattr(cli.console, "width", 40)
    result = runner.invoke(app, ["edges"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert any(
        best["market_id"] in line and QUESTION in line and f"{best['ev_per_dollar']:+.3f}" in line
        for line in result.stdout.splitlines()
    )


MODEL_VERSION = "20260301T000000000000Z"


@pytest.fixture
def gated_edges(tmp_path, monkeypatch) -> Path:
    """A warehouse whose newest edge report (a BUY YES on ``above``) was scored by model
    MODEL_VERSION, and an empty models folder; returns the folder."""
    path = tmp_path / "warehouse.duckdb"
    stored_edge_report(path, MODEL_VERSION)
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(models))
    return models


def write_card(models: Path, metrics: dict) -> None:
    folder = models / MODEL_VERSION
    folder.mkdir(exist_ok=True)
    (folder / "card.json").write_text(json.dumps({"metrics": metrics}))


def min_edge_rows() -> list[dict]:
    result = runner.invoke(app, ["edges", "--min-edge", "0.05", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["rows"]


@pytest.mark.unit
def test_edges_min_edge_recompute_keeps_the_skill_gate(gated_edges):
    write_card(gated_edges, {"skill_test": {"proven_families": ["updown_1h"]}})
    rows = {r["market_id"]: r for r in min_edge_rows()}
    gated = rows["3253104567"]
    assert gated["recommendation"] == "PASS" and gated["side"] == "YES"
    assert "no_proven_skill" in gated["flags"] and gated["stake"] == 0.0
    result = runner.invoke(app, ["edges", "--min-edge", "0.05"])
    assert "no_proven_skill" in result.stdout
    assert "proved no skill against the market in above" in " ".join(result.stdout.split())
    # The same model proving skill on above: the recompute recommends it.
    write_card(gated_edges, {"skill_test": {"proven_families": ["above"]}})
    rows = {r["market_id"]: r for r in min_edge_rows()}
    assert rows["3253104567"]["recommendation"] == "BUY YES"
    assert "no_proven_skill" not in rows["3253104567"]["flags"]


@pytest.mark.unit
def test_edges_min_edge_with_an_old_card_or_no_model_gates_everything(gated_edges):
    assert {r["recommendation"] for r in min_edge_rows()} == {"PASS"}  # the model is gone
    write_card(gated_edges, {"overall": {}, "by_family": {}})  # saved before skill_test
    rows = min_edge_rows()
    assert {r["recommendation"] for r in rows} == {"PASS"}
    assert any("no_proven_skill" in r["flags"] for r in rows)


@pytest.mark.unit
def test_model_card_says_insufficient_clusters_and_the_skill_test(tmp_path, monkeypatch):
    import numpy as np
    import xgboost as xgb

    from btc_tracker_pipeline.model import metrics
    from btc_tracker_pipeline.model.artifact import save_model
    from btc_tracker_pipeline.model.dataset import FEATURES
    from btc_tracker_pipeline.model.train import Model
    from btc_tracker_pipeline_tests.model.test_metrics import skill_frame

    rng = np.random.default_rng(0)
    data = xgb.DMatrix(
        rng.uniform(size=(20, len(FEATURES))), label=rng.integers(0, 2, 20), feature_names=FEATURES
    )
    model = Model(booster=xgb.train({}, data, 1), features=list(FEATURES))
    pred = pl.concat([skill_frame({"above": 2}, markets_per_cluster=11), skill_frame({"b": 30})])
    card = {
        "data_window": {"first_snapshot": "a", "last_snapshot": "b"},
        "n_markets": 322,
        "n_rows": 322,
        "metrics": metrics.evaluation_report(pred, n_boot=100),
    }
    save_model(model, card, tmp_path / "models")
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    result = runner.invoke(app, ["model"])
    assert result.exit_code == 0, result.output
    above = next(line for line in result.stdout.splitlines() if "│   above │" in line)
    assert "(insufficient clusters (2))" in above and "[" not in above
    text = " ".join(result.stdout.split())
    assert "Skill test (Bonferroni, 1 family at 95.00 %): proven in b" in text


@pytest.mark.integration
def test_the_replay_hint_is_one_line_to_paste(tmp_path):
    proc = cli_process("replay", "--port", "0", "--days", "1", "--now", "2026-03-01T00:00:00Z")
    try:
        first = proc.stdout.readline()
        hint = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert first.startswith("replay server on http://127.0.0.1:"), first
    url = first.split()[3]
    assert hint.strip() == (
        f"export BTC_TRACKER_GAMMA_URL={url}/gamma BTC_TRACKER_CLOB_URL={url}/clob "
        f"BTC_TRACKER_BINANCE_URL={url}/binance"
    )


@pytest.mark.unit
def test_version():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"btc-tracker {version('btc-tracker-pipeline')}"


# --------------------------------------------------------------------------- numeric options

BAD_NUMBERS = [
    ("demo", "--days", "100000", "at most"),
    ("demo", "--days", "nan", "not a finite number"),
    ("demo", "--days", "inf", "not a finite number"),
    ("demo", "--days", "0", "not > 0"),
    ("demo", "--bias", "1", "not in (-1, 1)"),
    ("demo", "--noise", "nan", "not a finite number"),
    ("demo", "--noise", "-0.1", "not in [0, 2]"),
    ("demo", "--now", "2099-01-01T00:00:00Z", "is in the future"),
    ("demo", "--now", "yesterday", "not an ISO time"),
    ("demo", "--seed", "-1", ""),
    ("demo", "--port", "65536", ""),
    ("replay", "--days", "1e12", "at most"),
    ("replay", "--days", "nan", "not a finite number"),
    ("replay", "--days", "-2", "not > 0"),
    ("replay", "--bias", "nan", "not a finite number"),
    ("replay", "--bias", "-1", "not in (-1, 1)"),
    ("replay", "--noise", "nan", "not a finite number"),
    ("replay", "--noise", "inf", "not a finite number"),
    ("replay", "--noise", "2.5", "not in [0, 2]"),
    ("replay", "--strikes", "0", ""),
    ("replay", "--strikes", "4001", ""),
    ("replay", "--port", "-1", ""),
    ("replay", "--seed", "abc", ""),
    ("ui", "--port", "70000", ""),
    ("ui", "--seed", "-3", ""),
    ("train", "--min-markets", "0", ""),
    ("edges", "--limit", "0", ""),
    ("edges", "--min-edge", "1", "not in [0, 1)"),
    ("edges", "--min-edge", "nan", "not a finite number"),
    ("edges", "--min-edge", "-0.1", "not in [0, 1)"),
    ("markets", "--min-volume", "inf", "not a finite number"),
    ("markets", "--min-volume", "-1", ""),
    ("markets", "--limit", "-1", ""),
    ("stats", "--wait", "nan", ""),
    ("stats", "--wait", "-1", ""),
    ("export", "--wait", "1e9", ""),
    ("history", "--tail", "-1", ""),
    ("history", "--wait", "inf", ""),
]


@pytest.mark.unit
@pytest.mark.parametrize(("command", "option", "value", "says"), BAD_NUMBERS)
def test_a_bad_number_is_a_one_line_usage_error(
    command, option, value, says, tmp_path, monkeypatch
):
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "w.duckdb"))
    args = [command, option, value]
    if command == "history":
        args.insert(1, "1")
    if command == "export":
        args += ["--table", "markets", "--out", str(tmp_path / "m.csv")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.output
    assert lines[0].startswith(f"error: Invalid value for '{option}'"), lines[0]
    assert says in lines[0]
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []  # nothing started: no warehouse, no export


@pytest.mark.unit
def test_demo_days_up_to_the_first_partition_are_accepted_and_the_maximum_is_named():
    result = runner.invoke(app, ["demo", "--days", "100000"])
    most = float(result.output.split("at most ")[1].split()[0])
    assert 700 < most < 100000
    assert "2025-01-01-00:00" in result.output


@pytest.mark.unit
def test_the_cli_repeats_the_simulated_worlds_limits():
    from btc_tracker_pipeline.replay import simulated

    assert cli.MAX_STRIKES == simulated.MAX_STRIKES
    assert cli.MAX_NOISE == simulated.MAX_NOISE
    simulated.SimulatedWorld(seed=2**63 - 1, days=1, bias=0.99, noise=cli.MAX_NOISE)
    assert cli.NOISE_RANGE(0.0) == 0.0 and cli.NOISE_RANGE(cli.MAX_NOISE) == cli.MAX_NOISE
    with pytest.raises(ValueError):
        simulated.SimulatedWorld(bias=1.0)
    with pytest.raises(ValueError):
        simulated.SimulatedWorld(days=1, noise=cli.MAX_NOISE + 1e-9)


# --------------------------------------------------------------------------- configuration

BAD_VARIABLES = [
    ("BTC_TRACKER_HTTP_TIMEOUT_S", "abc"),
    ("BTC_TRACKER_HTTP_TIMEOUT_S", "-1"),
    ("BTC_TRACKER_HTTP_TIMEOUT_S", "nan"),
    ("BTC_TRACKER_MAX_QUOTE_AGE_MIN", "0"),
    ("BTC_TRACKER_MAX_QUOTE_AGE_MIN", "a day"),
    ("BTC_TRACKER_GAMMA_URL", "ftp://x"),
    ("BTC_TRACKER_CLOB_URL", "localhost:8765"),
    ("BTC_TRACKER_BINANCE_URL", "http://"),
    ("BTC_TRACKER_WAREHOUSE", ""),
    ("BTC_TRACKER_MODELS", " "),
    ("BTC_TRACKER_FIRST_PARTITION", "2026-13-01"),
    ("BTC_TRACKER_FIRST_PARTITION", "2026-03-01-10:07"),
    ("BTC_TRACKER_ALERT_WEBHOOK", "http://hooks.slack..com/x"),
    ("BTC_TRACKER_ALERT_STALE_WINDOWS", "0"),
]
CONFIGURED_COMMANDS = [
    ["collect", "--partition", "2026-02-28-23:30"],
    ["backfill", "--from", "2026-02-28-23:00", "--to", "2026-02-28-23:30"],
    ["demo", "--days", "0.05"],
    ["train"],
    ["ui"],
    ["model"],
    ["edges"],
    ["dataset", "--out", "{tmp}/d.parquet"],
    ["markets"],
    ["stats"],
    ["history", "1"],
    ["export", "--table", "markets", "--out", "{tmp}/m.csv"],
]


class CountingHandler(BaseHTTPRequestHandler):
    requests = 0

    def do_GET(self) -> None:
        CountingHandler.requests += 1
        self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def counting_server() -> Iterator[str]:
    """An HTTP server that counts the requests it gets; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.unit
@pytest.mark.parametrize("args", CONFIGURED_COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize(("name", "value"), BAD_VARIABLES)
def test_a_bad_variable_is_one_line_before_any_request(
    args, name, value, counting_server, tmp_path, monkeypatch
):
    work = tmp_path / "work"
    work.mkdir()
    for url_name, path in (("GAMMA", "gamma"), ("CLOB", "clob"), ("BINANCE", "binance")):
        monkeypatch.setenv(f"BTC_TRACKER_{url_name}_URL", f"{counting_server}/{path}")
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(work / "w.duckdb"))
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(work / "models"))
    monkeypatch.setenv("BTC_TRACKER_DAGSTER_STORAGE", str(work / "dagster"))
    monkeypatch.setenv(name, value)
    before = CountingHandler.requests
    result = runner.invoke(app, [a.format(tmp=work) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [f"error: {name}={value!r}: " + lines[0].split(": ", 2)[2]], result.output
    assert "expected" in lines[0]
    assert CountingHandler.requests == before
    assert list(work.iterdir()) == []


@pytest.mark.unit
def test_dagster_refuses_to_load_the_code_location_with_a_bad_variable(monkeypatch):
    from btc_tracker_pipeline.definitions import defs
    from btc_tracker_pipeline.environment import ConfigurationError

    monkeypatch.setenv("BTC_TRACKER_CLOB_URL", "localhost:8765")
    with pytest.raises(Exception) as info:
        defs()
    causes, error = [], info.value
    while error is not None:
        causes.append(error)
        error = error.__cause__ or error.__context__
    found = [c for c in causes if isinstance(c, ConfigurationError)]
    assert found and str(found[0]).startswith("BTC_TRACKER_CLOB_URL='localhost:8765': expected")


@pytest.mark.unit
def test_a_run_refuses_a_bad_url_at_once():
    from btc_tracker_pipeline.defs.resources import BinanceResource, PolymarketResource
    from btc_tracker_pipeline.environment import ConfigurationError

    with pytest.raises(ConfigurationError, match="BTC_TRACKER_GAMMA_URL='ftp://x'"):
        PolymarketResource(gamma_url="ftp://x").setup_for_execution(None)
    with pytest.raises(ConfigurationError, match="BTC_TRACKER_BINANCE_URL='x:1'"):
        BinanceResource(base_url="x:1").client()


@pytest.mark.unit
def test_ui_starts_the_partitions_at_the_day_of_the_first_collected_window(tmp_path, monkeypatch):
    from btc_tracker_pipeline import cli
    from btc_tracker_pipeline.warehouse import warehouse

    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(path))
    # Set, then removed: monkeypatch then restores the variable the command sets.
    monkeypatch.setenv("BTC_TRACKER_FIRST_PARTITION", "")
    monkeypatch.delenv("BTC_TRACKER_FIRST_PARTITION")
    cli._show_partitions_from_first_window()  # no warehouse: Dagster's default stays
    assert "BTC_TRACKER_FIRST_PARTITION" not in os.environ
    with warehouse(path) as conn:
        for day in (3, 2):
            start = datetime(2026, 12, day, 10, 15)
            conn.execute(
                "INSERT INTO collection_runs VALUES "
                "(?, NULL, 'market_snapshots', ?, ?, ?, ?, 1.0, 1, 1, 1, 0, 'ok', '')",
                [f"r{day}", start, start + timedelta(minutes=15), start, start],
            )
    cli._show_partitions_from_first_window()
    assert os.environ["BTC_TRACKER_FIRST_PARTITION"] == "2026-12-02"
    monkeypatch.setenv("BTC_TRACKER_FIRST_PARTITION", "2026-01-01")
    cli._show_partitions_from_first_window()  # the user's setting wins
    assert os.environ["BTC_TRACKER_FIRST_PARTITION"] == "2026-01-01"
