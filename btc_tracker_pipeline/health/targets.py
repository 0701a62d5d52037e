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
_TRADES = 30  # settled trades before a trading figure is compared with its target
_DAYS = 30  # days of returns before a Sharpe ratio is

SPECS: tuple[Spec, ...] = (
    Spec(
        "uptime_24h",
        COLLECTION,
        "uptime, last 24 h",
        ">",
        0.99,
        SHARE,
        96,
        "windows",
        _UPTIME.format(since="24 h ago"),
    ),
    Spec(
        "uptime_7d",
        COLLECTION,
        "uptime, last 7 d",
        ">",
        0.99,
        SHARE,
        672,
        "windows",
        _UPTIME.format(since="7 days ago"),
    ),
    Spec(
        "uptime_all",
        COLLECTION,
        "uptime, all time",
        ">",
        0.99,
        SHARE,
        96,
        "windows",
        _UPTIME.format(since="the first collected window"),
    ),
    Spec(
        "quality_live",
        COLLECTION,
        "live snapshots with quality ≥ 0.8",
        ">",
        0.80,
        SHARE,
        100,
        "snapshots",
        "share of the live snapshots (market_indicators, source live) scoring at least 0.8",
    ),
    Spec(
        "quality_history",
        COLLECTION,
        "history snapshots with quality ≥ 0.8",
        None,
        None,
        SHARE,
        0,
        "snapshots",
        "the same share over backfilled rows, reported apart (no target: see the note)",
    ),
    Spec(
        "latency_p50",
        COLLECTION,
        "tick latency p50",
        "<",
        5.0,
        SECONDS,
        5,
        "ticks",
        "median seconds of a live tick, from its first asset's start to its last asset's "
        "commit (collection_runs)",
    ),
    Spec(
        "latency_p95",
        COLLECTION,
        "tick latency p95",
        "<",
        5.0,
        SECONDS,
        20,
        "ticks",
        "95th percentile of the same",
    ),
    Spec(
        "coverage",
        COLLECTION,
        "coverage per window, last 7 d",
        ">",
        0.99,
        SHARE,
        96,
        "windows",
        "mean over the windows of the last 7 days of markets quoted / markets tracked",
    ),
    Spec(
        "accuracy",
        MODEL,
        "accuracy",
        ">",
        0.70,
        SHARE,
        20,
        "events",
        "share of walk-forward predictions on the right side of 0.5 (the market's beside)",
    ),
    Spec(
        "roc_auc",
        MODEL,
        "ROC AUC",
        ">",
        0.75,
        NUMBER,
        20,
        "events",
        "ranking of YES above NO outcomes (the market's beside)",
    ),
    Spec(
        "precision",
        MODEL,
        "precision",
        ">",
        0.65,
        SHARE,
        20,
        "events",
        "share of YES calls (p ≥ 0.5) that resolved YES (the market's beside)",
    ),
    *(
        spec
        for section, prefix in ((LEDGER, "ledger"), (BACKTEST, "backtest"))
        for spec in (
            Spec(
                f"{prefix}_win_rate",
                section,
                "win rate",
                ">",
                0.55,
                SHARE,
                _TRADES,
                "trades",
                "share of settled trades that won",
            ),
            Spec(
                f"{prefix}_ev",
                section,
                "EV per trade",
                ">",
                0.10,
                SIGNED,
                _TRADES,
                "trades",
                "realised edge per $1 share: hit rate − mean price paid (fees included)",
            ),
            Spec(
                f"{prefix}_sharpe",
                section,
                "Sharpe ratio",
                ">",
                1.5,
                SIGNED,
                _DAYS,
                "days",
                "daily returns on the bankroll, annualised (√365)",
            ),
            Spec(
                f"{prefix}_max_drawdown",
                section,
                "max drawdown",
                "<",
                0.20,
                SHARE,
                _TRADES,
                "trades",
                "largest fall of the settled equity from its peak",
            ),
        )
    ),
)
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
