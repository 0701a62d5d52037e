"""The edge report: fees, net edges, the threshold, Kelly sizing and caps, flags, Markdown."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from btc_tracker_pipeline.model.edges import (
    BUY_NO,
    BUY_YES,
    FLAGS,
    INPUT_SCHEMA,
    OUTPUT_COLUMNS,
    PASS,
    SPREAD_ESTIMATE,
    EdgeConfig,
    edge_report,
    fee_per_share,
    fee_per_share_expr,
    proven_families,
    top_opportunities_markdown,
)
from btc_tracker_pipeline_tests.model import edge_row

pytestmark = pytest.mark.unit

W0 = datetime(2026, 3, 1, 10, 0)
# No caps: stake = κ·f*·bankroll.
UNCAPPED = EdgeConfig(max_stake_per_market=1.0, max_stake_per_cluster=1.0)


def row(**overrides: object) -> dict:
    """A clean, tradeable row: structured parse, fresh spot, 1¢ book at 50¢, fees on."""
    return edge_row(**overrides)


def report(*rows: dict, config: EdgeConfig | None = None) -> pl.DataFrame:
    """The report of ``rows``; with a ``spread_estimate`` in any row, that input too."""
    schema = dict(INPUT_SCHEMA)
    if any(SPREAD_ESTIMATE in r for r in rows):
        schema[SPREAD_ESTIMATE] = pl.Float64()
    return edge_report(pl.DataFrame(list(rows), schema=schema), config or EdgeConfig())


def one(config: EdgeConfig | None = None, **overrides: object) -> dict:
    return report(row(**overrides), config=config).row(0, named=True)


def flags(**overrides: object) -> set[str]:
    text = one(**overrides)["flags"]
    return set(text.split(",")) if text else set()


# --- fees ----------------------------------------------------------------------------------

# docs/modeling.md §2.4: price → (fee in cents, % of cost), crypto rate 0.07.
FEE_TABLE = {
    0.05: (0.33, 6.7),
    0.10: (0.63, 6.3),
    0.25: (1.31, 5.3),
    0.50: (1.75, 3.5),
    0.75: (1.31, 1.8),
    0.90: (0.63, 0.7),
}


@pytest.mark.parametrize(("price", "expected"), FEE_TABLE.items())
def test_fee_table_of_the_modeling_doc(price, expected):
    cents, pct = expected
    fee = fee_per_share(price, 0.07)
    assert 100 * fee == pytest.approx(cents, abs=0.005)
    assert 100 * fee / price == pytest.approx(pct, abs=0.05)


def test_fee_expression_matches_the_float_function_and_handles_exponent():
    prices = [0.05, 0.3, 0.5, 0.97]
    frame = pl.DataFrame({"p": prices}).select(
        fee_per_share_expr(pl.col("p"), 0.07).alias("e1"),
        fee_per_share_expr(pl.col("p"), pl.lit(0.07), pl.lit(2.0)).alias("e2"),
    )
    assert frame["e1"].to_list() == pytest.approx([fee_per_share(p, 0.07) for p in prices])
    assert frame["e2"].to_list() == pytest.approx([fee_per_share(p, 0.07, 2.0) for p in prices])
    assert fee_per_share(0.5, 0.07, 2.0) == pytest.approx(0.07 * 0.0625)


def test_fees_disabled_cost_nothing():
    assert fee_per_share(0.5, 0.07, enabled=False) == 0.0
    assert fee_per_share(0.5, None) == 0.0
    out = one(fees_enabled=False)
    assert out["fee_yes"] == 0.0
    assert out["fee_no"] == 0.0
    assert "fees_enabled" not in out["flags"]


def test_unknown_fee_schedule_is_charged_the_default_rate():
    for overrides in ({"fees_enabled": None}, {"fee_rate": None}, {"fee_exponent": None}):
        out = one(**overrides)
        assert out["fee_yes"] == pytest.approx(0.07 * 0.51 * 0.49), overrides
    assert one(fee_rate=0.04)["fee_yes"] == pytest.approx(0.04 * 0.51 * 0.49)


# --- edges ---------------------------------------------------------------------------------


def test_net_edge_yes_by_hand():
    out = one(model_prob=0.70, market_prob=0.56, best_bid=0.55, best_ask=0.57)
    fee = 0.07 * 0.57 * 0.43
    assert out["fee_yes"] == pytest.approx(fee)
    assert out["net_edge_yes"] == pytest.approx(0.70 - 0.57 - fee)
    assert out["edge"] == pytest.approx(0.14)
    assert out["ev"] == pytest.approx(0.70 * 0.44 - 0.30 * 0.56)
    assert out["ev"] == pytest.approx(out["edge"])
    assert out["recommendation"] == BUY_YES
    assert out["side"] == "YES"
    assert out["cost"] == pytest.approx(0.57 + fee)
    assert out["ev_per_dollar"] == pytest.approx(out["net_edge_yes"] / (0.57 + fee))


def test_net_edge_no_by_hand():
    out = one(model_prob=0.30, market_prob=0.46, best_bid=0.45, best_ask=0.47)
    fee = 0.07 * 0.55 * 0.45
    assert out["fee_no"] == pytest.approx(fee)
    assert out["net_edge_no"] == pytest.approx(0.70 - 0.55 - fee)
    assert out["net_edge_yes"] == pytest.approx(0.30 - 0.47 - 0.07 * 0.47 * 0.53)
    assert out["recommendation"] == BUY_NO
    assert out["side"] == "NO"
    assert out["net_edge"] == pytest.approx(out["net_edge_no"])
    assert out["cost"] == pytest.approx(0.55 + fee)
    assert out["edge"] == pytest.approx(-0.16)


def test_threshold_applies_to_the_net_edge():
    # 6 pp at the mid: the seed's rule says BUY YES; spread and fee leave ≈ 3.3 pp.
    for book, extra in (
        ({"best_bid": 0.49, "best_ask": 0.51}, {}),
        ({"best_bid": None, "best_ask": None}, {"spread_estimate": 0.02}),
    ):
        out = report(row(model_prob=0.56, market_prob=0.50, **book) | extra).row(0, named=True)
        assert out["edge"] == pytest.approx(0.06)
        assert out["net_edge_yes"] == pytest.approx(0.56 - 0.51 - 0.07 * 0.51 * 0.49)
        assert out["recommendation"] == PASS
        assert out["stake"] == 0.0
    assert one(model_prob=0.56, config=EdgeConfig(min_edge=0.03))["recommendation"] == BUY_YES
    # Net edge exactly at the threshold trades.
    at = one(model_prob=0.51 + 0.07 * 0.51 * 0.49 + 0.05)
    assert at["recommendation"] == BUY_YES


def test_pass_rules_override_a_large_edge():
    big = {"model_prob": 0.90}
    assert one(**big)["recommendation"] == BUY_YES
    for overrides in (
        {"model_prob": None},
        {"time_to_expiry_hours": 0.0},
        {"time_to_expiry_hours": -3.0},
        {"time_to_expiry_hours": 0.5 / 60},
        {"time_to_expiry_hours": None},
        {"barrier_touched": True},
    ):
        out = one(**{**big, **overrides})
        assert out["recommendation"] == PASS, overrides
        assert out["stake"] == 0.0
    assert one(**big, time_to_expiry_hours=1.5 / 60)["recommendation"] == BUY_YES


# --- sizing --------------------------------------------------------------------------------


def test_kelly_fraction_and_stake():
    out = one(model_prob=0.70, market_prob=0.56, best_bid=0.55, best_ask=0.57, config=UNCAPPED)
    cost = 0.57 + 0.07 * 0.57 * 0.43
    kelly = (0.70 - cost) / (1 - cost)
    assert out["kelly"] == pytest.approx(kelly)
    assert out["stake"] == pytest.approx(0.25 * kelly * 10_000)
    no = one(model_prob=0.30, market_prob=0.46, best_bid=0.45, best_ask=0.47, config=UNCAPPED)
    cost_no = 0.55 + 0.07 * 0.55 * 0.45
    assert no["kelly"] == pytest.approx((0.70 - cost_no) / (1 - cost_no))
    half = EdgeConfig(
        kelly_fraction=0.5, bankroll=2_000, max_stake_per_market=1.0, max_stake_per_cluster=1.0
    )
    assert one(model_prob=0.70, best_bid=0.55, best_ask=0.57, config=half)["stake"] == (
        pytest.approx(0.5 * kelly * 2_000)
    )


def test_stake_capped_per_market():
    out = one(model_prob=0.90)
    assert 0.25 * out["kelly"] * 10_000 > 200
    assert out["stake"] == pytest.approx(200.0)


def test_stake_capped_per_cluster_in_descending_net_edge_order():
    rows = [
        row(market_id="a", model_prob=0.80),
        row(market_id="b", model_prob=0.90),
        row(market_id="c", model_prob=0.70),
        row(market_id="d", model_prob=0.75),
        row(market_id="e", model_prob=0.90, cluster="other"),
        row(market_id="f", model_prob=0.90, cluster=None),
        row(market_id="g", model_prob=0.90, window_start=W0 + timedelta(minutes=15)),
    ]
    stakes = dict(report(*rows).select("market_id", "stake").iter_rows())
    # Cluster e1 at W0: b, a, d want 200 each, c too; the 500 cap fills b, a, then 100 of d.
    assert stakes == pytest.approx(
        {"b": 200.0, "a": 200.0, "d": 100.0, "c": 0.0, "e": 200.0, "f": 200.0, "g": 200.0}
    )


# --- effective prices ----------------------------------------------------------------------


def test_default_spread_only_without_a_book():
    booked = one(market_prob=0.50, best_bid=0.45, best_ask=0.53)
    assert (booked["bid"], booked["ask"]) == (0.45, 0.53)
    assert (booked["spread_used"], booked["spread_source"]) == (pytest.approx(0.08), "book")
    assert not {"default_spread", "estimated_spread"} & set(booked["flags"].split(","))
    # No book and no estimate: the conservative default, 3¢ around the price.
    bare = one(market_prob=0.50, best_bid=None, best_ask=None)
    assert EdgeConfig().default_spread == 0.03
    assert (bare["bid"], bare["ask"]) == pytest.approx((0.485, 0.515))
    assert (bare["spread_used"], bare["spread_source"]) == (pytest.approx(0.03), "default")
    assert {"default_spread", "thin_book"} <= set(bare["flags"].split(","))
    assert "estimated_spread" not in bare["flags"]
    wide = one(
        market_prob=0.50, best_bid=None, best_ask=None, config=EdgeConfig(default_spread=0.06)
    )
    assert (wide["bid"], wide["ask"]) == pytest.approx((0.47, 0.53))
    one_sided = one(market_prob=0.50, best_bid=None, best_ask=0.52)
    assert (one_sided["bid"], one_sided["ask"]) == pytest.approx((0.485, 0.52))
    assert one_sided["spread_source"] == "default" and "default_spread" in one_sided["flags"]


def test_estimated_spread_is_used_without_a_book_and_said():
    rows = [
        row(market_id="est", best_bid=None, best_ask=None) | {"spread_estimate": 0.05},
        row(market_id="dflt", best_bid=None, best_ask=None) | {"spread_estimate": None},
        row(market_id="book") | {"spread_estimate": 0.05},
    ]
    out = {r["market_id"]: r for r in report(*rows).iter_rows(named=True)}
    est, dflt, book = out["est"], out["dflt"], out["book"]
    assert (est["bid"], est["ask"]) == pytest.approx((0.475, 0.525))
    assert (est["spread_used"], est["spread_source"]) == (pytest.approx(0.05), "estimated")
    assert "estimated_spread" in est["flags"] and "default_spread" not in est["flags"]
    assert (dflt["spread_used"], dflt["spread_source"]) == (pytest.approx(0.03), "default")
    assert "default_spread" in dflt["flags"]
    # A book wins over any estimate.
    assert (book["bid"], book["ask"], book["spread_source"]) == (0.49, 0.51, "book")
    # The estimate is an input: it stays in the output for a later recompute.
    assert "spread_estimate" in report(*rows).columns
    # Wider assumed spreads cost net edge: 0.05 spread gives 1 pp less than 0.03.
    assert dflt["net_edge_yes"] - est["net_edge_yes"] == pytest.approx(0.01, abs=1e-3)


def test_assumed_prices_are_clipped():
    low = one(market_prob=0.0005, best_bid=None, best_ask=None, model_prob=0.0)
    assert low["bid"] == pytest.approx(0.001)
    assert low["ask"] == pytest.approx(0.0155)
    high = one(market_prob=0.995, best_bid=None, best_ask=None)
    assert high["ask"] == pytest.approx(0.999)


def test_no_market_price_and_no_book_passes():
    out = one(market_prob=None, best_bid=None, best_ask=None, model_prob=0.9)
    assert out["recommendation"] == PASS
    assert out["bid"] is None
    assert out["edge"] is None


# --- flags ---------------------------------------------------------------------------------


def test_clean_row_has_only_the_fee_flag():
    assert flags() == {"fees_enabled"}
    assert flags(fees_enabled=False) == set()


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"q_spot": 0}, "stale_spot"),
        ({"q_spot": None}, "stale_spot"),
        ({"best_bid": 0.40, "best_ask": 0.55}, "thin_book"),
        ({"best_bid": 0.50, "best_ask": 0.50}, "thin_book"),
        ({"best_bid": None}, "thin_book"),
        ({"best_bid": None, "best_ask": None}, "default_spread"),
        ({"family": "other"}, "uncertain_parse"),
        ({"parse_source": "title"}, "uncertain_parse"),
        ({"parse_source": None}, "uncertain_parse"),
        ({"time_to_expiry_hours": 0.5 / 60}, "under_minute_left"),
        ({"time_to_expiry_hours": -1.0}, "expired"),
        ({"time_to_expiry_hours": None}, "no_expiry"),
        ({"barrier_touched": True}, "barrier_touched"),
        ({"model_prob": None}, "no_model"),
    ],
)
def test_each_flag(overrides, flag):
    assert flag in flags(**overrides)
    assert flag not in flags()


def test_spread_of_exactly_the_threshold_is_not_thin():
    assert "thin_book" not in flags(best_bid=0.45, best_ask=0.55)
    assert "thin_book" in flags(best_bid=0.45, best_ask=0.56)


def test_spot_age_column_overrides_q_spot():
    frame = pl.DataFrame([row(), row(market_id="m2")], schema=INPUT_SCHEMA).with_columns(
        spot_age_minutes=pl.Series([1.0, 5.0])
    )
    out = edge_report(frame, EdgeConfig(stale_spot_minutes=3))
    stale = dict(out.select("market_id", pl.col("flags").str.contains("stale_spot")).iter_rows())
    assert stale == {"m1": False, "m2": True}


def test_flags_keep_the_documented_order():
    text = one(q_spot=0, model_prob=None, best_bid=None, family="other")["flags"]
    names = text.split(",")
    assert names == sorted(names, key=FLAGS.index)
    frame = pl.DataFrame([row(model_prob=0.9, q_spot=0)], schema=INPUT_SCHEMA)
    gated = edge_report(frame, proven_families=set())["flags"][0].split(",")
    assert gated == ["stale_spot", "fees_enabled", "no_proven_skill"]


# --- shape ---------------------------------------------------------------------------------


def test_output_columns_and_sort_order():
    rows = [
        row(market_id="pass", model_prob=0.5),
        row(market_id="no_small", model_prob=0.40, cluster="x"),
        row(market_id="yes_small", model_prob=0.60, cluster="y"),
        row(market_id="yes_big", model_prob=0.70, cluster="z"),
        row(market_id="no_big", model_prob=0.20, cluster="w"),
        row(market_id="nomodel", model_prob=None),
    ]
    out = report(*rows)
    assert out.columns == [*INPUT_SCHEMA, *OUTPUT_COLUMNS]
    assert out.height == len(rows)
    assert out["market_id"].to_list()[:4] == ["yes_big", "yes_small", "no_big", "no_small"]
    assert out["recommendation"].to_list()[4:] == [PASS, PASS]
    assert out["market_id"][-1] == "nomodel"


def test_missing_input_column_is_an_error():
    with pytest.raises(ValueError, match="fee_rate"):
        edge_report(pl.DataFrame([row()], schema=INPUT_SCHEMA).drop("fee_rate"))


def test_top_opportunities_markdown():
    out = report(
        row(market_id="a", model_prob=0.70, question="Will Bitcoin | reach " + "x" * 100),
        row(market_id="b", model_prob=0.20, cluster="e2"),
        row(market_id="c"),
    )
    text = top_opportunities_markdown(out, n=10, question_width=30)
    lines = text.strip().splitlines()
    assert lines[0].startswith("| market | question | side | mid | ask/bid | model")
    assert len(lines) == 4  # header, rule, two BUY rows
    # b (NO, net edge 27 pp) before a (YES, 17 pp).
    assert lines[2].startswith("| b | Will the price of Bitcoin be… | BUY NO | 0.500 | bid 0.490")
    assert "+0.273 | $200.00 | fees_enabled |" in lines[2]
    assert lines[3].startswith("| a | Will Bitcoin \\| reach")
    assert "BUY YES" in lines[3]
    assert "ask 0.510" in lines[3]
    assert len(top_opportunities_markdown(out, n=1).strip().splitlines()) == 3
    assert "No opportunities" in top_opportunities_markdown(report(row()))


def test_empty_input_gives_an_empty_report():
    out = edge_report(pl.DataFrame(schema=INPUT_SCHEMA))
    assert out.is_empty()
    assert out.columns == [*INPUT_SCHEMA, *OUTPUT_COLUMNS]
    assert top_opportunities_markdown(out).startswith("No opportunities")


# --- only where skill is proven ------------------------------------------------------------


def gated(*rows: dict, proven: set[str] | None, config: EdgeConfig | None = None) -> dict:
    frame = pl.DataFrame(list(rows), schema=INPUT_SCHEMA)
    out = edge_report(frame, config or EdgeConfig(), proven_families=proven)
    return {r["market_id"]: r for r in out.iter_rows(named=True)}


def test_a_buy_of_an_unproven_family_is_pass_with_the_side_kept():
    rows = (
        row(market_id="above_yes", family="above", model_prob=0.70, cluster="a"),
        row(market_id="above_no", family="above", model_prob=0.20, cluster="b"),
        row(market_id="updown_yes", family="updown_1h", model_prob=0.70, cluster="c"),
    )
    free = gated(*rows, proven=None)
    out = gated(*rows, proven={"updown_1h"})
    for market in ("above_yes", "above_no"):
        assert free[market]["recommendation"] != PASS
        gate = out[market]
        assert gate["recommendation"] == PASS
        assert "no_proven_skill" in gate["flags"].split(",")
        assert gate["stake"] == 0.0
        # The would-be trade stays for study.
        for key in ("side", "net_edge", "kelly", "cost", "ev_per_dollar"):
            assert gate[key] == pytest.approx(free[market][key]), key
    assert out["above_yes"]["side"] == "YES" and out["above_no"]["side"] == "NO"
    assert out["updown_yes"]["recommendation"] == BUY_YES
    assert "no_proven_skill" not in out["updown_yes"]["flags"]
    assert out["updown_yes"]["stake"] == pytest.approx(free["updown_yes"]["stake"])


def test_the_gate_flags_only_would_be_buys():
    """A row that is PASS anyway (small edge, no model) is not said to be gated."""
    out = gated(
        row(market_id="small", model_prob=0.52),
        row(market_id="nomodel", model_prob=None),
        row(market_id="nofamily", family=None, model_prob=0.70),
        proven=set(),
    )
    assert "no_proven_skill" not in out["small"]["flags"]
    assert "no_proven_skill" not in out["nomodel"]["flags"]
    assert out["nofamily"]["recommendation"] == PASS
    assert "no_proven_skill" in out["nofamily"]["flags"]


def test_an_empty_gate_passes_everything_and_none_is_no_gate():
    rows = [row(market_id=f"m{i}", cluster=f"c{i}", model_prob=0.75) for i in range(3)]
    assert {r["recommendation"] for r in gated(*rows, proven=set()).values()} == {PASS}
    assert {r["recommendation"] for r in gated(*rows, proven=None).values()} == {BUY_YES}
    assert "No opportunities" in top_opportunities_markdown(
        edge_report(pl.DataFrame(rows, schema=INPUT_SCHEMA), proven_families=[])
    )


def test_proven_families_of_a_card():
    card = {"metrics": {"skill_test": {"proven_families": ["above", "updown_1h"]}}}
    assert proven_families(card) == {"above", "updown_1h"}
    # A card saved before the skill test proves nothing; so does no card.
    assert proven_families({"metrics": {"overall": {}, "by_family": {}}}) == frozenset()
    assert proven_families({}) == frozenset()
    assert proven_families(None) == frozenset()
    assert proven_families({"metrics": {"skill_test": {"proven_families": []}}}) == frozenset()
