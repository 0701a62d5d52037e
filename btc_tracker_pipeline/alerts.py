"""The alert hook: one line in the log, always, and a Slack-compatible webhook if one is set.

The alert sensors (``defs/maintenance/alerts.py``) build an ``Alert`` and call ``notify``.
A webhook that is down, slow or misconfigured is logged and never raises: an alert must
not take the sensor that raised it down with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from btc_tracker_pipeline.environment import ENV_ALERT_WEBHOOK, ConfigurationError, check_url

# Python logging as well as the sensor's own Dagster log: the daemon's stderr (the systemd
# journal) gets every alert even when nobody opens the UI.
LOG = logging.getLogger("btc_tracker_pipeline.alerts")
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_ATTEMPTS = 3
# Seconds before the second and third attempt.
WEBHOOK_BACKOFF_S = (1.0, 2.0)


class Logger(Protocol):
    """What ``notify`` logs through: Python's logging.Logger and Dagster's context.log
    both fit (only ``warning`` and ``error`` are used)."""

    warning: Callable[[str], object]
    error: Callable[[str], object]


@dataclass(frozen=True)
class Alert:
    """Something an operator should look at: what happened, to which job and window, the
    run, and where the UI shows it."""

    what: str
    job: str | None = None
    window: str | None = None
    run_id: str | None = None
    detail: str | None = None
    url: str | None = None

    def line(self) -> str:
        """The alert in one line, e.g. ``btc-tracker alert: run failed: collect_job, window
        2026-03-01-10:00, run 0f3c…: step failed (http://127.0.0.1:3000/runs/0f3c…)``."""
        where = ", ".join(
            part
            for part in (
                self.job,
                self.window and f"window {self.window}",
                self.run_id and f"run {self.run_id}",
            )
            if part
        )
        text = f"btc-tracker alert: {self.what}" + (f": {where}" if where else "")
        if self.detail:
            text += ": " + " ".join(self.detail.split())[:300]
        if self.url:
            text += f" ({self.url})"
        return text


def notify(
    alert: Alert,
    webhook_url: str | None,
    log: Logger | logging.Logger = LOG,
    *,
    transport: httpx.BaseTransport | None = None,
    backoff_s: tuple[float, ...] = WEBHOOK_BACKOFF_S,
) -> bool:
    """Log ``alert`` in one line (``log`` and Python logging), then POST ``{"text": line}``
    to ``webhook_url`` when set (timeout 5 s, 3 attempts). True when the webhook took it
    (or none is set); a webhook failure is logged, never raised."""
    line = alert.line()
    log.warning(line)
    if log is not LOG:
        LOG.warning(line)
    if not webhook_url:
        return True
    try:
        check_url(ENV_ALERT_WEBHOOK, webhook_url)
    except ConfigurationError as exc:
        _failed(log, f"alert not posted: {exc}")
        return False
    error = _post(webhook_url, {"text": line}, transport, backoff_s)
    if error:
        _failed(log, f"alert webhook failed: {error}; the alert is in this log only")
        return False
    return True


def _post(
    url: str,
    body: dict[str, str],
    transport: httpx.BaseTransport | None,
    backoff_s: tuple[float, ...],
) -> str | None:
    """POST ``body`` until a 2xx; None then, else the last error in words. Retries
    connection errors, timeouts, 429 and 5xx; another 4xx is final."""
    error = None
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, transport=transport) as client:
        for attempt in range(WEBHOOK_ATTEMPTS):
            if attempt:
                time.sleep(backoff_s[min(attempt, len(backoff_s)) - 1] if backoff_s else 0)
            try:
                response = client.post(url, json=body)
            except Exception as exc:  # an alert must never raise
                # httpx.HTTPError, and also what a URL it cannot encode raises (UnicodeError).
                error = f"{type(exc).__name__} ({exc}) from {url}"
                continue
            if response.is_success:
                return None
            error = f"HTTP {response.status_code} from {url}"
            if response.status_code < 500 and response.status_code != 429:
                return f"{error} (not retried)"
    return f"{error} ({WEBHOOK_ATTEMPTS} attempts)"


def _failed(log: Logger | logging.Logger, message: str) -> None:
    log.error(message)
    if log is not LOG:
        LOG.error(message)
