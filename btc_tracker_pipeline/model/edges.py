"""The edge report: the seed's edge and EV, net of spread and fees, with Kelly sizing.

One row per input row (a market in a 15-minute window). Notation: q = ``model_prob``,
p = ``market_prob`` (the mid, or the last YES price on history rows), b/a = the
effective bid/ask, r = the taker fee rate, e = the fee exponent.

* Effective prices: ``bid``/``ask`` are the book's ``best_bid``/``best_ask``; a missing
  side (history snapshots have no book) is p ∓ s/2, clipped to [0.001, 0.999], where s
  is the row's ``spread_estimate`` (the warehouse's live books of that family and price
  level, ``model.spreads``; flag ``estimated_spread``) or, without one,
  ``default_spread`` (3¢; flag ``default_spread``). ``spread_used`` = ask − bid, and
  ``spread_source`` says where it came from: ``book``, ``estimated`` or ``default``.
* Fee per share at price x: r·(x(1−x))^e (docs/modeling.md §2.4); 0 when
  ``fees_enabled`` is false. ``fee_yes`` = fee(a); ``fee_no`` = fee(1−b), which equals
  fee(b) because x(1−x) is symmetric.
* The seed's quantities, at the mid and before costs: ``edge`` = q − p and
  ``ev`` = q(1−p) − (1−q)p (algebraically equal to ``edge``).
* Net edges: ``net_edge_yes`` = q − a − fee(a); ``net_edge_no`` = (1−q) − (1−b) − fee(b).
* ``side`` is the side with the larger net edge (YES on ties) and ``net_edge`` its net
  edge; ``cost`` = a + fee(a) (YES) or 1 − b + fee(b) (NO), the all-in price of one share
  paying $1; ``kelly`` = (q_side − c)/(1 − c) = net_edge/(1 − c); ``ev_per_dollar`` =
  net_edge/c. These describe the best side even on PASS rows.
* ``recommendation``: BUY YES / BUY NO when the best net edge ≥ ``min_edge``, else PASS.
  Always PASS without a model probability or an effective price, when the expiry is
  unknown or reached (``time_to_expiry_hours`` null or ≤ 0), under a minute before
  expiry, or once the barrier of a reach/dip market was touched (the outcome is known).
* **Only where skill is proven.** With ``proven_families`` given (the model card's
  ``metrics.skill_test.proven_families``: the families whose walk-forward BSS vs the
  market has a Bonferroni-corrected lower bound > 0, ``model.metrics``), a row of any
  other family that would be BUY is PASS with the flag ``no_proven_skill``; its
  ``side``, ``net_edge``, ``kelly`` etc. stay (the would-be trade, kept for study), its
  stake is 0. ``proven_families=None`` is no gate (direct callers of the pure function);
  the pipeline always passes a set, and a card without ``skill_test`` proves nothing
  (:func:`proven_families`).
* ``stake`` ($): κ·max(f*, 0)·bankroll on BUY rows (0 on PASS), capped at
  ``max_stake_per_market``·bankroll, then at ``max_stake_per_cluster``·bankroll per
  (window, cluster), filled in descending net-edge order. A null cluster is the market
  on its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from btc_tracker_pipeline.model.spreads import DEFAULT_SPREAD
from btc_tracker_pipeline.warehouse.tables import polars_schema

BUY_YES = "BUY YES"
BUY_NO = "BUY NO"
PASS = "PASS"
RECOMMENDATION_ORDER = {BUY_YES: 0, BUY_NO: 1, PASS: 2}

PRICE_MIN = 0.001
PRICE_MAX = 0.999
# Floating-point slack for threshold comparisons (0.6 − 0.5 = 0.09999999999999998).
TOLERANCE = 1e-9
MINUTE = 1.0 / 60.0  # in hours, the unit of time_to_expiry_hours

# The columns of edge_report the report is computed from (it adds OUTPUT_COLUMNS; the
# asset adds window_end, model_version and in_sample).
INPUT_SCHEMA: dict[str, pl.DataType] = polars_schema(
    "edge_report",
    (
        "window_start",
        "market_id",
        "family",
        "question",
        "cluster",
        "market_prob",
        "best_bid",
        "best_ask",
        "model_prob",
        "structural_probability",
        "fees_enabled",
        "fee_rate",
        "fee_exponent",
        "time_to_expiry_hours",
        "q_spot",
        "parse_source",
        "barrier_touched",
    ),
)
# Optional input: the spread to assume where the book is missing (``model.spreads``);
# absent or null, ``EdgeConfig.default_spread`` is assumed.
SPREAD_ESTIMATE = "spread_estimate"
# What the edge report reads, the optional spread estimate included.
REPORT_INPUTS: tuple[str, ...] = (*INPUT_SCHEMA, SPREAD_ESTIMATE)

OUTPUT_COLUMNS: tuple[str, ...] = (
    "bid",
    "ask",
    "spread_used",
    "spread_source",
    "edge",
    "ev",
    "fee_yes",
    "fee_no",
    "net_edge_yes",
    "net_edge_no",
    "side",
    "net_edge",
    "recommendation",
    "cost",
    "kelly",
    "stake",
    "ev_per_dollar",
    "flags",
)

# In the order they appear in ``flags``.
FLAGS: tuple[str, ...] = (
    "no_model",
    "stale_spot",
    "thin_book",
    "estimated_spread",
    "default_spread",
    "uncertain_parse",
    "under_minute_left",
    "expired",
    "no_expiry",
    "barrier_touched",
    "fees_enabled",
    "no_proven_skill",
)


class EdgeConfig(BaseModel):
    """Thresholds and sizing of the edge report (frozen: one configuration per test window).

    Stakes are fractions of ``bankroll``; ``default_spread`` is assumed around the price
    only for a missing side of the book without a ``spread_estimate`` (3¢: recorded up/down
    books average 2.7¢, see ``model.spreads``); ``stale_spot_minutes`` applies when the rows carry a
    ``spot_age_minutes`` column, otherwise ``q_spot`` (fresh within 2 minutes) decides.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_edge: float = Field(0.05, ge=0.0)
    kelly_fraction: float = Field(0.25, gt=0.0, le=1.0)
    max_stake_per_market: float = Field(0.02, ge=0.0, le=1.0)
    max_stake_per_cluster: float = Field(0.05, ge=0.0, le=1.0)
    bankroll: float = Field(10_000.0, gt=0.0)
    default_spread: float = Field(DEFAULT_SPREAD, ge=0.0, lt=1.0)
    stale_spot_minutes: float = Field(2.0, gt=0.0)
    thin_book_spread: float = Field(0.10, gt=0.0)
    default_fee_rate: float = Field(0.07, ge=0.0)


