"""Paper trading: fills, settlement, compounding, metrics, and a synthetic proof."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pydantic
import pytest

from btc_tracker_pipeline.model.edges import INPUT_SCHEMA, EdgeConfig, edge_report
from btc_tracker_pipeline.model.paper import (
    TRADES_SCHEMA,
    PaperConfig,
    cluster_bootstrap_roi,
    max_drawdown,
    sharpe_ratio,
    simulate,
    trade_metrics,
    walk_forward_report,
)
from btc_tracker_pipeline_tests.model import edge_row

pytestmark = pytest.mark.unit

W0 = datetime(2026, 3, 1, 10, 0)
RESOLUTION_SCHEMA = {"market_id": pl.String, "yes_won": pl.Boolean, "settled_at": pl.Datetime("us")}
FEE_YES = 0.07 * 0.57 * 0.43  # YES at a 57¢ ask
FEE_NO = 0.07 * 0.55 * 0.45  # NO at 1 − 45¢ bid


def row(**overrides: object) -> dict:
    """A tradeable row: 1¢ book at 50¢, fees on, a day to expiry."""
    return edge_row(**{"structural_probability": 0.50, **overrides})


def yes_row(market: str, cluster: str, start: datetime = W0, **overrides: object) -> dict:
    """BUY YES at a 57¢ ask (model 0.70): f* ≈ 0.273, capped at 2 % of bankroll."""
    values = {"model_prob": 0.70, "market_prob": 0.56, "best_bid": 0.55, "best_ask": 0.57}
    return row(market_id=market, cluster=cluster, window_start=start, **{**values, **overrides})


def no_row(market: str, cluster: str, start: datetime = W0) -> dict:
    """BUY NO at 1 − 45¢ bid (model 0.30)."""
    values = {"model_prob": 0.30, "market_prob": 0.46, "best_bid": 0.45, "best_ask": 0.47}
    return row(market_id=market, cluster=cluster, window_start=start, **values)


# A book too deep to move: the fill tests below price at the best level exactly
# (``test_a_stake_walks_a_thin_book`` prices the depth).
DEEP = math.inf


def report(
    *rows: dict, edge: EdgeConfig | None = None, liquidity: float | None = DEEP
) -> pl.DataFrame:
    frame = edge_report(pl.DataFrame(list(rows), schema=INPUT_SCHEMA), edge or EdgeConfig())
    return frame.with_columns(
        pl.lit(liquidity, dtype=pl.Float64).alias("book_liquidity"),
        pl.lit("book").alias("liquidity_source"),
    )


def resolutions(*items: tuple[str, bool | None, datetime]) -> pl.DataFrame:
    return pl.DataFrame(list(items), schema=RESOLUTION_SCHEMA, orient="row")


def by_market(trades: pl.DataFrame) -> dict[str, dict]:
    return {t["market_id"]: t for t in trades.iter_rows(named=True)}


# --- fills and settlement ------------------------------------------------------------------


def test_winning_yes_and_losing_no_settle_to_the_right_pnl():
    settle = W0 + timedelta(days=1)
    trades, metrics = simulate(
        report(yes_row("y", "a"), no_row("n", "b")),
        resolutions(("y", True, settle), ("n", True, settle)),
    )
    assert trades.columns == list(TRADES_SCHEMA)
    t = by_market(trades)
    cost_yes, cost_no = 0.57 + FEE_YES, 0.55 + FEE_NO
    assert (t["y"]["side"], t["y"]["price"], t["y"]["fee"]) == ("YES", 0.57, pytest.approx(FEE_YES))
    assert t["y"]["cost"] == pytest.approx(cost_yes)
    assert t["y"]["stake"] == pytest.approx(200.0)
    assert t["y"]["shares"] == pytest.approx(200.0 / cost_yes)
    assert t["y"]["won"] is True
    assert t["y"]["pnl"] == pytest.approx(200.0 / cost_yes - 200.0)
    assert t["y"]["roi"] == pytest.approx(1 / cost_yes - 1)
    assert t["y"]["predicted_ev"] == pytest.approx(0.70 - cost_yes)
    assert t["y"]["settled_at"] == settle
    assert (t["n"]["side"], t["n"]["price"]) == ("NO", pytest.approx(0.55))
    assert t["n"]["fee"] == pytest.approx(FEE_NO)
    assert t["n"]["won"] is False
    assert t["n"]["pnl"] == pytest.approx(-200.0)
    assert t["n"]["roi"] == pytest.approx(-1.0)

    total = 200.0 / cost_yes - 400.0
    assert metrics["n_trades"] == 2
    assert metrics["n_open"] == 0
    assert metrics["win_rate"] == 0.5
    assert metrics["total_pnl"] == pytest.approx(total)
    assert metrics["final_bankroll"] == pytest.approx(10_000 + total)
    assert metrics["roi_per_dollar"] == pytest.approx(total / 400.0)
    assert metrics["avg_realised_edge"] == pytest.approx(0.5 - (cost_yes + cost_no) / 2)
    assert metrics["avg_predicted_edge"] == pytest.approx(
        ((0.70 - cost_yes) + (0.70 - cost_no)) / 2
    )
    assert metrics["edge_gap"] == pytest.approx(
        metrics["avg_predicted_edge"] - metrics["avg_realised_edge"]
    )


def test_a_winning_no_pays_one_per_share():
    trades, _ = simulate(report(no_row("n", "b")), resolutions(("n", False, W0 + timedelta(1))))
    t = trades.row(0, named=True)
    assert t["won"] is True
    assert t["pnl"] == pytest.approx(t["shares"] - t["stake"])


def test_first_recommendation_per_market_only():
    rows = [
        yes_row("m", "a", W0 + timedelta(minutes=15 * k), model_prob=0.70 + k / 100)
        for k in range(3)
    ]
    frame = report(*reversed(rows))
    res = resolutions(("m", True, W0 + timedelta(days=1)))
    trades, _ = simulate(frame, res)
    assert trades.height == 1
    assert trades["window_start"][0] == W0
    assert trades["predicted_ev"][0] == pytest.approx(0.70 - 0.57 - FEE_YES)
    loose = EdgeConfig(max_stake_per_market=1.0, max_stake_per_cluster=1.0)
    many, _ = simulate(frame, res, PaperConfig(edge=loose, one_trade_per_market=False))
    assert many.height == 3
    # With repeated entries the market cap bounds the open stake in the market.
    capped, _ = simulate(frame, res, PaperConfig(one_trade_per_market=False))
    assert capped["stake"].sum() == pytest.approx(200.0)


def test_stakes_compound_on_the_realised_bankroll():
    settle_a = W0 + timedelta(hours=1)
    frame = report(
        yes_row("a", "ca"),
        yes_row("early", "cb", W0 + timedelta(minutes=30)),  # fills at 10:45, before a settles
        yes_row("late", "cc", W0 + timedelta(hours=2)),
    )
    trades, metrics = simulate(
        frame,
        resolutions(("a", True, settle_a), ("early", True, W0 + timedelta(days=1))),
    )
    t = by_market(trades)
    pnl_a = t["a"]["pnl"]
    assert pnl_a > 0
    assert t["early"]["stake"] == pytest.approx(200.0)
    assert t["late"]["stake"] == pytest.approx(0.02 * (10_000 + pnl_a))
    assert metrics["n_open"] == 1


def test_never_stake_more_than_free_cash():
    edge = EdgeConfig(kelly_fraction=1.0, max_stake_per_market=1.0, max_stake_per_cluster=1.0)
    frame = report(
        *(row(market_id=m, cluster=m, model_prob=0.99) for m in ("a", "b", "c")), edge=edge
    )
    settle = W0 + timedelta(days=1)
    trades, _ = simulate(
        frame,
        resolutions(*((m, True, settle) for m in ("a", "b", "c"))),
        PaperConfig(edge=edge),
    )
    cost = 0.51 + 0.07 * 0.51 * 0.49
    kelly = (0.99 - cost) / (1 - cost)
    assert trades["stake"][0] == pytest.approx(kelly * 10_000)
    assert trades["stake"].sum() == pytest.approx(10_000.0)
    assert trades.height == 2


def test_per_cluster_cap_holds_across_windows_until_settlement():
    settle = W0 + timedelta(days=1)
    frame = report(*(yes_row(f"m{k}", "ladder", W0 + timedelta(minutes=15 * k)) for k in range(4)))
    trades, _ = simulate(frame, resolutions(*((f"m{k}", True, settle) for k in range(4))))
    assert trades["stake"].to_list() == pytest.approx([200.0, 200.0, 100.0])


def test_open_and_void_trades_are_excluded_from_realised_metrics():
    settle = W0 + timedelta(days=1)
    trades, metrics = simulate(
        report(yes_row("done", "a"), yes_row("open", "b"), yes_row("void", "c")),
        resolutions(("done", True, settle), ("void", None, settle)),
    )
    t = by_market(trades)
    assert trades.height == 3
    for market in ("open", "void"):
        assert (t[market]["won"], t[market]["pnl"], t[market]["settled_at"]) == (None, None, None)
    assert metrics["n_trades"] == 1
    assert metrics["n_open"] == 2
    assert metrics["total_pnl"] == pytest.approx(t["done"]["pnl"])
    assert metrics["roi_per_dollar"] == pytest.approx(t["done"]["roi"])
    assert metrics["win_rate"] == 1.0


def test_markets_settled_before_entry_are_not_traded():
    trades, metrics = simulate(
        report(yes_row("gone", "a"), yes_row("live", "b")),
        resolutions(("gone", True, W0 + timedelta(minutes=10)), ("live", False, W0 + timedelta(1))),
    )
    assert trades["market_id"].to_list() == ["live"]
    assert metrics["n_trades"] == 1


def test_no_trades():
    trades, metrics = simulate(report(row()), resolutions())
    assert trades.is_empty()
    assert metrics["n_trades"] == 0
    assert metrics["roi_per_dollar"] is None
    assert metrics["final_bankroll"] == 10_000
    assert trade_metrics(pl.DataFrame(schema=TRADES_SCHEMA))["daily_sharpe"] is None


def test_configuration_is_frozen():
    config = PaperConfig()
    with pytest.raises(pydantic.ValidationError):
        config.one_trade_per_market = False  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.edge.min_edge = 0.0  # type: ignore[misc]


def test_missing_report_column_is_an_error():
    with pytest.raises(ValueError, match="kelly"):
        simulate(report(row()).drop("kelly"), resolutions())


# --- risk metrics --------------------------------------------------------------------------


def test_max_drawdown_on_a_hand_made_path():
    assert max_drawdown([100, 120, 90, 130, 65, 140]) == pytest.approx(0.5)
    assert max_drawdown([100, 110, 120]) == 0.0
    assert max_drawdown([100, 75]) == pytest.approx(0.25)


def test_sharpe_and_its_standard_error_on_a_hand_made_path():
    daily = [0.01, -0.01, 0.02, 0.0]
    sharpe, se = sharpe_ratio(daily)
    per_day = 0.005 / math.sqrt(0.0005 / 3)
    assert sharpe == pytest.approx(per_day * math.sqrt(365))
    assert se == pytest.approx(math.sqrt(365) * math.sqrt((1 + per_day**2 / 2) / 4))
    assert sharpe_ratio([0.01]) == (None, None)
    assert sharpe_ratio([0.01, 0.01]) == (None, None)
    # docs/modeling.md §2.4: a true Sharpe of 1.5 needs ≈ 650 days to reach t = 2.
    unit = math.sqrt(649 / 650)  # alternating ±unit has sample std 1 over 650 days
    days = [1.5 / math.sqrt(365) + (unit if i % 2 else -unit) for i in range(650)]
    sharpe, se = sharpe_ratio(days)
    assert sharpe == pytest.approx(1.5, rel=1e-6)
    assert sharpe / se == pytest.approx(2.0, abs=0.01)


def test_equity_path_metrics_from_settlements():
    # Entered on day 1; +pnl settles on day 1, a loss on day 3, nothing on day 2.
    day1 = datetime(2026, 3, 1, 10, 0)
    trades, metrics = simulate(
        report(yes_row("w", "a", day1), yes_row("l", "b", day1)),
        resolutions(("w", True, day1 + timedelta(hours=5)), ("l", False, day1 + timedelta(days=2))),
    )
    t = by_market(trades)
    win, loss = t["w"]["pnl"], t["l"]["pnl"]
    assert loss == pytest.approx(-200.0)
    daily = [win / 10_000, 0.0, loss / (10_000 + win)]
    sharpe, se = sharpe_ratio(daily)
    assert metrics["n_days"] == 3
    assert metrics["daily_sharpe"] == pytest.approx(sharpe)
    assert metrics["sharpe_se"] == pytest.approx(se)
    assert metrics["max_drawdown"] == pytest.approx(200.0 / (10_000 + win))


def test_cluster_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    stake = rng.uniform(50, 200, 300)
    pnl = stake * rng.normal(0.02, 0.5, 300)
    low, high = cluster_bootstrap_roi(pnl, stake, draws=1000, seed=7)
    assert (low, high) == cluster_bootstrap_roi(pnl, stake, draws=1000, seed=7)
    assert low < pnl.sum() / stake.sum() < high
    same = cluster_bootstrap_roi(np.full(5, 2.0), np.full(5, 10.0))
    assert same == pytest.approx((0.2, 0.2))
    assert cluster_bootstrap_roi(np.array([1.0]), np.array([2.0])) == (None, None)


# --- synthetic proof -----------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def synthetic_world(kind: str, n: int = 2000, seed: int = 11) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` markets in ladders of 4 (one window each, every 4 h), settling a day later.

    ``truth`` ~ U(0.03, 0.97) and y ~ Bernoulli(truth); a 1¢ half-spread book and crypto
    fees. ``distorted``: the mid is a favourite–longshot distortion of the truth,
    logit(mid) = 0.65·logit(truth) (10 % → 19¢), and the model is the truth.
    ``efficient``: the mid is the truth and the model is the mid plus logit noise (sd 0.4).
    """
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.03, 0.97, n)
    if kind == "distorted":
        mid, model = _sigmoid(0.65 * _logit(truth)), truth
    else:
        mid, model = truth, _sigmoid(_logit(truth) + rng.normal(0.0, 0.4, n))
    mid = np.clip(np.round(mid, 2), 0.02, 0.98)
    won = rng.random(n) < truth
    starts = [W0 + timedelta(hours=4 * (i // 4)) for i in range(n)]
    rows = pl.DataFrame(
        {
            "window_start": starts,
            "market_id": [f"m{i}" for i in range(n)],
            "family": "above",
            "question": "synthetic",
            "cluster": [f"e{i // 4}" for i in range(n)],
            "market_prob": mid,
            "best_bid": mid - 0.01,
            "best_ask": mid + 0.01,
            "model_prob": model,
            "structural_probability": truth,
            "fees_enabled": True,
            "fee_rate": 0.07,
            "fee_exponent": 1.0,
            "time_to_expiry_hours": 24.0,
            "q_spot": 1,
            "parse_source": "structured",
            "barrier_touched": False,
        },
        schema_overrides=INPUT_SCHEMA,
    )
    settled = pl.DataFrame(
        {
            "market_id": rows["market_id"],
            "yes_won": won,
            "settled_at": [s + timedelta(days=1, minutes=15) for s in starts],
        },
        schema=RESOLUTION_SCHEMA,
    )
    return rows, settled


def test_true_model_against_a_distorted_market_profits_after_fees():
    rows, settled = synthetic_world("distorted")
    trades, metrics = simulate(edge_report(rows), settled)
    assert metrics["n_trades"] > 800
    assert metrics["roi_ci_low"] > 0
    assert metrics["avg_realised_edge"] > 0
    assert metrics["total_pnl"] > 0
    # The bias is harvested by buying favourites on both sides: YES on underpriced
    # favourites, NO against overpriced longshots.
    by_side = dict(trades.group_by("side").agg(pl.col("price").min()).iter_rows())
    assert set(by_side) == {"YES", "NO"}
    assert min(by_side.values()) > 0.5
    # The model is the truth: realised edge matches the predicted edge within noise.
    assert abs(metrics["avg_realised_edge"] - metrics["avg_predicted_edge"]) < 0.03


def test_noisy_model_against_an_efficient_market_does_not_profit():
    rows, settled = synthetic_world("efficient")
    _, metrics = simulate(edge_report(rows), settled)
    assert metrics["n_trades"] > 300
    assert metrics["roi_ci_low"] < 0
    assert metrics["roi_per_dollar"] < 0.02
    assert simulate(edge_report(rows), settled)[1] == metrics
    # Noise looks like edge before the fact and costs money after it.
    assert metrics["avg_predicted_edge"] > 0.05
    assert metrics["avg_realised_edge"] < metrics["avg_predicted_edge"] - 0.05
    assert metrics["edge_gap"] > 0.05


# --- the skill gate, fold by fold ----------------------------------------------------------


def fold_rows() -> pl.DataFrame:
    """A BUY YES of ``above`` and one of ``updown_1h`` in each of folds 0, 1, 2."""
    rows = []
    for fold in range(3):
        for family in ("above", "updown_1h"):
            start = W0 + timedelta(days=fold)
            market = f"{family}-{fold}"
            rows.append({**yes_row(market, market, start, family=family), "fold": fold})
    return pl.DataFrame(rows, schema={**INPUT_SCHEMA, "fold": pl.Int32})


def test_walk_forward_report_gates_each_fold_with_its_own_families():
    tradeable = {0: set(), 1: {"above"}, 2: {"above", "updown_1h"}}
    out = walk_forward_report(fold_rows(), EdgeConfig(), tradeable)
    got = {r["market_id"]: r for r in out.iter_rows(named=True)}
    assert out.height == 6 and "fold" in out.columns
    buys = {m for m, r in got.items() if r["recommendation"] != "PASS"}
    assert buys == {"above-1", "above-2", "updown_1h-2"}
    for market in ("above-0", "updown_1h-0", "updown_1h-1"):
        assert "no_proven_skill" in got[market]["flags"]
        assert got[market]["side"] == "YES"
    # A fold absent from the gates trades nothing.
    assert set(walk_forward_report(fold_rows(), EdgeConfig(), {})["recommendation"]) == {"PASS"}
    with pytest.raises(ValueError, match="fold"):
        walk_forward_report(fold_rows().drop("fold"), EdgeConfig(), tradeable)


def test_paper_trades_only_the_gated_folds_families():
    tradeable = {0: set(), 1: {"above"}, 2: {"above"}}
    settle = [
        (f"{f}-{k}", True, W0 + timedelta(days=k, hours=2))
        for k in range(3)
        for f in ("above", "updown_1h")
    ]
    trades, metrics = simulate(
        walk_forward_report(fold_rows(), EdgeConfig(), tradeable), resolutions(*settle)
    )
    assert sorted(trades["market_id"]) == ["above-1", "above-2"]
    assert metrics["n_trades"] == 2


def test_a_stake_walks_a_thin_book():
    """$200 (2 % of $10k) into a $2,000 book: $100 a tick a side, two ticks taken, so the
    fill is a cent above the ask on average, and the fee is charged at that price."""
    settle = W0 + timedelta(days=1)
    thin, _ = simulate(
        report(yes_row("y", "a"), liquidity=2_000.0), resolutions(("y", True, settle))
    )
    deep, _ = simulate(report(yes_row("y", "a")), resolutions(("y", True, settle)))
    t, d = thin.row(0, named=True), deep.row(0, named=True)
    assert t["stake"] == d["stake"] == pytest.approx(200.0)
    assert d["price"] == 0.57 and d["slippage"] == 0.0
    assert t["price"] == pytest.approx(0.58) and t["slippage"] == pytest.approx(0.01)
    assert t["fee"] == pytest.approx(0.07 * 0.58 * 0.42)
    assert t["shares"] < d["shares"] and t["pnl"] < d["pnl"]
    # Without a depth the report is taken at the default $2,000 book.
    plain = edge_report(pl.DataFrame([yes_row("y", "a")], schema=INPUT_SCHEMA))
    default, _ = simulate(plain, resolutions(("y", True, settle)))
    assert default.row(0, named=True)["price"] == pytest.approx(0.58)
    assert default.row(0, named=True)["liquidity_source"] == "default"
