"""``btc-tracker health``: the success metrics of the original tracker's workflow against
its targets, read from the warehouse and the newest model card.

``btc_tracker_pipeline.cli`` registers the command and prints the same table at the end
of the demo (``print_health``). It reads the warehouse read-only like the commands of
``cli_read`` and shares their plumbing (waiting for a writer's lock, one-line errors,
full-width tables in pipes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.cli_output import bad_value
from btc_tracker_pipeline.cli_read import (
    READ_WAIT_S,
    JsonOption,
    WaitOption,
    _emit_json,
    _reading,
    _status,
    _table,
    console,
)

if TYPE_CHECKING:  # polars, duckdb and xgboost wait for the command
    from btc_tracker_pipeline.health import HealthReport, Metric

_STYLES = {"pass": "green", "fail": "red", "not meaningful yet": "yellow", "info": "dim"}


def _parse_now(value: str | None) -> datetime:
    """``--now`` as naive UTC; the wall clock without it."""
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_value("--now", f"{value!r} is not an ISO time like 2026-03-01T00:00:00Z") from exc
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _meaningful(m: Metric) -> str:
    if m.spec.op is None:
        return "—"
    if m.meaningful:
        return "yes"
    return f"no (needs {m.spec.min_n:,})"


def print_health(out: Console, report: HealthReport) -> None:
    """The health table, one block per section, then its notes and the summary."""
    from btc_tracker_pipeline.health.targets import format_value

    columns = [
        ("metric", "left", None),
        ("target", "right", None),
        ("measured", "right", None),
        ("n", "right", None),
        ("meaningful?", "left", None),
        ("status", "left", None),
        ("detail", "left", 20),
    ]
    sections: dict[str, list[Metric]] = {}
    for m in report.metrics:
        sections.setdefault(m.spec.section, []).append(m)
    out.print(
        f"health as of {report.now:%Y-%m-%d %H:%M} UTC: the targets from the original "
        "tracker's workflow",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for section, metrics in sections.items():
        table = _table(section, columns)
        for m in metrics:
            table.add_row(
                m.spec.name,
                m.spec.target_text(),
                format_value(m.measured, m.spec.kind),
                f"{m.n:,} {m.spec.n_unit}",
                _meaningful(m),
                f"[{_STYLES[m.status]}]{m.status}[/]",
                escape(m.detail),
            )
        out.print(table)
    for note in report.notes:
        out.print(note, markup=False, highlight=False, soft_wrap=True)
    out.print(f"health: {report.summary()}", markup=False, highlight=False, soft_wrap=True)


def read_health(now: datetime, wait: float = READ_WAIT_S) -> HealthReport:
    """The health report of the configured warehouse and models as of ``now``; a missing
    or unreadable warehouse is one ``error:`` line and exit 1 (as ``stats``)."""
    from btc_tracker_pipeline.health import health_report
    from btc_tracker_pipeline.model.artifact import latest_card

    with _reading(wait) as (conn, _path), _status("reading the warehouse"):
        return health_report(conn, now, latest_card(environment.models_path()))


def health_command(
    json_output: JsonOption = False,
    now: Annotated[
        str | None,
        typer.Option(
            help="Measure as of this ISO UTC time (a replayed world's clock); default: now."
        ),
    ] = None,
    wait: WaitOption = READ_WAIT_S,
) -> None:
    """The original tracker's success metrics against their targets: uptime, data
    quality, tick latency, coverage, model accuracy / ROC AUC / precision beside the
    market's, and the paper ledger's and the backtest's win rate, EV per trade, Sharpe
    ratio and max drawdown.

    Each row shows the target, the measured value, its sample size and whether that
    sample is large enough to mean anything yet; only then is it pass or fail.
    Reads BTC_TRACKER_WAREHOUSE and BTC_TRACKER_MODELS read-only.

    Example: btc-tracker health --json
    """
    report = read_health(_parse_now(now), wait)
    if json_output:
        _emit_json(report.to_json())
        return
    print_health(console, report)