def fee_per_share(
    price: float, rate: float | None, exponent: float | None = 1.0, *, enabled: bool = True
) -> float:
    """Polymarket taker fee, in $ per share bought at ``price``: rate·(price·(1−price))^exponent.

    Zero when ``enabled`` is false or ``rate`` is None. Crypto (rate 0.07, exponent 1):
    0.33¢ at 5¢, 1.75¢ at 50¢.
    """
    if not enabled or rate is None:
        return 0.0
    base = max(price * (1.0 - price), 0.0)
    return rate * base ** (1.0 if exponent is None else exponent)


def fee_per_share_expr(
    price: pl.Expr, rate: pl.Expr | float, exponent: pl.Expr | float = 1.0
) -> pl.Expr:
    """Polars form of :func:`fee_per_share`; pass ``rate`` = 0 where fees are disabled."""
    rate_expr = rate if isinstance(rate, pl.Expr) else pl.lit(rate)
    exponent_expr = exponent if isinstance(exponent, pl.Expr) else pl.lit(exponent)
    base = (price * (1.0 - price)).clip(lower_bound=0.0)
    return rate_expr * base.pow(exponent_expr)


def effective_fee_rate_expr(config: EdgeConfig) -> pl.Expr:
    """The taker fee rate of each row: 0 if ``fees_enabled`` is false, else ``fee_rate``.

    A null ``fee_rate`` or ``fees_enabled`` falls back to ``default_fee_rate``: an unknown
    schedule is charged, not assumed free.
    """
    return (
        pl.when(pl.col("fees_enabled").eq(False))
        .then(pl.lit(0.0))
        .otherwise(pl.col("fee_rate").fill_null(config.default_fee_rate).clip(lower_bound=0.0))
    )


