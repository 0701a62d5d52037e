"""The targets from the original tracker's workflow, and one measured metric against one.

Every health metric is a :class:`Spec` (what it measures, its target, the sample it
needs before the figure means anything) plus what the warehouse shows: a
:class:`Metric`. The specs are declared once, in :data:`SPECS`; docs/operations.md
("Health: the targets") lists the same table.

A metric is *meaningful* when its sample reaches the spec's minimum (and a value was
measured); only then is it compared with the target (``pass`` / ``fail``). Before
that its status is ``not meaningful yet``: a win rate over 3 trades or an uptime over
an hour of running says nothing about the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# How a value is shown: a share (0.991 → 99.1 %), seconds, a number, a signed number.
SHARE, SECONDS, NUMBER, SIGNED = "share", "seconds", "number", "signed"
PASS, FAIL, NOT_MEANINGFUL, INFO = "pass", "fail", "not meaningful yet", "info"


@dataclass(frozen=True)
class Spec:
    """One health metric: its name, target (``op`` ``target``; None: reported, no
    target), the minimum sample ``min_n`` (in ``n_unit``) and what it measures."""

    key: str
    section: str
    name: str
    op: str | None
    target: float | None
    kind: str
    min_n: int
    n_unit: str
    measures: str

    def target_text(self) -> str:
        """``> 99 %``, ``< 5 s``, ``> 1.5``; ``—`` without a target."""
        if self.op is None or self.target is None:
            return "—"
        if self.kind == SHARE:
            return f"{self.op} {100 * self.target:g} %"
        unit = " s" if self.kind == SECONDS else ""
        return f"{self.op} {self.target:g}{unit}"

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets the target (strictly, as the targets are written)."""
        if self.op == ">":
            return value > self.target  # type: ignore[operator]
        return value < self.target  # type: ignore[operator]


def format_value(value: float | None, kind: str) -> str:
    """A value for people: ``99.1 %``, ``1.23 s``, ``0.881``, ``+0.034``; ``—`` when
    missing."""
    if value is None:
        return "—"
    if kind == SHARE:
        return f"{100 * value:.1f} %"
    if kind == SECONDS:
        return f"{value:.2f} s"
    return f"{value:+.3f}" if kind == SIGNED else f"{value:.3f}"


COLLECTION = "collection"
MODEL = "model (walk-forward, out of sample)"
LEDGER = "trading: forward paper ledger"
BACKTEST = "trading: backtest (walk-forward paper_trades)"

_UPTIME = (
    "share of the scheduled 15-minute windows since {since} that have snapshots "
    "(collected live or backfilled later)"
)
# What each metric measures (the --json "measures" field; docs/operations.md says more).
MEASURES = {
    "uptime_24h": _UPTIME.format(since="24 h ago"),
    "uptime_7d": _UPTIME.format(since="7 days ago"),
    "uptime_all": _UPTIME.format(since="the first collected window"),
    "quality_live": "share of the live snapshots (market_indicators) scoring at least 0.8",
    "quality_history": "the same over backfilled rows, reported apart (no target: see the note)",
    "latency_p50": "median seconds of a live tick, from its first asset's start to its last "
    "asset's commit (collection_runs)",
    "latency_p95": "95th percentile of the same",
    "coverage": "mean over the windows of the last 7 days of markets quoted / markets tracked",
    "accuracy": "share of walk-forward predictions on the right side of 0.5 (market beside)",
    "roc_auc": "ranking of YES above NO outcomes (the market's beside)",
    "precision": "share of YES calls (p ≥ 0.5) that resolved YES (the market's beside)",
    "win_rate": "share of settled trades that won",
    "ev": "realised edge per $1 share: hit rate − mean price paid (fees included)",
    "sharpe": "daily returns on the bankroll, annualised (√365)",
    "max_drawdown": "largest fall of the settled equity from its peak",
}

