"""The systemd units in deploy/systemd hold together: they parse, start the virtualenv's
``dagster-webserver`` and ``dagster-daemon`` on the checkout's workspace (the commands
``e2e/test_service.py`` runs), restart on failure, log to the journal, and read a
settings file whose paths are the ones the units use; ``systemd-analyze verify`` accepts
them where it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from btc_tracker_pipeline import environment
from btc_tracker_pipeline_tests.deploy_units import (
    CHECKOUT,
    DAEMON,
    SETTINGS,
    UNITS,
    VENV_BIN,
    WEBSERVER,
    exec_start,
    local_command,
    read_unit,
    settings,
)

pytestmark = pytest.mark.unit

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("name", [WEBSERVER, DAEMON])
def test_a_unit_restarts_on_failure_logs_to_the_journal_and_reads_the_settings(name):
    unit = read_unit(name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["RestartSec"] == "10s"
    assert service["StandardOutput"] == service["StandardError"] == "journal"
    assert service["EnvironmentFile"] == "/etc/btc-tracker.env"
    assert service["KillSignal"] == "SIGTERM"
    # The working folder is the instance's, never the checkout, whose .env would replace
    # the settings' DAGSTER_HOME and BTC_TRACKER_DAGSTER_STORAGE.
    assert service["WorkingDirectory"] == settings()["DAGSTER_HOME"]
    assert not service["WorkingDirectory"].startswith(CHECKOUT)
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_units_start_the_virtualenvs_webserver_and_daemon_on_the_workspace():
    workspace = f"{CHECKOUT}/workspace.yaml"
    assert exec_start(WEBSERVER) == [
        f"{VENV_BIN}/dagster-webserver",
        *("-h", "127.0.0.1", "-p", "3000", "-w", workspace),
    ]
    assert exec_start(DAEMON) == [f"{VENV_BIN}/dagster-daemon", "run", "-w", workspace]
    # What the service test starts: the same commands from this virtualenv and checkout.
    for name in (WEBSERVER, DAEMON):
        command = local_command(name, BIN)
        assert Path(command[0]).is_file(), command[0]
        assert command[command.index("-w") + 1] == str(UNITS.parents[1] / "workspace.yaml")


def test_the_settings_template_sets_the_paths_and_names_only_known_variables():
    values = settings()
    state = values["DAGSTER_HOME"]
    assert values[environment.ENV_STORAGE].startswith(state + "/")
    assert values[environment.ENV_WAREHOUSE].startswith(state + "/")
    assert values[environment.ENV_MODELS].startswith(state + "/")
    named = set(re.findall(r"^#?(BTC_TRACKER_[A-Z_0-9]+)=", SETTINGS.read_text(), re.M))
    known = {v for k, v in vars(environment).items() if k.startswith("ENV_")}
    known.add("BTC_TRACKER_FIRST_PARTITION")
    assert {
        environment.ENV_MARKET_IDS,
        environment.ENV_ALERT_WEBHOOK,
        environment.ENV_ALERT_STALE_WINDOWS,
    } <= named
    assert named <= known, named - known


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_units(tmp_path):
    # The units' paths made real on this machine; the rest of the files as they are.
    for name in (WEBSERVER, DAEMON):
        text = (UNITS / name).read_text()
        text = text.replace(VENV_BIN, str(BIN)).replace(CHECKOUT, str(UNITS.parents[1]))
        text = text.replace("/etc/btc-tracker.env", str(SETTINGS))
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / WEBSERVER), str(tmp_path / DAEMON)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # systemd < 254 does not know the backoff keys; anything else is a finding.
    findings = [
        line
        for line in proc.stderr.splitlines()
        if not re.search(r"Unknown key '(RestartSteps|RestartMaxDelaySec)'", line)
    ]
    assert findings == [], proc.stderr
