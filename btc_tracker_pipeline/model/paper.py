"""The paper backtest: simulated taker fills of the edge report's recommendations on the
walk-forward predictions (``paper_trades``; the forward ledger of live ones is
``model.ledger``).

``simulate`` walks the report's BUY rows in time order. The fill happens at the
snapshot, the window end (``window_start`` + ``entry_lag_minutes``): YES at the
report's effective ``ask``, NO at 1 − ``bid``, plus the taker fee. Per share:
``price`` (as above), ``fee``, ``cost`` = price + fee; per trade: ``stake`` ($) and
``shares`` = stake/cost, each paying $1 if the side won. ``spread`` and
``spread_source`` are the report's ``spread_used``/``spread_source``: a history row has
no book, so its fill is at the price ∓ half an estimated (or the default 3¢) spread.
A stake larger than the best level walks the book: the fill is ``slippage`` per share
above that price (``model.depth``: the report's ``book_liquidity``, the row's own or
its family's live median, spread over ten ticks a side; a report without it is taken
at the depth of ``depth.DEFAULT_LIQUIDITY``), capped at 0.999, and the fee is charged
at the price paid.

Bankroll and compounding: the bankroll B_t at entry time t is the starting bankroll plus
the P&L of every trade settled at or before t (open positions count at cost). Free cash
is B_t minus the stakes of open positions. A recommendation is sized
``stake`` = κ·f*·B_t (f* = the report's ``kelly``), capped so that the open stake in the
market stays ≤ ``max_stake_per_market``·B_t and in the cluster ≤
``max_stake_per_cluster``·B_t, and never above free cash; within a window the larger net
edges are filled first. A recommendation whose capped stake is 0 is skipped (the market
stays eligible). With ``one_trade_per_market`` only a market's first filled
recommendation trades.

Only where skill was proven, without look-ahead: ``walk_forward_report`` computes the
edge report of each walk-forward fold with the families proven on the folds before it
(``metrics.proven_by_fold``; none in fold 0), so a fold is never traded on its own
evidence; the other families' would-be trades are PASS (``no_proven_skill``).

Settlement at ``settled_at``: payout = shares if the side won, else 0;
``pnl`` = payout − stake, ``roi`` = pnl/stake, and the stake plus P&L returns to cash.
Markets without a resolution (or with a null ``yes_won``, e.g. a 50/50 void) stay open:
they are counted in ``n_open`` and excluded from every realised metric.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from btc_tracker_pipeline.model.depth import DEFAULT_LIQUIDITY, PRICE_MAX, slippage
from btc_tracker_pipeline.model.edges import (
    BUY_YES,
    PASS,
    EdgeConfig,
    edge_report,
    fee_per_share,
)
from btc_tracker_pipeline.warehouse.tables import polars_schema

# paper_trades without model_version (the asset adds it), in the order a trade is filled.
TRADES_SCHEMA: dict[str, pl.DataType] = polars_schema(
    "paper_trades",
    (
        "market_id",
        "cluster",
        "window_start",
        "side",
        "price",
        "fee",
        "cost",
        "shares",
        "stake",
        "predicted_ev",
        "spread",
        "spread_source",
        "slippage",
        "book_liquidity",
        "liquidity_source",
        "settled_at",
        "won",
        "pnl",
        "roi",
    ),
)

REPORT_COLUMNS = (
    "window_start",
    "market_id",
    "cluster",
    "recommendation",
    "bid",
    "ask",
    "spread_used",
    "spread_source",
    "fee_yes",
    "fee_no",
    "kelly",
    "net_edge",
)

DAYS_PER_YEAR = 365
# Stakes below a cent are not fills.
MIN_STAKE = 0.01


class PaperConfig(BaseModel):
    """Paper-trading settings, frozen per evaluation window with the EdgeConfig they use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    one_trade_per_market: bool = True
    # The snapshot, and so the fill, is at the window end.
    entry_lag_minutes: float = Field(15.0, ge=0.0)
    bootstrap_draws: int = Field(1000, ge=1)
    bootstrap_seed: int = 0
    confidence: float = Field(0.95, gt=0.0, lt=1.0)


def walk_forward_report(
    rows: pl.DataFrame, config: EdgeConfig, tradeable: Mapping[int, Collection[str]]
) -> pl.DataFrame:
    """The edge report of walk-forward rows, each fold gated by its own families.

    ``rows``: edge-report inputs with a ``fold`` column (kept). Fold k's rows are
    reported with ``proven_families=tradeable[k]`` (``metrics.proven_by_fold``: proven
    on folds < k only); a fold missing from ``tradeable``, or a null fold, trades none.
    """
    if "fold" not in rows.columns:
        raise ValueError("walk_forward_report: rows need a fold column")
    parts = [
        edge_report(part, config, proven_families=tradeable.get(fold, ()))
        for (fold,), part in rows.partition_by("fold", as_dict=True, maintain_order=True).items()
    ]
    return pl.concat(parts) if parts else edge_report(rows, config, proven_families=())


