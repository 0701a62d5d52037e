"""The health report: every metric of ``targets.SPECS``, measured on one warehouse and
the newest model card, as rows, Markdown (the ``health`` asset) or JSON
(``btc-tracker health --json``).

Missing data never raises: a warehouse with no live tick, no model or no ledger gives
metrics that are "not meaningful yet", each saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from btc_tracker_pipeline.health.collection import HISTORY_NOTE, collection_health
from btc_tracker_pipeline.health.model_skill import model_health
from btc_tracker_pipeline.health.targets import FAIL, NOT_MEANINGFUL, PASS, Metric, format_value
from btc_tracker_pipeline.health.trading import trading_health


@dataclass(frozen=True)
class HealthReport:
    """The metrics, in the order of ``targets.SPECS``, measured as of ``now``."""

    now: datetime
    metrics: list[Metric]
    model_version: str | None

    @property
    def notes(self) -> list[str]:
        """Lines that explain the table (why history rows score lower)."""
        return [HISTORY_NOTE]

    def counts(self) -> dict[str, int]:
        """How many metrics pass, fail and are not meaningful yet."""
        statuses = [m.status for m in self.metrics]
        return {s: statuses.count(s) for s in (PASS, FAIL, NOT_MEANINGFUL)}

    def summary(self) -> str:
        """``3 pass, 1 fail, 14 not meaningful yet (of 18 with a target)``."""
        c = self.counts()
        return (
            f"{c[PASS]} pass, {c[FAIL]} fail, {c[NOT_MEANINGFUL]} not meaningful yet "
            f"(of {sum(c.values())} with a target)"
        )

    def to_json(self) -> dict[str, Any]:
        """What ``btc-tracker health --json`` prints."""
        return {
            "as_of": self.now.isoformat(),
            "model_version": self.model_version,
            "summary": self.counts(),
            "metrics": [m.to_json() for m in self.metrics],
            "notes": self.notes,
        }

    def markdown(self) -> str:
        """The table as Markdown (the ``health`` asset's metadata), one section a block."""
        lines = [f"As of {self.now:%Y-%m-%d %H:%M} UTC: {self.summary()}.", ""]
        section = None
        for m in self.metrics:
            if m.spec.section != section:
                section = m.spec.section
                lines += [
                    "",
                    f"**{section}**",
                    "",
                    "| metric | target | measured | n | min n | status | detail |",
                    "|---|---|---|---|---|---|---|",
                ]
            lines.append(
                f"| {m.spec.name} | {m.spec.target_text()} | "
                f"{format_value(m.measured, m.spec.kind)} | {m.n:,} {m.spec.n_unit} | "
                f"{m.spec.min_n:,} | {m.status} | {m.detail.replace('|', '/')} |"
            )
        lines += ["", *self.notes]
        return "\n".join(lines)


def health_report(
    conn: duckdb.DuckDBPyConnection,
    now: datetime,
    card: tuple[str, dict[str, Any]] | None,
) -> HealthReport:
    """Measure every health metric on the warehouse ``conn`` as of ``now`` (naive UTC),
    with ``card`` = (version, card) of the newest model or None
    (``model.artifact.latest_card``)."""
    version, model_card = card if card is not None else (None, None)
    metrics = [
        *collection_health(conn, now),
        *model_health(version, model_card),
        *trading_health(conn),
    ]
    return HealthReport(now, metrics, version)
