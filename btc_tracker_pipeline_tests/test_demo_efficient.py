"""`btc-tracker demo` runs on the efficient world by default (bias 0, noise 0): no model
can beat that market, so whatever the date, it recommends no trade and paper-trades
nothing. Two fixed dates and the wall clock; each is a whole 4-day demo (minutes)."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from btc_tracker_pipeline.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.mark.parametrize("now", ["2026-03-01T00:00:00Z", "2026-08-15T12:07:00Z", None])
def test_the_default_demo_recommends_no_trade_on_any_date(now, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("BTC_TRACKER_DAGSTER_STORAGE", str(tmp_path / "dagster"))
    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "models"))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name in ("BTC_TRACKER_GAMMA_URL", "BTC_TRACKER_CLOB_URL", "BTC_TRACKER_BINANCE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["demo", "--days", "4", *(["--now", now] if now else [])])
    assert result.exit_code == 0, result.output
    assert "world: efficient (bias 0, noise 0)" in result.output
    assert "model (walk-forward, out of sample)" in result.output  # it trained
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        newest, rows, buys = conn.execute(
            "SELECT max(window_start), count(*), count(*) FILTER (WHERE recommendation != 'PASS') "
            "FROM edge_report WHERE window_start = (SELECT max(window_start) FROM edge_report)"
        ).fetchone()
        trades = conn.execute("SELECT count(*) FROM paper_trades").fetchone()[0]
        scored = conn.execute(
            "SELECT count(model_prob) FROM edge_report WHERE window_start = ?", [newest]
        ).fetchone()[0]
    assert rows > 20 and scored > 0  # the model scored the newest window …
    assert buys == 0 and trades == 0, result.output  # … and found nothing to trade
    assert f"0 of {rows} markets" in result.output
    # It ends with the health table, as of the world's clock: the last 24 h all collected.
    health = result.output[result.output.index("health as of") :]
    assert result.output.index("edge report, window") < result.output.index("health as of")
    day = next(line for line in health.splitlines() if line.startswith("uptime, last 24 h"))
    assert "100.0 %" in day and "96 windows" in day and "pass" in day
    assert "health: " in health and "not meaningful yet" in health
