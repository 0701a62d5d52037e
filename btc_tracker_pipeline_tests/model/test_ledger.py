"""The forward paper ledger's core (model/ledger.py): which rows open a position, the
Kelly stake on the ledger bankroll, the price paid, settlement and void, the summary."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl
import pytest

from btc_tracker_pipeline.model.edges import INPUT_SCHEMA, EdgeConfig, edge_report
from btc_tracker_pipeline.model.ledger import (
    LEDGER_SCHEMA,
    MIN_SETTLED,
    SETTLEMENT_COLUMNS,
    LedgerConfig,
    empty_ledger,
    equity_by_day,
    ledger_bankroll,
    open_positions,
    settle,
    summary,
    with_settlements,
)
from btc_tracker_pipeline.model.paper import fill
from btc_tracker_pipeline_tests.model import edge_row

pytestmark = pytest.mark.unit

W0 = datetime(2026, 3, 1, 10, 0)
CONFIG = LedgerConfig()
START = CONFIG.starting_bankroll
LABEL_SCHEMA = {
    "window_start": pl.Datetime("us"),
    "market_id": pl.String,
    "status": pl.String,
    "yes_won": pl.Boolean,
    "settled_at": pl.Datetime("us"),
}


def yes_row(market: str, cluster: str | None = None, **overrides: object) -> dict:
    """BUY YES at a 57¢ ask (model 0.70): f* ≈ 0.27, so ¼ Kelly is capped at 2 %."""
    values = {"model_prob": 0.70, "market_prob": 0.56, "best_bid": 0.55, "best_ask": 0.57}
    return edge_row(
        market_id=market, cluster=cluster or market, window_start=W0, **{**values, **overrides}
    )


def small_row(market: str) -> dict:
    """BUY YES at a 10¢ ask (model 0.16): f* ≈ 0.06, so ¼ Kelly stays under the 2 % cap."""
    return yes_row(market, model_prob=0.16, market_prob=0.095, best_bid=0.09, best_ask=0.10)


def no_row(market: str, cluster: str | None = None) -> dict:
    """BUY NO at 1 − 45¢ bid (model 0.30)."""
    values = {"model_prob": 0.30, "market_prob": 0.46, "best_bid": 0.45, "best_ask": 0.47}
    return edge_row(market_id=market, cluster=cluster or market, window_start=W0, **values)


def recommendations(
    *rows: dict,
    source: str = "live",
    in_sample: bool | None = False,
    liquidity: float = math.inf,
) -> pl.DataFrame:
    """The asset's input: edge_report rows with the snapshot's source, quote time and
    book depth (infinite: no slippage unless a test sets one)."""
    report = edge_report(pl.DataFrame(list(rows), schema=INPUT_SCHEMA), EdgeConfig())
    return report.with_columns(
        (pl.col("window_start") + timedelta(minutes=15)).alias("window_end"),
        pl.lit("v1").alias("model_version"),
        pl.lit(in_sample, dtype=pl.Boolean).alias("in_sample"),
        pl.lit(source).alias("source"),
        (pl.col("window_start") + timedelta(minutes=15, seconds=3)).alias("opened_at"),
        pl.lit(liquidity).alias("book_liquidity"),
    )


def labels(*items: tuple[str, str, bool | None]) -> pl.DataFrame:
    at = W0 + timedelta(hours=2)
    return pl.DataFrame(
        [(at, market, status, yes_won, at) for market, status, yes_won in items],
        schema=LABEL_SCHEMA,
        orient="row",
    )


# --- which rows open a position ------------------------------------------------------------


def test_only_live_recommendations_out_of_sample_open_a_position():
    rows = (yes_row("y"), no_row("n"), yes_row("pass", model_prob=0.56))
    opened = open_positions(recommendations(*rows), empty_ledger())
    assert sorted(opened["market_id"]) == ["n", "y"]  # the PASS row opens nothing
    assert opened["status"].to_list() == ["open", "open"]
    assert dict(zip(opened["market_id"], opened["side"], strict=True)) == {"y": "YES", "n": "NO"}
    assert opened["position_id"].sort().to_list() == ["n@2026-03-01T10:00", "y@2026-03-01T10:00"]
    # A backfilled (history) window, an in-sample one, or an unknown one opens nothing.
    for frame in (
        recommendations(*rows, source="history"),
        recommendations(*rows, in_sample=True),
        recommendations(*rows, in_sample=None),
    ):
        assert open_positions(frame, empty_ledger()).is_empty()


def test_a_market_holds_one_position_whatever_the_later_windows_say():
    first = open_positions(recommendations(yes_row("y")), empty_ledger())
    later = recommendations(yes_row("y"), no_row("n")).with_columns(
        pl.col("window_start") + timedelta(hours=1)
    )
    again = open_positions(later, first)
    assert again["market_id"].to_list() == ["n"]
    # The same window twice in one frame: once.
    twice = pl.concat([recommendations(yes_row("y")), later.filter(pl.col("market_id") == "y")])
    assert open_positions(twice, empty_ledger())["position_id"].to_list() == ["y@2026-03-01T10:00"]


# --- stake, price and bankroll ---------------------------------------------------------------


def test_stakes_are_the_backtests_kelly_on_the_ledger_bankroll():
    # Three markets of one event: 2 % each of a bankroll that shrinks by each stake, then
    # the event cap (5 % of what is left) cuts the third.
    rows = [yes_row(m, "event", model_prob=0.70 + i / 100) for i, m in enumerate("abc")]
    opened = open_positions(recommendations(*rows), empty_ledger()).sort("stake", descending=True)
    by_id = {r["market_id"]: r for r in opened.iter_rows(named=True)}
    # Larger net edges first: c (0.72), then b, then a.
    assert by_id["c"]["bankroll_at_open"] == START
    assert by_id["c"]["stake"] == pytest.approx(0.02 * START)
    assert by_id["b"]["bankroll_at_open"] == pytest.approx(START - 200.0)
    assert by_id["b"]["stake"] == pytest.approx(0.02 * (START - 200.0))
    b2 = START - 200.0 - by_id["b"]["stake"]
    assert by_id["a"]["bankroll_at_open"] == pytest.approx(b2)
    cap = 0.05 * b2 - (200.0 + by_id["b"]["stake"])
    assert by_id["a"]["stake"] == pytest.approx(cap)
    # An uncapped small edge is κ·f*·B with the report's Kelly fraction.
    small = open_positions(recommendations(small_row("s")), empty_ledger()).row(0, named=True)
    assert small["stake"] == pytest.approx(0.25 * small["kelly"] * START)
    assert small["stake"] < 0.02 * START


def test_the_bankroll_is_start_plus_realised_pnl_minus_open_stakes():
    opened = open_positions(recommendations(yes_row("y"), no_row("n")), empty_ledger())
    assert ledger_bankroll(opened) == pytest.approx(START - opened["stake"].sum())
    settled = with_settlements(opened, settle(opened, labels(("y", "resolved", True))))
    won = settled.filter(pl.col("market_id") == "y").row(0, named=True)
    n_stake = opened.filter(pl.col("market_id") == "n")["stake"][0]
    assert ledger_bankroll(settled) == pytest.approx(START + won["pnl"] - n_stake)
    # The next stake is sized on that bankroll.
    later = recommendations(small_row("z")).with_columns(
        pl.col("window_start") + timedelta(hours=3)
    )
    z = open_positions(later, settled).row(0, named=True)
    assert z["bankroll_at_open"] == pytest.approx(ledger_bankroll(settled))
    assert z["stake"] == pytest.approx(0.25 * z["kelly"] * ledger_bankroll(settled))


def test_price_paid_is_the_ask_plus_slippage_plus_the_fee_and_predicted_edge_is_net_of_it():
    frame = recommendations(yes_row("y"), no_row("n"), liquidity=2_000.0)
    positions = open_positions(frame, empty_ledger())
    opened = {r["market_id"]: r for r in positions.iter_rows(named=True)}
    report = {r["market_id"]: r for r in frame.iter_rows(named=True)}
    for market, yes, q in (("y", True, 0.70), ("n", False, 0.70)):
        p = opened[market]
        price, _, cost, best = fill(p["stake"], yes, report[market])
        assert best == pytest.approx(0.57 if yes else 0.55)  # the ask, or 1 − the bid
        assert p["slippage"] == pytest.approx(price - best) and p["slippage"] > 0.0
        assert p["fee"] == pytest.approx(0.07 * price * (1 - price))
        assert p["price_paid"] == pytest.approx(cost) == pytest.approx(price + p["fee"])
        assert p["shares"] == pytest.approx(p["stake"] / p["price_paid"])
        assert p["predicted_edge"] == pytest.approx(q - p["price_paid"])
        # The edge report's net edge after spread and fee, less the slippage (and its fee).
        assert p["predicted_edge"] == pytest.approx(
            report[market]["net_edge"] - p["slippage"], abs=1e-3
        )


# --- settlement --------------------------------------------------------------------------------


def test_settlement_pays_the_winning_side_and_changes_only_the_settlement_columns():
    opened = open_positions(recommendations(yes_row("y"), no_row("n")), empty_ledger())
    settled = settle(opened, labels(("y", "resolved", True), ("n", "resolved", True)))
    rows = {r["market_id"]: r for r in settled.iter_rows(named=True)}
    y, n = rows["y"], rows["n"]
    assert y["status"] == n["status"] == "settled"
    assert y["outcome"] == n["outcome"] == 1
    assert y["payout"] == pytest.approx(y["shares"]) and n["payout"] == 0.0
    assert y["pnl"] == pytest.approx(y["shares"] - y["stake"]) and n["pnl"] == -n["stake"]
    assert y["realised_edge"] == pytest.approx(1.0 - y["price_paid"])
    assert n["realised_edge"] == pytest.approx(-n["price_paid"])
    assert y["settled_at"] == W0 + timedelta(hours=2)
    kept = [c for c in LEDGER_SCHEMA if c not in SETTLEMENT_COLUMNS]
    assert settled.sort("market_id").select(kept).equals(opened.sort("market_id").select(kept))
    # A settled position is not settled again.
    assert settle(with_settlements(opened, settled), labels(("y", "void", None))).is_empty()


def test_a_void_label_returns_the_stake_and_an_unsettled_one_keeps_the_position_open():
    opened = open_positions(recommendations(yes_row("v"), no_row("u")), empty_ledger())
    settled = settle(opened, labels(("v", "void", None), ("u", "unsettled", None)))
    # Closed at 0.995/0.005 is not yet a settlement: voiding it would be final.
    assert settled["market_id"].to_list() == ["v"]
    for r in settled.iter_rows(named=True):
        assert r["status"] == "void" and r["pnl"] == 0.0 and r["payout"] == r["stake"]
        assert r["outcome"] is None and r["realised_edge"] is None
    ledger = with_settlements(opened, settled)
    assert ledger.filter(pl.col("market_id") == "u")["status"].to_list() == ["open"]
    later = settle(ledger, labels(("u", "resolved", False)))
    assert later["status"].to_list() == ["settled"]


def test_a_winning_no_position_is_paid_its_shares():
    opened = open_positions(recommendations(no_row("n")), empty_ledger())
    [n] = settle(opened, labels(("n", "resolved", False))).iter_rows(named=True)
    assert n["status"] == "settled" and n["outcome"] == 0
    assert n["payout"] == pytest.approx(n["shares"])
    assert n["pnl"] == pytest.approx(n["shares"] - n["stake"]) and n["pnl"] > 0
    assert n["realised_edge"] == pytest.approx(1.0 - n["price_paid"])


def test_a_resolved_label_wins_over_an_older_or_newer_void_one():
    opened = open_positions(recommendations(yes_row("y")), empty_ledger())
    both = pl.concat(
        [
            labels(("y", "resolved", False)),
            labels(("y", "unsettled", None)).with_columns(
                pl.col("window_start") + timedelta(minutes=15)
            ),
        ]
    )
    assert settle(opened, both)["status"].to_list() == ["settled"]


def test_no_label_no_settlement():
    opened = open_positions(recommendations(yes_row("y")), empty_ledger())
    assert settle(opened, labels(("other", "resolved", True))).is_empty()


# --- the summary ---------------------------------------------------------------------------


def test_summary_compares_predicted_and_realised_and_says_when_it_is_meaningful():
    markets = [f"m{i}" for i in range(MIN_SETTLED)]
    opened = open_positions(
        recommendations(*(yes_row(m, model_prob=0.645) for m in markets)), empty_ledger()
    )
    outcomes = [i % 2 == 0 for i in range(MIN_SETTLED)]  # half the YES bets win
    few = settle(opened.head(3), labels(*(("m0", "resolved", True),)))
    figures = summary(with_settlements(opened, few))
    comparison = figures["predicted_vs_realised"]
    assert figures["settled"] == 1 and figures["open"] == MIN_SETTLED - 1
    assert comparison["positions"] == 1 and comparison["meaningful"] is False
    all_settled = settle(
        opened, labels(*((m, "resolved", w) for m, w in zip(markets, outcomes, strict=True)))
    )
    ledger = with_settlements(opened, all_settled)
    figures = summary(ledger)
    comparison = figures["predicted_vs_realised"]
    assert comparison["positions"] == MIN_SETTLED and comparison["meaningful"] is True
    assert figures["win_rate"] == pytest.approx(0.5)
    assert comparison["mean_predicted_edge"] == pytest.approx(all_settled["predicted_edge"].mean())
    assert comparison["mean_realised_edge"] == pytest.approx(0.5 - all_settled["price_paid"].mean())
    assert comparison["realised_return_per_dollar"] == pytest.approx(
        all_settled["pnl"].sum() / all_settled["stake"].sum()
    )
    assert figures["realised_pnl"] == pytest.approx(all_settled["pnl"].sum())
    equity = START + figures["realised_pnl"]
    assert figures["bankroll"] == pytest.approx(equity) == figures["equity"]
    curve = equity_by_day(ledger)
    assert curve["settled"].to_list() == [MIN_SETTLED]
    assert curve["equity"][-1] == pytest.approx(figures["equity"])


def test_an_empty_ledger_sums_to_the_starting_bankroll():
    figures = summary(empty_ledger())
    assert figures["bankroll"] == START and figures["win_rate"] is None
    assert figures["predicted_vs_realised"]["positions"] == 0
    assert equity_by_day(empty_ledger()).is_empty()