@dataclass
class _Open:
    market_id: str
    cluster: str
    stake: float
    pnl: float


def simulate(
    report: pl.DataFrame, resolutions: pl.DataFrame, config: PaperConfig | None = None
) -> tuple[pl.DataFrame, dict[str, float | int | None]]:
    """Fill the report's recommendations and settle them; return (trades, metrics).

    ``report``: :func:`~btc_tracker_pipeline.model.edges.edge_report` rows over many
    windows. ``resolutions``: ``market_id, yes_won, settled_at``. ``trades`` has the
    columns of :data:`TRADES_SCHEMA` in entry order (open trades have null
    ``settled_at``/``won``/``pnl``/``roi``); ``metrics`` is :func:`trade_metrics`.
    """
    config = config or PaperConfig()
    edge = config.edge
    missing = [name for name in REPORT_COLUMNS if name not in report.columns]
    if missing:
        raise ValueError(f"simulate: missing report columns {missing}")
    settled = _resolutions(resolutions)
    lag = timedelta(minutes=config.entry_lag_minutes)

    if "book_liquidity" not in report.columns:
        report = report.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("book_liquidity"),
            pl.lit("default").alias("liquidity_source"),
        )
    buys = (
        report.filter(pl.col("recommendation") != PASS)
        .select(*REPORT_COLUMNS, "book_liquidity", "liquidity_source", *_exponent(report))
        .join(settled, on="market_id", how="left")
        .sort(
            ["window_start", "net_edge", "market_id"],
            descending=[False, True, False],
            nulls_last=True,
        )
    )

    realised = edge.bankroll
    locked = 0.0
    by_market: dict[str, float] = defaultdict(float)
    by_cluster: dict[str, float] = defaultdict(float)
    pending: list[tuple[datetime, int, _Open]] = []
    traded: set[str] = set()
    trades: list[dict[str, object]] = []

    for row in buys.iter_rows(named=True):
        entry = row["window_start"] + lag
        while pending and pending[0][0] <= entry:
            _, _, position = heapq.heappop(pending)
            realised += position.pnl
            locked -= position.stake
            by_market[position.market_id] -= position.stake
            by_cluster[position.cluster] -= position.stake
        market = row["market_id"]
        cluster = row["cluster"] if row["cluster"] is not None else market
        settled_at = row["settled_at"]
        if config.one_trade_per_market and market in traded:
            continue
        if settled_at is not None and settled_at <= entry:
            continue
        if row["kelly"] is None or row["kelly"] <= 0.0:
            continue
        stake = kelly_stake(
            row["kelly"], realised, by_market[market], by_cluster[cluster], realised - locked, edge
        )
        if stake < MIN_STAKE:
            continue
        yes = row["recommendation"] == BUY_YES
        price, fee, cost, best = fill(stake, yes, row)
        shares = stake / cost
        yes_won = row["yes_won"]
        won = None if yes_won is None else (yes_won if yes else not yes_won)
        pnl = None if won is None else (shares if won else 0.0) - stake
        traded.add(market)
        locked += stake
        by_market[market] += stake
        by_cluster[cluster] += stake
        if pnl is not None:
            heapq.heappush(pending, (settled_at, len(trades), _Open(market, cluster, stake, pnl)))
        trades.append(
            {
                "market_id": market,
                "cluster": row["cluster"],
                "window_start": row["window_start"],
                "side": "YES" if yes else "NO",
                "price": price,
                "fee": fee,
                "cost": cost,
                "shares": shares,
                "stake": stake,
                "predicted_ev": row["net_edge"],
                "spread": row["spread_used"],
                "spread_source": row["spread_source"],
                "slippage": price - best,
                "book_liquidity": row["book_liquidity"] or DEFAULT_LIQUIDITY,
                "liquidity_source": row["liquidity_source"],
                "settled_at": settled_at if won is not None else None,
                "won": won,
                "pnl": pnl,
                "roi": None if pnl is None else pnl / stake,
            }
        )

    frame = pl.DataFrame(trades, schema=TRADES_SCHEMA)
    return frame, trade_metrics(frame, config)


