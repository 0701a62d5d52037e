"""The forward paper ledger: the edge report's live recommendations, traded once on paper
and settled on the market's label — what the model predicted against what happened.

Unlike the walk-forward backtest (``model.paper``, table ``paper_trades``, rewritten by
every training), the ledger only grows: a position is written when it opens and only
its settlement columns change afterwards.

* **What opens a position.** A row of ``edge_report`` whose recommendation is BUY YES or
  BUY NO, from a live window (its snapshot's ``source`` is ``live``: the window that had
  just ended, quoted from the live book) that the model was not trained on
  (``in_sample`` false). History windows (backfills, late reruns) never open anything.
* **Once.** ``position_id`` = ``<market_id>@<window start>``; a market holds at most one
  position ever (its first live recommendation; later windows recommending it again are
  skipped, as the backtest trades a market once), and the asset takes a window's
  recommendations on its first run of that window only — a rerun, or a retraining in
  between, adds, changes and deletes nothing.
* **Price paid.** The fill of the backtest (``model.paper.fill``): the ask (YES) or
  1 − bid (NO) — the mid plus half the spread — plus the slippage of the stake on the
  book's depth, plus the taker fee at that price; ``price_paid`` is that all-in cost of
  a share paying $1, ``fee`` the fee in it. ``predicted_edge`` = the side's model
  probability − ``price_paid`` (the edge report's net edge less the slippage).
* **Stake.** The backtest's Kelly rule (``model.paper.kelly_stake``: κ·f*·B, at most
  ``max_stake_per_market``·B per market and ``max_stake_per_cluster``·B per event, never
  above B) on the ledger bankroll B = the starting bankroll (``LedgerConfig``) + realised
  P&L − the stakes of open positions; within a window the larger net edges go first, and
  a stake under a cent opens nothing.
* **Settlement.** An open position whose market has a label in ``market_resolutions``:
  ``resolved`` → ``settled`` (``outcome`` 1 if YES won; ``payout`` = shares if the side
  won, else 0; ``pnl`` = payout − stake; ``realised_edge`` = won − price_paid);
  ``void`` → ``void``: the stake comes back, ``pnl`` 0. ``unsettled`` (closed, prices
  not yet one-hot) keeps the position open: a later window's label (looked for up to
  three days after the end date) settles or voids it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from btc_tracker_pipeline.model.edges import BUY_YES, PASS, EdgeConfig
from btc_tracker_pipeline.model.paper import MIN_STAKE, fill, kelly_stake, max_drawdown
from btc_tracker_pipeline.warehouse.tables import polars_schema

OPEN = "open"
SETTLED = "settled"
VOID = "void"

LEDGER_SCHEMA: dict[str, pl.DataType] = polars_schema("paper_ledger")
# The columns settling a position fills in; nothing else of a row ever changes.
SETTLEMENT_COLUMNS = ("status", "settled_at", "outcome", "payout", "pnl", "realised_edge")
# Below this many settled positions the predicted-vs-realised comparison is "not
# meaningful yet": a mean of 0/1 outcomes over fewer is too noisy to state (its
# standard error is ~0.5/√n: ±0.18 per share at 30).
MIN_SETTLED = 30

# What a position is opened from: edge_report columns, the snapshot's source and
# liquidity (model.depth adds book_liquidity) and the quote's time (opened_at).
RECOMMENDATION_COLUMNS = (
    "window_start",
    "window_end",
    "market_id",
    "family",
    "question",
    "cluster",
    "recommendation",
    "in_sample",
    "model_version",
    "model_prob",
    "market_prob",
    "bid",
    "ask",
    "fee_yes",
    "fee_no",
    "fee_exponent",
    "kelly",
    "net_edge",
    "source",
    "opened_at",
    "book_liquidity",
)


class LedgerConfig(BaseModel):
    """The ledger's sizing: the edge report's Kelly fraction and caps (``edge``) and the
    starting bankroll (``edge.bankroll``, $10,000). Frozen: the ledger's bankroll is
    only consistent if every run sizes with the same rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edge: EdgeConfig = Field(default_factory=EdgeConfig)

    @property
    def starting_bankroll(self) -> float:
        """The bankroll before any position: ``edge.bankroll``."""
        return self.edge.bankroll


LEDGER_CONFIG = LedgerConfig()


def position_id(market_id: str, window_start: datetime) -> str:
    """The position's key: ``<market_id>@<window start, UTC, YYYY-MM-DDTHH:MM>``."""
    return f"{market_id}@{window_start:%Y-%m-%dT%H:%M}"


def empty_ledger() -> pl.DataFrame:
    """A ledger with no position (the table's schema)."""
    return pl.DataFrame(schema=LEDGER_SCHEMA)