def proven_families(card: Mapping[str, Any] | None) -> frozenset[str]:
    """The families a model card's walk-forward test proved skill on
    (``metrics.skill_test.proven_families``); none without a card, or for a card
    saved before the test existed (no ``skill_test``): such a model proves nothing."""
    metrics = (card or {}).get("metrics") or {}
    test = metrics.get("skill_test") if isinstance(metrics, Mapping) else None
    if not isinstance(test, Mapping):
        return frozenset()
    return frozenset(str(f) for f in test.get("proven_families") or [])


def edge_report(
    rows: pl.DataFrame,
    config: EdgeConfig | None = None,
    proven_families: Collection[str] | None = None,
) -> pl.DataFrame:
    """Edge, EV, net edges, recommendation, Kelly stake and flags for each row.

    ``rows`` has the columns of :data:`INPUT_SCHEMA` (extra columns are kept; an optional
    ``spot_age_minutes`` overrides ``q_spot`` for ``stale_spot``, an optional
    ``spread_estimate`` is the spread assumed without a book). The output is the input
    plus :data:`OUTPUT_COLUMNS` (see the module docstring), sorted by recommendation
    (BUY YES, BUY NO, PASS), then ``net_edge`` descending. With ``proven_families``,
    a would-be BUY of another family is PASS (flag ``no_proven_skill``); None: no gate.
    """
    config = config or EdgeConfig()
    missing = [name for name in INPUT_SCHEMA if name not in rows.columns]
    if missing:
        raise ValueError(f"edge_report: missing input columns {missing}")
    frame = rows.with_columns(
        pl.col(name).cast(dtype) for name, dtype in INPUT_SCHEMA.items() if name != "window_start"
    )
    if SPREAD_ESTIMATE not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(SPREAD_ESTIMATE))

    estimate = pl.col(SPREAD_ESTIMATE).cast(pl.Float64)
    half = pl.coalesce(estimate, pl.lit(config.default_spread)) / 2.0
    mid = pl.col("market_prob")
    q = pl.col("model_prob")
    tte = pl.col("time_to_expiry_hours")
    rate = effective_fee_rate_expr(config)
    exponent = pl.col("fee_exponent").fill_null(1.0)

    frame = frame.with_columns(
        pl.coalesce(pl.col("best_bid"), (mid - half).clip(PRICE_MIN, PRICE_MAX)).alias("bid"),
        pl.coalesce(pl.col("best_ask"), (mid + half).clip(PRICE_MIN, PRICE_MAX)).alias("ask"),
        pl.when(pl.col("best_bid").is_not_null() & pl.col("best_ask").is_not_null())
        .then(pl.lit("book"))
        .when(estimate.is_not_null())
        .then(pl.lit("estimated"))
        .otherwise(pl.lit("default"))
        .alias("spread_source"),
        (q - mid).alias("edge"),
        # The seed's EV of $1 staked on YES at the mid: win (1−p) w.p. q, lose p w.p. 1−q.
        (q * (1.0 - mid) - (1.0 - q) * mid).alias("ev"),
        rate.alias("_rate"),
    ).with_columns(
        fee_per_share_expr(pl.col("ask"), pl.col("_rate"), exponent).alias("fee_yes"),
        fee_per_share_expr(1.0 - pl.col("bid"), pl.col("_rate"), exponent).alias("fee_no"),
        (pl.col("ask") - pl.col("bid")).alias("spread_used"),
    )
    frame = frame.with_columns(
        (q - pl.col("ask") - pl.col("fee_yes")).alias("net_edge_yes"),
        ((1.0 - q) - (1.0 - pl.col("bid")) - pl.col("fee_no")).alias("net_edge_no"),
    )
    yes_better = pl.col("net_edge_yes") >= pl.col("net_edge_no")
    frame = frame.with_columns(
        pl.when(pl.col("net_edge_yes").is_null() | pl.col("net_edge_no").is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(yes_better)
        .then(pl.lit("YES"))
        .otherwise(pl.lit("NO"))
        .alias("side")
    )
    is_yes = pl.col("side") == "YES"
    frame = frame.with_columns(
        pl.when(is_yes)
        .then(pl.col("net_edge_yes"))
        .otherwise(pl.col("net_edge_no"))
        .alias("net_edge"),
        pl.when(is_yes)
        .then(pl.col("ask") + pl.col("fee_yes"))
        .otherwise(1.0 - pl.col("bid") + pl.col("fee_no"))
        .alias("cost"),
    )
    cost = pl.col("cost")
    frame = frame.with_columns(
        # Kelly for a binary share costing c that pays 1: f* = (q_side − c)/(1 − c).
        pl.when(cost < 1.0).then(pl.col("net_edge") / (1.0 - cost)).alias("kelly"),
        pl.when(cost > 0.0).then(pl.col("net_edge") / cost).alias("ev_per_dollar"),
    )

    touched = pl.col("barrier_touched").fill_null(False)
    # Under a minute left (this includes expired rows) or an unknown expiry never trades.
    blocked = q.is_null() | pl.col("side").is_null() | tte.is_null() | (tte < MINUTE) | touched
    would_buy = ~blocked & (pl.col("net_edge") >= config.min_edge - TOLERANCE)
    if proven_families is None:
        unproven = pl.lit(False)
    else:
        proven = sorted(str(f) for f in proven_families)
        unproven = ~pl.col("family").is_in(proven).fill_null(False)
    frame = frame.with_columns(
        (would_buy & unproven).fill_null(False).alias("_unproven"),
        pl.when(would_buy & ~unproven)
        .then(pl.when(is_yes).then(pl.lit(BUY_YES)).otherwise(pl.lit(BUY_NO)))
        .otherwise(pl.lit(PASS))
        .alias("recommendation"),
    )
    frame = _stakes(frame, config)
    inputs = [name for name in rows.columns if name not in OUTPUT_COLUMNS]
    frame = frame.with_columns(_flags(frame, config).alias("flags")).select(
        *inputs, *OUTPUT_COLUMNS
    )

    return frame.sort(
        pl.col("recommendation").replace_strict(RECOMMENDATION_ORDER, return_dtype=pl.Int8),
        pl.col("net_edge"),
        pl.col("window_start"),
        pl.col("market_id"),
        descending=[False, True, False, False],
        nulls_last=True,
    )


def _stakes(frame: pl.DataFrame, config: EdgeConfig) -> pl.DataFrame:
    """Add ``stake``: capped κ-Kelly, filled per (window, cluster) by descending net edge."""
    bankroll = config.bankroll
    market_cap = config.max_stake_per_market * bankroll
    cluster_cap = config.max_stake_per_cluster * bankroll
    buy = pl.col("recommendation") != PASS
    wanted = (
        pl.when(buy)
        .then(
            (config.kelly_fraction * pl.col("kelly").clip(lower_bound=0.0) * bankroll).clip(
                upper_bound=market_cap
            )
        )
        .otherwise(0.0)
        .fill_null(0.0)
    )
    group = [pl.col("window_start"), pl.coalesce(pl.col("cluster"), pl.col("market_id"))]
    ordered = frame.with_row_index("_row").with_columns(wanted.alias("_wanted"))
    ordered = ordered.sort(
        [*group, pl.col("net_edge"), pl.col("market_id")],
        descending=[False, False, True, False],
        nulls_last=True,
    )
    # Sequential filling of a cap K: stake_i = min(C_i, K) − min(C_{i−1}, K), C = cumulative wants.
    cumulative = pl.col("_wanted").cum_sum().over(group)
    ordered = ordered.with_columns(
        (
            cumulative.clip(upper_bound=cluster_cap)
            - (cumulative - pl.col("_wanted")).clip(upper_bound=cluster_cap)
        )
        .clip(lower_bound=0.0)
        .alias("stake")
    )
    return ordered.sort("_row").drop("_row", "_wanted")


def _flags(frame: pl.DataFrame, config: EdgeConfig) -> pl.Expr:
    """The comma-joined ``flags`` (order of :data:`FLAGS`; empty string when none)."""
    tte = pl.col("time_to_expiry_hours")
    if "spot_age_minutes" in frame.columns:
        stale = pl.col("spot_age_minutes").is_null() | (
            pl.col("spot_age_minutes") > config.stale_spot_minutes
        )
    else:
        stale = pl.col("q_spot").fill_null(0) != 1
    bid, ask = pl.col("best_bid"), pl.col("best_ask")
    two_sided = bid.is_not_null() & ask.is_not_null() & (bid < ask)
    thin = ~two_sided | (ask - bid > config.thin_book_spread + TOLERANCE)
    assumed = bid.is_null() | ask.is_null()
    estimated = pl.col(SPREAD_ESTIMATE).is_not_null()
    uncertain = (
        pl.col("family").is_null()
        | (pl.col("family") == "other")
        | (pl.col("parse_source").fill_null("") != "structured")
    )
    conditions = {
        "no_model": pl.col("model_prob").is_null(),
        "stale_spot": stale,
        "thin_book": thin,
        "estimated_spread": assumed & estimated,
        "default_spread": assumed & ~estimated,
        "uncertain_parse": uncertain,
        "under_minute_left": (tte > 0.0) & (tte < MINUTE),
        "expired": tte <= 0.0,
        "no_expiry": tte.is_null(),
        "barrier_touched": pl.col("barrier_touched").fill_null(False),
        "fees_enabled": pl.col("_rate") > 0.0,
        "no_proven_skill": pl.col("_unproven"),
    }
    return (
        pl.concat_list([pl.when(conditions[name]).then(pl.lit(name)) for name in FLAGS])
        .list.drop_nulls()
        .list.join(",")
    )


def top_opportunities_markdown(
    report: pl.DataFrame, n: int = 10, *, question_width: int = 60
) -> str:
    """A Markdown table of the ``n`` BUY rows of ``report`` with the largest net edge.

    Columns: market, question (truncated), side, mid, entry price (ask for YES, bid for
    NO), model, structural, net edge, stake ($), flags. Pass one window's report (or the
    latest row per market) to avoid listing a market twice.
    """
    buys = report.filter(pl.col("recommendation") != PASS).sort(
        "net_edge", descending=True, nulls_last=True
    )
    header = [
        "| market | question | side | mid | ask/bid | model | structural | net edge | stake "
        "| flags |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    if buys.is_empty():
        return "No opportunities: every market is PASS.\n"
    lines = list(header)
    for row in buys.head(n).iter_rows(named=True):
        entry = f"ask {_num(row['ask'])}" if row["side"] == "YES" else f"bid {_num(row['bid'])}"
        cells: Sequence[str] = (
            _cell(row["market_id"]),
            _cell(_truncate(row["question"], question_width)),
            row["recommendation"],
            _num(row["market_prob"]),
            entry,
            _num(row["model_prob"]),
            _num(row["structural_probability"]),
            _num(row["net_edge"], signed=True),
            f"${row['stake']:,.2f}",
            _cell(row["flags"] or ""),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _truncate(text: str | None, width: int) -> str:
    if not text:
        return ""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