def kelly_stake(
    kelly: float,
    bankroll: float,
    open_in_market: float,
    open_in_cluster: float,
    free_cash: float,
    edge: EdgeConfig,
) -> float:
    """The stake ($) of one recommendation: κ·f*·``bankroll`` (κ = ``kelly_fraction``,
    f* = the report's ``kelly``), capped so that the open stake in the market stays
    ≤ ``max_stake_per_market``·bankroll and in the cluster ≤
    ``max_stake_per_cluster``·bankroll, and never above ``free_cash``. Below
    :data:`MIN_STAKE` it is no fill. The backtest (``simulate``) and the forward ledger
    (``model.ledger``) size with it."""
    return min(
        edge.kelly_fraction * kelly * bankroll,
        edge.max_stake_per_market * bankroll - open_in_market,
        edge.max_stake_per_cluster * bankroll - open_in_cluster,
        free_cash,
    )


def fill(stake: float, yes: bool, row: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """A taker fill of ``stake`` on one side of an edge-report ``row``: (price, fee,
    cost, best) per share. ``best`` is the ask (YES) or 1 − bid (NO); ``price`` = best
    plus the slippage of walking a book of the row's ``book_liquidity``, capped at
    0.999; ``fee`` is the taker fee at ``price``; ``cost`` = price + fee, the all-in
    price of a share that pays $1."""
    best = float(row["ask"] if yes else 1.0 - row["bid"])
    price = min(best + slippage(stake, row.get("book_liquidity")), PRICE_MAX)
    fee = _fee_at(price, best, row["fee_yes"] if yes else row["fee_no"], row)
    return price, fee, price + fee, best


def _exponent(report: pl.DataFrame) -> list[str]:
    return ["fee_exponent"] if "fee_exponent" in report.columns else []


def _fee_at(price: float, best: float, fee_best: float, row: Mapping[str, Any]) -> float:
    """The taker fee per share at the ``price`` paid. The report gives ``fee_best`` =
    r·(b(1−b))^e at the best price b, not the rate r itself: r is read back from it."""
    base = best * (1.0 - best)
    if price == best or base <= 0.0:
        return fee_best
    exponent = row.get("fee_exponent") or 1.0
    return fee_per_share(price, fee_best / base**exponent, exponent)


def _resolutions(resolutions: pl.DataFrame) -> pl.DataFrame:
    """One settled resolution per market (the earliest); null ``yes_won`` counts as open."""
    return (
        resolutions.select(
            pl.col("market_id").cast(pl.String),
            pl.col("yes_won").cast(pl.Boolean),
            pl.col("settled_at").cast(pl.Datetime("us")),
        )
        .filter(pl.col("yes_won").is_not_null() & pl.col("settled_at").is_not_null())
        .sort("settled_at")
        .unique("market_id", keep="first", maintain_order=True)
    )


def trade_metrics(
    trades: pl.DataFrame, config: PaperConfig | None = None
) -> dict[str, float | int | None]:
    """The seed's trading metrics on the settled trades, reported honestly.

    * ``n_trades`` settled trades, ``n_open`` unsettled ones, ``n_clusters``.
    * ``win_rate`` = mean(won); ``avg_predicted_edge`` = mean net edge at entry;
      ``avg_realised_edge`` = mean(won) − mean(cost) (docs/modeling.md §2.4), side by
      side with ``edge_gap`` = predicted − realised (> 0: the model promised more than
      the fills earned).
    * ``roi_per_dollar`` = Σ pnl / Σ stake, with a cluster-bootstrap interval
      ``roi_ci_low``/``roi_ci_high`` (clusters resampled with replacement).
    * ``total_pnl``; ``final_bankroll`` = bankroll + total_pnl.
    * ``max_drawdown``: :func:`max_drawdown` of the equity after each settlement time.
    * ``daily_sharpe``: :func:`sharpe_ratio` of daily returns (P&L settled that UTC day /
      equity at the start of the day), every calendar day from the first entry to the
      last settlement, days without a settlement as 0; ``sharpe_se`` its standard error
      and ``n_days`` the number of days.

    Undefined values (no settled trades, fewer than 2 days or clusters) are None.
    """
    config = config or PaperConfig()
    bankroll = config.edge.bankroll
    done = trades.filter(pl.col("won").is_not_null())
    n_open = trades.height - done.height
    metrics: dict[str, float | int | None] = {
        "n_trades": done.height,
        "n_open": n_open,
        "n_clusters": 0,
        "win_rate": None,
        "avg_predicted_edge": None,
        "avg_realised_edge": None,
        "edge_gap": None,
        "roi_per_dollar": None,
        "roi_ci_low": None,
        "roi_ci_high": None,
        "total_pnl": 0.0,
        "final_bankroll": bankroll,
        "max_drawdown": 0.0,
        "daily_sharpe": None,
        "sharpe_se": None,
        "n_days": 0,
    }
    if done.is_empty():
        return metrics

    won = done["won"].cast(pl.Float64)
    total_pnl = float(done["pnl"].sum())
    total_stake = float(done["stake"].sum())
    predicted = float(done["predicted_ev"].mean())
    realised = float(won.mean()) - float(done["cost"].mean())
    metrics.update(
        win_rate=float(won.mean()),
        avg_predicted_edge=predicted,
        avg_realised_edge=realised,
        edge_gap=predicted - realised,
        roi_per_dollar=total_pnl / total_stake,
        total_pnl=total_pnl,
        final_bankroll=bankroll + total_pnl,
    )

    by_time = done.group_by("settled_at").agg(pl.col("pnl").sum()).sort("settled_at")
    equity = [bankroll, *(bankroll + by_time["pnl"].cum_sum()).to_list()]
    metrics["max_drawdown"] = max_drawdown(equity)

    returns = daily_returns(done, bankroll)
    metrics["n_days"] = len(returns)
    sharpe, se = sharpe_ratio(returns)
    metrics.update(daily_sharpe=sharpe, sharpe_se=se)

    # Sorted so that the seeded resampling picks the same clusters on every run.
    clusters = (
        done.group_by(pl.coalesce("cluster", "market_id").alias("_c"))
        .agg(pl.col("pnl").sum(), pl.col("stake").sum())
        .sort("_c")
    )
    metrics["n_clusters"] = clusters.height
    low, high = cluster_bootstrap_roi(
        clusters["pnl"].to_numpy(),
        clusters["stake"].to_numpy(),
        draws=config.bootstrap_draws,
        seed=config.bootstrap_seed,
        confidence=config.confidence,
    )
    metrics.update(roi_ci_low=low, roi_ci_high=high)
    return metrics


def daily_returns(settled: pl.DataFrame, bankroll: float) -> list[float]:
    """Daily realised returns: P&L settled on each UTC date / equity at that day's start.

    The calendar runs from the first entry date to the last settlement date; days without
    a settlement return 0 (capital was at work, or idle, that day).
    """
    if settled.is_empty():
        return []
    daily = settled.group_by(pl.col("settled_at").dt.date().alias("day")).agg(pl.col("pnl").sum())
    first = min(settled["window_start"].min().date(), daily["day"].min())  # type: ignore[union-attr]
    last = daily["day"].max()
    calendar = pl.DataFrame({"day": pl.date_range(first, last, interval="1d", eager=True)})
    pnl = calendar.join(daily, on="day", how="left")["pnl"].fill_null(0.0).to_numpy()
    start_equity = bankroll + np.concatenate([[0.0], np.cumsum(pnl)[:-1]])
    return (pnl / start_equity).tolist()


def max_drawdown(equity: Sequence[float]) -> float:
    """Largest peak-to-trough fall of an equity curve, as a fraction of the peak (0 if none)."""
    values = np.asarray(equity, dtype=float)
    if values.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(values)
    return float(np.max((peaks - values) / peaks))


def sharpe_ratio(daily: Sequence[float]) -> tuple[float | None, float | None]:
    """Annualised Sharpe of daily returns and its standard error (Lo 2002).

    SR = mean/std (sample, ddof 1) · √365. With s = SR/√365 the daily Sharpe and T days,
    SE(SR) ≈ √365 · √((1 + s²/2)/T): a true SR of 1.5 needs ≈ 650 days for t = 2.
    None with fewer than 2 days or zero variance.
    """
    values = np.asarray(daily, dtype=float)
    if values.size < 2:
        return None, None
    std = float(values.std(ddof=1))
    if std == 0.0 or not math.isfinite(std):
        return None, None
    per_day = float(values.mean()) / std
    se = math.sqrt(DAYS_PER_YEAR) * math.sqrt((1.0 + per_day**2 / 2.0) / values.size)
    return per_day * math.sqrt(DAYS_PER_YEAR), se


def cluster_bootstrap_roi(
    pnl: np.ndarray,
    stake: np.ndarray,
    *,
    draws: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile interval of Σ pnl / Σ stake, resampling clusters with replacement.

    ``pnl`` and ``stake`` are per-cluster totals. None with fewer than 2 clusters.
    """
    count = len(pnl)
    if count < 2:
        return None, None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, count, size=(draws, count))
    rois = pnl[picks].sum(axis=1) / stake[picks].sum(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(rois, [tail, 1.0 - tail])
    return float(low), float(high)