# key, section, name, target (op and value; None: reported without one), how the value
# is shown, the minimum sample and its unit.
_TABLE: tuple[tuple[str, str, str, str | None, str, str], ...] = (
    ("uptime_24h", COLLECTION, "uptime, last 24 h", "> 0.99", SHARE, "96 windows"),
    ("uptime_7d", COLLECTION, "uptime, last 7 d", "> 0.99", SHARE, "672 windows"),
    ("uptime_all", COLLECTION, "uptime, all time", "> 0.99", SHARE, "96 windows"),
    ("quality_live", COLLECTION, "quality ≥ 0.8, live", "> 0.80", SHARE, "100 snapshots"),
    ("quality_history", COLLECTION, "quality ≥ 0.8, history", None, SHARE, "0 snapshots"),
    ("latency_p50", COLLECTION, "tick latency p50", "< 5", SECONDS, "5 ticks"),
    ("latency_p95", COLLECTION, "tick latency p95", "< 5", SECONDS, "20 ticks"),
    ("coverage", COLLECTION, "coverage per window, last 7 d", "> 0.99", SHARE, "96 windows"),
    ("accuracy", MODEL, "accuracy", "> 0.70", SHARE, "20 events"),
    ("roc_auc", MODEL, "ROC AUC", "> 0.75", NUMBER, "20 events"),
    ("precision", MODEL, "precision", "> 0.65", SHARE, "20 events"),
    *(
        (f"{prefix}_{key}", section, name, target, kind, minimum)
        for section, prefix in ((LEDGER, "ledger"), (BACKTEST, "backtest"))
        for key, name, target, kind, minimum in (
            ("win_rate", "win rate", "> 0.55", SHARE, "30 trades"),
            ("ev", "EV per trade", "> 0.10", SIGNED, "30 trades"),
            ("sharpe", "Sharpe ratio", "> 1.5", SIGNED, "30 days"),
            ("max_drawdown", "max drawdown", "< 0.20", SHARE, "30 trades"),
        )
    ),
)


def _spec(key: str, section: str, name: str, target: str | None, kind: str, minimum: str) -> Spec:
    op, value = (None, None) if target is None else (target[0], float(target[2:]))
    count, unit = minimum.split(" ", 1)
    measures = MEASURES.get(key) or MEASURES[key.split("_", 1)[1]]
    return Spec(key, section, name, op, value, kind, int(count), unit, measures)


SPECS: tuple[Spec, ...] = tuple(_spec(*row) for row in _TABLE)
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}


@dataclass(frozen=True)
class Metric:
    """A spec with what the warehouse shows: the value, its sample and a short detail
    (the market's own figure, the source, or why there is no value)."""

    spec: Spec
    measured: float | None
    n: int
    detail: str = ""

    @property
    def meaningful(self) -> bool:
        """Enough sample to compare with the target, and a value."""
        return self.measured is not None and self.n >= self.spec.min_n

    @property
    def status(self) -> str:
        """``pass``, ``fail``, ``not meaningful yet``, or ``info`` (no target)."""
        if self.spec.op is None:
            return INFO
        if not self.meaningful:
            return NOT_MEANINGFUL
        return PASS if self.spec.passes(self.measured) else FAIL  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        """The fields ``btc-tracker health --json`` prints for this metric."""
        spec = self.spec
        return {
            "key": spec.key,
            "section": spec.section,
            "name": spec.name,
            "target": spec.target_text(),
            "target_op": spec.op,
            "target_value": spec.target,
            "measured": self.measured,
            "measured_text": format_value(self.measured, spec.kind),
            "n": self.n,
            "n_unit": spec.n_unit,
            "min_n": spec.min_n,
            "meaningful": self.meaningful,
            "status": self.status,
            "detail": self.detail,
            "measures": spec.measures,
        }


def metric(key: str, measured: float | None, n: int, detail: str = "") -> Metric:
    """The :class:`Metric` of spec ``key``; NaN and ±inf count as not measured."""
    if measured is not None and not math.isfinite(measured):
        measured = None
    return Metric(SPEC_BY_KEY[key], measured, int(n), detail)
