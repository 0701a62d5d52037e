"""The spread assumed without a book: estimated from the warehouse's live books by family
and price level, else the 3¢ default; the edge report and paper trades use it and say so."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from btc_tracker_pipeline.defs.model.inputs import edge_inputs
from btc_tracker_pipeline.model.edges import REPORT_INPUTS, EdgeConfig, edge_report
from btc_tracker_pipeline.model.paper import simulate
from btc_tracker_pipeline.model.spreads import (
    DEFAULT_SPREAD,
    MIN_QUOTES,
    estimate_spreads,
    level_expr,
    with_spread_estimates,
)
from btc_tracker_pipeline.warehouse.schema import migrate

pytestmark = pytest.mark.unit

W0 = datetime(2026, 3, 1, 10, 0)


def books(family: str, mid: float, spreads: list[float]) -> list[dict]:
    return [{"family": family, "best_bid": mid - s / 2, "best_ask": mid + s / 2} for s in spreads]


def test_levels_group_prices_by_distance_from_half():
    prices = pl.Series([0.5, 0.46, 0.54, 0.56, 0.44, 0.3, 0.7, 0.1, 0.96, 0.03, 0.999])
    levels = pl.select(level_expr(pl.lit(prices))).to_series().to_list()
    assert levels == [0, 0, 0, 1, 1, 2, 2, 4, 5, 5, 5]


def test_estimate_by_family_and_level_needs_enough_quotes():
    quotes = pl.DataFrame(
        books("updown_1h", 0.50, [0.02, 0.03, 0.04] * 10)  # 30 at level 0: mean 3¢
        + books("updown_1h", 0.90, [0.01, 0.02] * 10)  # 20 at level 4: mean 1.5¢
        + books("updown_1h", 0.70, [0.05] * 5)  # 5 at level 2: too few on their own
        + books("above", 0.50, [0.06] * 10)  # 10 in all: no estimate for the family
        + [{"family": "reach", "best_bid": 0.5, "best_ask": 0.5}] * 30  # crossed: ignored
    )
    est = estimate_spreads(quotes)
    got = {
        (r["family"], r["level"]): (r["spread"], r["n_quotes"]) for r in est.iter_rows(named=True)
    }
    assert got.keys() == {("updown_1h", None), ("updown_1h", 0), ("updown_1h", 4)}
    assert got["updown_1h", 0] == (pytest.approx(0.03), 30)
    assert got["updown_1h", 4] == (pytest.approx(0.015), 20)
    assert got["updown_1h", None] == (pytest.approx((0.9 + 0.3 + 0.25) / 55), 55)
    rows = pl.DataFrame(
        {
            "family": ["updown_1h", "updown_1h", "updown_1h", "above", None],
            "market_prob": [0.52, 0.91, 0.70, 0.50, 0.50],
        }
    )
    out = with_spread_estimates(rows, est)["spread_estimate"].to_list()
    # Level 0 and 4 have their own; level 2 falls back to the family; above has none.
    assert out == [pytest.approx(0.03), pytest.approx(0.015), pytest.approx(1.45 / 55), None, None]
    assert MIN_QUOTES == 20


def test_no_live_books_means_no_estimate_and_the_default():
    est = estimate_spreads(
        pl.DataFrame(schema={"family": pl.String, "best_bid": pl.Float64, "best_ask": pl.Float64})
    )
    assert est.is_empty()
    assert DEFAULT_SPREAD == EdgeConfig().default_spread == 0.03


def warehouse(live_spreads: list[float]) -> duckdb.DuckDBPyConnection:
    """A warehouse with one 'updown_1h' market: live snapshots (books ``live_spreads``
    wide at 50¢) in earlier windows, and one history row (no book) at W0 to report on."""
    conn = duckdb.connect()
    migrate(conn)
    windows = [W0 - timedelta(minutes=15 * (i + 1)) for i in range(len(live_spreads))]
    for ws, spread in [*zip(windows, live_spreads, strict=True), (W0, None)]:
        we = ws + timedelta(minutes=15)
        conn.execute(
            "INSERT INTO tracked_markets (window_start, window_end, market_id, family, "
            "discovered_by, fees_enabled, fee_rate, fee_exponent, parse_source, event_slug, "
            "question) VALUES (?, ?, 'm1', 'updown_1h', 'tag', true, 0.07, 1, 'structured', "
            "'e1', 'Bitcoin Up or Down?')",
            [ws, we],
        )
        live = spread is not None
        conn.execute(
            "INSERT INTO market_snapshots (window_start, window_end, market_id, snapshot_ts, "
            "quote_ts, yes_price, best_bid, best_ask, source, quote_age_s) "
            "VALUES (?, ?, 'm1', ?, ?, 0.5, ?, ?, ?, ?)",
            [
                ws,
                we,
                we,
                we if live else we - timedelta(minutes=40),
                0.5 - spread / 2 if live else None,
                0.5 + spread / 2 if live else None,
                "live" if live else "history",
                0.0 if live else 2400.0,
            ],
        )
        conn.execute(
            "INSERT INTO market_indicators (window_start, window_end, market_id, family, "
            "snapshot_ts, source, market_probability, time_to_expiry_hours, q_spot, "
            "structural_probability, barrier_touched, quote_age_s) "
            "VALUES (?, ?, 'm1', 'updown_1h', ?, ?, 0.5, 1.0, 1, 0.5, false, ?)",
            [ws, we, we, "live" if live else "history", 0.0 if live else 2400.0],
        )
    return conn


def reported(conn: duckdb.DuckDBPyConnection, model_prob: float = 0.62) -> pl.DataFrame:
    rows = edge_inputs(conn, W0, W0 + timedelta(minutes=15)).with_columns(
        pl.lit(model_prob).alias("model_prob")
    )
    return edge_report(rows.select(REPORT_INPUTS), EdgeConfig())


def test_edge_report_uses_the_warehouse_estimate_and_says_so():
    conn = warehouse([0.04] * 25)
    row = reported(conn).row(0, named=True)
    assert row["spread_estimate"] == pytest.approx(0.04)
    assert (row["bid"], row["ask"]) == pytest.approx((0.48, 0.52))
    assert (row["spread_used"], row["spread_source"]) == (pytest.approx(0.04), "estimated")
    assert "estimated_spread" in row["flags"].split(",")
    # The live rows report their own book.
    everything = edge_report(
        edge_inputs(conn, W0 - timedelta(days=1), W0)
        .with_columns(pl.lit(0.5).alias("model_prob"))
        .select(REPORT_INPUTS)
    )
    assert set(everything["spread_source"]) == {"book"}


def test_too_few_live_books_fall_back_to_the_default_and_say_so():
    row = reported(warehouse([0.04] * 5)).row(0, named=True)
    assert row["spread_estimate"] is None
    assert (row["spread_used"], row["spread_source"]) == (pytest.approx(DEFAULT_SPREAD), "default")
    assert "default_spread" in row["flags"].split(",")


def test_paper_trades_fill_at_the_assumed_spread_and_keep_it():
    resolutions = pl.DataFrame(
        {"market_id": ["m1"], "yes_won": [True], "settled_at": [W0 + timedelta(hours=2)]}
    )
    narrow = simulate(reported(warehouse([0.01] * 25), 0.62), resolutions)[0].row(0, named=True)
    wide = simulate(reported(warehouse([0.05] * 25), 0.62), resolutions)[0].row(0, named=True)
    default = simulate(reported(warehouse([]), 0.62), resolutions)[0].row(0, named=True)
    assert (narrow["spread"], narrow["spread_source"]) == (pytest.approx(0.01), "estimated")
    assert (wide["spread"], wide["spread_source"]) == (pytest.approx(0.05), "estimated")
    assert (default["spread"], default["spread_source"]) == (pytest.approx(0.03), "default")
    # YES fills at the price plus half the spread (then walks the book for its stake,
    # model.depth): a wider book costs more per share.
    best = [t["price"] - t["slippage"] for t in (narrow, default, wide)]
    assert best == pytest.approx([0.505, 0.515, 0.525])
    assert narrow["slippage"] > 0 and narrow["liquidity_source"] == "default"
    assert narrow["roi"] > default["roi"] > wide["roi"]