def live_recommendations(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``rows`` (RECOMMENDATION_COLUMNS) that may open a position: BUY YES /
    BUY NO, from a live snapshot, not in sample (a null counts as in sample)."""
    return rows.filter(
        (pl.col("recommendation") != PASS)
        & (pl.col("source") == "live")
        & ~pl.col("in_sample").fill_null(True)
    )


def ledger_bankroll(ledger: pl.DataFrame, config: LedgerConfig = LEDGER_CONFIG) -> float:
    """B = the starting bankroll + realised P&L (settled positions) − stakes of open ones."""
    realised = ledger.filter(pl.col("status") == SETTLED)["pnl"].sum()
    locked = ledger.filter(pl.col("status") == OPEN)["stake"].sum()
    return config.starting_bankroll + float(realised or 0.0) - float(locked or 0.0)


def open_positions(
    recommendations: pl.DataFrame, ledger: pl.DataFrame, config: LedgerConfig = LEDGER_CONFIG
) -> pl.DataFrame:
    """The positions ``recommendations`` open on ``ledger`` (rows of LEDGER_SCHEMA, status
    open), in window order and, within a window, by descending net edge.

    Skipped: rows that are not live recommendations (``live_recommendations``), markets
    that already hold a position (in the ledger or earlier in ``recommendations``), rows
    without a positive Kelly fraction, and stakes under a cent. Each stake is
    ``kelly_stake`` on the bankroll left after the positions before it."""
    rows = live_recommendations(recommendations).sort(
        ["window_start", "net_edge", "market_id"], descending=[False, True, False], nulls_last=True
    )
    taken = set(ledger["market_id"].to_list())
    bankroll = ledger_bankroll(ledger, config)
    by_cluster: defaultdict[str, float] = defaultdict(float)
    for market, cluster, stake in (
        ledger.filter(pl.col("status") == OPEN).select("market_id", "cluster", "stake").iter_rows()
    ):
        by_cluster[cluster or market] += stake
    opened: list[dict[str, Any]] = []
    for row in rows.iter_rows(named=True):
        market = row["market_id"]
        cluster = row["cluster"] or market
        kelly = row["kelly"]
        if market in taken or kelly is None or not kelly > 0.0:
            continue
        stake = kelly_stake(kelly, bankroll, 0.0, by_cluster[cluster], bankroll, config.edge)
        if stake < MIN_STAKE:
            continue
        yes = row["recommendation"] == BUY_YES
        price, fee, cost, best = fill(stake, yes, row)
        q_side = row["model_prob"] if yes else 1.0 - row["model_prob"]
        opened.append(
            {
                "position_id": position_id(market, row["window_start"]),
                "market_id": market,
                "window_start": row["window_start"],
                "opened_at": row["opened_at"] or row["window_end"],
                "family": row["family"],
                "question": row["question"],
                "cluster": row["cluster"],
                "side": "YES" if yes else "NO",
                "price_paid": cost,
                "fee": fee,
                "slippage": price - best,
                "stake": stake,
                "shares": stake / cost,
                "bankroll_at_open": bankroll,
                "kelly": kelly,
                "model_prob": row["model_prob"],
                "market_prob": row["market_prob"],
                "predicted_edge": q_side - cost,
                "model_version": row["model_version"],
                "status": OPEN,
            }
        )
        taken.add(market)
        bankroll -= stake
        by_cluster[cluster] += stake
    return pl.DataFrame(opened, schema=LEDGER_SCHEMA)


def latest_labels(labels: pl.DataFrame) -> pl.DataFrame:
    """One label per market from ``market_resolutions`` rows (``window_start, market_id,
    status, yes_won, settled_at``): a resolved one if the market has any, else its newest."""
    return (
        labels.sort(
            [pl.col("status") == "resolved", pl.col("window_start")],
            descending=True,
            nulls_last=True,
        )
        .unique("market_id", keep="first", maintain_order=True)
        .select("market_id", "status", "yes_won", "settled_at")
    )


def settle(positions: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """The open positions of ``positions`` whose market has a label in ``labels``
    (``market_resolutions`` rows), with their settlement columns filled in (every other
    column as it was). ``resolved`` with a known winner → settled; ``void`` → void (stake
    back, P&L 0). ``unsettled`` (closed, prices not yet at 0/1: settlement still to come)
    leaves the position open, as a settled row is never revisited."""
    still_open = positions.filter(pl.col("status") == OPEN)
    if still_open.is_empty() or labels.is_empty():
        return positions.clear()
    label = latest_labels(labels).select(
        pl.col("market_id").cast(pl.String),
        pl.col("status").alias("_label"),
        pl.col("yes_won").cast(pl.Boolean).alias("_yes_won"),
        pl.col("settled_at").cast(pl.Datetime("us")).alias("_settled_at"),
    )
    joined = still_open.join(label, on="market_id", how="inner", maintain_order="left")
    resolved = (pl.col("_label") == "resolved") & pl.col("_yes_won").is_not_null()
    joined = joined.filter(resolved | (pl.col("_label") == "void"))
    won = pl.when(pl.col("side") == "YES").then(pl.col("_yes_won")).otherwise(~pl.col("_yes_won"))
    payout = pl.when(won).then(pl.col("shares")).otherwise(0.0)
    return joined.with_columns(
        pl.when(resolved).then(pl.lit(SETTLED)).otherwise(pl.lit(VOID)).alias("status"),
        pl.col("_settled_at").alias("settled_at"),
        pl.when(resolved).then(pl.col("_yes_won").cast(pl.Int8)).alias("outcome"),
        pl.when(resolved).then(payout).otherwise(pl.col("stake")).alias("payout"),
        pl.when(resolved).then(payout - pl.col("stake")).otherwise(0.0).alias("pnl"),
        pl.when(resolved).then(won.cast(pl.Float64) - pl.col("price_paid")).alias("realised_edge"),
    ).select(list(LEDGER_SCHEMA))


def with_settlements(ledger: pl.DataFrame, settled: pl.DataFrame) -> pl.DataFrame:
    """``ledger`` with the rows of ``settled`` (``settle`` output) in place of its own."""
    if settled.is_empty():
        return ledger
    kept = ledger.filter(~pl.col("position_id").is_in(settled["position_id"].implode()))
    return pl.concat([kept, settled.select(ledger.columns)]).sort("opened_at", "position_id")


def summary(ledger: pl.DataFrame, config: LedgerConfig = LEDGER_CONFIG) -> dict[str, Any]:
    """The ledger in figures (JSON-ready).

    Counts (``open``, ``settled``, ``void``), ``open_stake``, ``realised_pnl``,
    ``bankroll`` (``ledger_bankroll``: what the next stake is sized on), ``equity``
    (starting bankroll + realised P&L: open positions at cost), ``win_rate`` and
    ``max_drawdown`` of the settled equity; and ``predicted_vs_realised`` over the
    settled positions: the mean predicted edge per share against the mean realised one
    (won − price paid) with its standard error, the predicted return per dollar
    (Σ stake·predicted_edge/price_paid / Σ stake) against the realised one
    (Σ pnl / Σ stake), their count, and ``meaningful`` (count ≥ MIN_SETTLED)."""
    settled = ledger.filter(pl.col("status") == SETTLED).sort("settled_at", "position_id")
    start = config.starting_bankroll
    realised = float(settled["pnl"].sum() or 0.0)
    won = (settled["outcome"] == 1) == (settled["side"] == "YES")
    n = settled.height
    equity = [start, *(start + settled["pnl"].cum_sum()).to_list()]
    return {
        "starting_bankroll": start,
        "open": ledger.filter(pl.col("status") == OPEN).height,
        "settled": n,
        "void": ledger.filter(pl.col("status") == VOID).height,
        "open_stake": float(ledger.filter(pl.col("status") == OPEN)["stake"].sum() or 0.0),
        "realised_pnl": realised,
        "bankroll": ledger_bankroll(ledger, config),
        "equity": start + realised,
        "win_rate": float(won.sum()) / n if n else None,
        "max_drawdown": max_drawdown(equity),
        "predicted_vs_realised": _comparison(settled),
    }


def _comparison(settled: pl.DataFrame) -> dict[str, Any]:
    n = settled.height
    stake = float(settled["stake"].sum() or 0.0)
    se = settled["realised_edge"].std() if n >= 2 else None
    predicted_pnl = (settled["stake"] * settled["predicted_edge"] / settled["price_paid"]).sum()
    return {
        "positions": n,
        "min_positions": MIN_SETTLED,
        "meaningful": n >= MIN_SETTLED,
        "mean_predicted_edge": _mean(settled["predicted_edge"]),
        "mean_realised_edge": _mean(settled["realised_edge"]),
        "realised_edge_se": None if se is None else float(se) / math.sqrt(n),  # type: ignore[arg-type]
        "predicted_return_per_dollar": float(predicted_pnl) / stake if stake else None,
        "realised_return_per_dollar": float(settled["pnl"].sum()) / stake if stake else None,
    }


def _mean(values: pl.Series) -> float | None:
    mean = values.mean()
    return None if mean is None else float(mean)  # type: ignore[arg-type]


def equity_by_day(ledger: pl.DataFrame, config: LedgerConfig = LEDGER_CONFIG) -> pl.DataFrame:
    """The settled equity curve: per UTC day with a settlement, the positions settled
    (void ones included), their P&L and the equity at the end of the day (starting
    bankroll + realised P&L so far)."""
    done = ledger.filter(pl.col("status").is_in([SETTLED, VOID]))
    return (
        done.group_by(pl.col("settled_at").dt.date().alias("day"))
        .agg(pl.len().alias("settled"), pl.col("pnl").sum().alias("pnl"))
        .sort("day")
        .with_columns((config.starting_bankroll + pl.col("pnl").cum_sum()).alias("equity"))
    )


def equity_markdown(curve: pl.DataFrame, days: int = 30) -> str:
    """``equity_by_day`` as a Markdown table of its last ``days`` days."""
    if curve.is_empty():
        return "No settled position yet."
    lines = ["| day (UTC) | settled | P&L | equity |", "|---|---:|---:|---:|"]
    shown = curve.tail(days)
    if curve.height > days:
        lines.insert(0, f"Last {days} of {curve.height} days with a settlement.\n")
    for day, settled, pnl, equity in shown.iter_rows():
        lines.append(f"| {day} | {settled} | {pnl:+,.2f} | {equity:,.2f} |")
    return "\n".join(lines)
