"""Alerts reach a real loopback webhook (a Slack-compatible receiver in a thread): a failed
collect_job run posts once with the job, the window, the run id and the failed step; a
stale warehouse posts once per incident; a webhook that is down is a log line, never an
exception in the sensor."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from btc_tracker_pipeline.alerts import Alert, notify
from btc_tracker_pipeline.defs.maintenance.alerts import run_failure_alert, stale_data_alert
from btc_tracker_pipeline.defs.resources import AlertResource, ClockResource, WarehouseResource
from btc_tracker_pipeline.environment import ConfigurationError
from btc_tracker_pipeline.runner import run_windows
from btc_tracker_pipeline.warehouse import warehouse
from btc_tracker_pipeline_tests.e2e.helpers import free_port

KEY = "2026-02-28-23:30"
UI = "http://127.0.0.1:3000"


class Receiver:
    """A webhook on loopback that records every POSTed JSON body and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


@pytest.mark.integration
def test_a_failed_collect_run_posts_one_alert_with_job_window_run_and_step(
    replay_env, tmp_path, monkeypatch, receiver
):
    monkeypatch.setenv("BTC_TRACKER_MODELS", str(tmp_path / "models"))
    # A real collect_job run that fails in one step: a quote age limit beyond a day.
    bad = {"ops": {"market_snapshots": {"config": {"max_quote_age_min": 5000.0}}}}
    with dg.instance_for_test() as instance:
        [outcome] = run_windows([KEY], run_config=bad, instance=instance)
        assert not outcome.success
        run = instance.get_run_by_id(outcome.run_id)
        [failure] = instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_event=failure.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"alerts": AlertResource(webhook_url=receiver.url, ui_url=UI)},
        ).for_run_failure()
        run_failure_alert(context)

    [text] = receiver.texts
    assert text.startswith("btc-tracker alert: run failed: collect_job, ")
    assert f"window {KEY}" in text
    assert f"run {outcome.run_id}" in text
    assert "market_snapshots: " in text and "max_quote_age_min" in text
    assert text.endswith(f"({UI}/runs/{outcome.run_id})")
    assert "\n" not in text


def write_window(path: str, start: datetime) -> None:
    """One market's snapshot in the window starting at ``start``: a collected window."""
    with warehouse(path) as conn:
        conn.execute(
            "INSERT INTO market_snapshots (window_start, window_end, market_id, snapshot_ts, "
            "source) VALUES (?, ? + INTERVAL 15 MINUTE, '1', ?, 'live')",
            [start, start, start],
        )


def evaluate(alerts: AlertResource, path: str, now: str, cursor: str | None):
    """One evaluation of stale_data_alert at ``now`` (ISO, UTC) after ``cursor``."""
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={
            "alerts": alerts,
            "warehouse": WarehouseResource(path=path),
            "clock": ClockResource(now_utc=now),
        },
    )
    return stale_data_alert.evaluate_tick(context)


@pytest.mark.integration
def test_a_stale_warehouse_alerts_once_per_incident(tmp_path, receiver, caplog):
    path = str(tmp_path / "warehouse.duckdb")
    alerts = AlertResource(webhook_url=receiver.url, ui_url=UI, stale_windows="2")
    write_window(path, datetime(2026, 3, 1, 10, 0))
    cursor = None
    timeline = []
    # 10:25: window 10:00 is the newest that should be in (10:15 is within its tick's
    # grace): fresh. 10:55: 10:15 and 10:30 missed, an incident: one alert. 11:10, still
    # stale: none. Then window 11:00 arrives: recovered at 11:20. 12:05: 11:15, 11:30 and
    # 11:45 missed: a new incident, a new alert.
    for now, arrives in [
        ("2026-03-01T10:25:00", None),
        ("2026-03-01T10:55:00", None),
        ("2026-03-01T11:10:00", None),
        ("2026-03-01T11:20:00", datetime(2026, 3, 1, 11, 0)),
        ("2026-03-01T12:05:00", None),
    ]:
        if arrives:
            write_window(path, arrives)
        with caplog.at_level(logging.WARNING, logger="btc_tracker_pipeline.alerts"):
            result = evaluate(alerts, path, now, cursor)
        cursor = result.cursor
        timeline.append((now[11:16], len(receiver.texts), result.skip_message))

    assert [(t, n) for t, n, _ in timeline] == [
        ("10:25", 0),
        ("10:55", 1),
        ("11:10", 1),
        ("11:20", 1),
        ("12:05", 2),
    ], timeline
    first, second = receiver.texts
    assert first.startswith("btc-tracker alert: windows missed: collect_job: ")
    assert "newest window 2026-03-01-10:00, 2 window(s) missed (due: 2026-03-01-10:30)" in first
    assert "newest window 2026-03-01-11:00, 3 window(s) missed (due: 2026-03-01-11:45)" in second
    assert f"({UI}/locations/" in first
    # The same two lines in the log (the daemon's stderr: the journal).
    logged = [r.getMessage() for r in caplog.records if r.name == "btc_tracker_pipeline.alerts"]
    assert logged == [first, second]


@pytest.mark.integration
def test_a_webhook_that_is_down_is_a_log_line_not_a_failed_sensor(tmp_path, caplog):
    path = str(tmp_path / "warehouse.duckdb")
    write_window(path, datetime(2026, 3, 1, 10, 0))
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    alerts = AlertResource(webhook_url=down, stale_windows="2")
    with caplog.at_level(logging.WARNING, logger="btc_tracker_pipeline.alerts"):
        result = evaluate(alerts, path, "2026-03-01T11:00:00", None)
    assert result.cursor == "2026-03-01-10:00"  # the incident is recorded: no repeat
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0][0] == "WARNING" and lines[0][1].startswith("btc-tracker alert: ")
    level, message = lines[1]
    assert level == "ERROR"
    assert message.startswith("alert webhook failed: ConnectError")
    assert message.endswith("(3 attempts); the alert is in this log only")


@pytest.mark.unit
def test_a_webhook_answering_500_is_tried_three_times_then_logged(caplog):
    hook = Receiver(status=500)
    try:
        with caplog.at_level(logging.WARNING, logger="btc_tracker_pipeline.alerts"):
            sent = notify(Alert("run failed", job="train_job"), hook.url, backoff_s=(0.0,))
    finally:
        hook.close()
    assert sent is False
    assert hook.texts == ["btc-tracker alert: run failed: train_job"] * 3
    assert caplog.records[-1].getMessage() == (
        f"alert webhook failed: HTTP 500 from {hook.url} (3 attempts); "
        "the alert is in this log only"
    )


@pytest.mark.unit
def test_a_bad_stale_windows_setting_is_one_line():
    with pytest.raises(ConfigurationError) as bad:
        AlertResource(stale_windows="0").limit()
    assert str(bad.value) == (
        "BTC_TRACKER_ALERT_STALE_WINDOWS='0': expected a whole number of 15-minute windows "
        "from 1 to 96, e.g. 2"
    )


@pytest.mark.unit
def test_a_webhook_url_the_client_cannot_encode_is_logged_not_raised(caplog):
    # Passes the http(s)-with-a-host check; fails only when the client encodes the host.
    with caplog.at_level(logging.WARNING, logger="btc_tracker_pipeline.alerts"):
        sent = notify(Alert("run failed", job="collect_job"), "http://hooks.slack..com/x")
    assert not sent
    assert any(
        r.getMessage().startswith("alert webhook failed: UnicodeError") for r in caplog.records
    )
