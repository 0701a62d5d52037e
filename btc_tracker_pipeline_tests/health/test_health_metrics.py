"""The health metrics' arithmetic on small warehouses built by hand (every edge case
exact): uptime with a missed window, tick latency percentiles, the ledger and the
backtest, the model card, and the "not meaningful yet" states."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.health import health_report
from btc_tracker_pipeline.health.collection import latency, uptime
from btc_tracker_pipeline.health.model_skill import model_health
from btc_tracker_pipeline.health.targets import FAIL, INFO, NOT_MEANINGFUL, PASS
from btc_tracker_pipeline.health.trading import backtest_health, ledger_health
from btc_tracker_pipeline.model.paper import TRADES_SCHEMA
from btc_tracker_pipeline.warehouse import replace_table
from btc_tracker_pipeline.warehouse.schema import migrate

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 10, 12, 3)  # the newest finished window: 11:45
Q = timedelta(minutes=15)
NEWEST = datetime(2026, 3, 10, 11, 45)


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    """An empty in-memory warehouse with the real schema."""
    connection = duckdb.connect()
    migrate(connection)
    yield connection
    connection.close()


def add_snapshot(conn, window: datetime, source: str = "history", market_id: str = "1") -> None:
    conn.execute(
        "INSERT INTO market_snapshots (window_start, window_end, market_id, snapshot_ts, "
        "yes_price, source) VALUES (?, ?, ?, ?, 0.5, ?)",
        [window, window + Q, market_id, window + Q, source],
    )


def add_run(
    conn,
    run: str,
    window: datetime,
    started: datetime,
    seconds: float,
    asset: str = "tracked_markets",
) -> None:
    conn.execute(
        "INSERT INTO collection_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1, 0, 0, 'ok', '[]')",
        [
            f"{run}-{window}",
            run,
            asset,
            window,
            window + Q,
            started,
            started + timedelta(seconds=seconds),
            seconds,
        ],
    )


def by_key(metrics) -> dict:
    return {m.spec.key: m for m in metrics}


# --------------------------------------------------------------------------- uptime


def test_uptime_with_a_missed_window_fails_the_24_hour_target(conn):
    missed = NEWEST - 10 * Q
    for i in range(2 * 96):  # two days of windows, one missed, the newest collected live
        window = NEWEST - i * Q
        if window != missed:
            add_snapshot(conn, window, "live" if i == 0 else "history")
    day = uptime(conn, "uptime_24h", NOW, timedelta(days=1))
    assert (day.measured, day.n) == (pytest.approx(95 / 96), 96)
    assert day.meaningful and day.status == FAIL
    assert "95 of 96 windows" in day.detail and "(1 collected live)" in day.detail
    week = uptime(conn, "uptime_7d", NOW, timedelta(days=7))
    # The week starts at the first collected window: 192 windows, short of 672.
    assert (week.measured, week.n) == (pytest.approx(191 / 192), 192)
    assert week.status == NOT_MEANINGFUL
    every = uptime(conn, "uptime_all", NOW, None)  # over two days one miss is within 1 %
    assert (every.measured, every.status) == (pytest.approx(191 / 192), PASS)


def test_uptime_counts_the_windows_missed_since_the_newest_collected_one(conn):
    for i in range(96):
        add_snapshot(conn, NEWEST - i * Q)
    assert uptime(conn, "uptime_24h", NOW, timedelta(days=1)).status == PASS
    # Two hours later, nothing collected since: 8 scheduled windows are missing.
    later = uptime(conn, "uptime_24h", NOW + timedelta(hours=2), timedelta(days=1))
    assert (later.measured, later.n, later.status) == (pytest.approx(88 / 96), 96, FAIL)


def test_uptime_without_any_window_is_not_meaningful(conn):
    empty = uptime(conn, "uptime_all", NOW, None)
    assert (empty.measured, empty.n, empty.status) == (None, 0, NOT_MEANINGFUL)
    assert empty.detail == "no window collected yet"


# --------------------------------------------------------------------------- latency


def test_tick_latency_percentiles_count_only_live_ticks(conn):
    for i in range(20):  # 20 live ticks of 1 … 20 s, each starting 5 s after its window
        window = NEWEST - i * Q
        add_run(conn, f"tick{i}", window, window + Q + timedelta(seconds=5), i + 1.0)
    # Not ticks: a rerun of an old window, a backfill of two windows, and the edge
    # report refreshed after a training moments after a window ended (it collects nothing).
    add_run(conn, "rerun", NEWEST - 50 * Q, NOW, 100.0)
    add_run(conn, "refresh", NEWEST, NEWEST + Q + timedelta(seconds=30), 100.0, "edge_report")
    for window in (NEWEST - 60 * Q, NEWEST - 61 * Q):
        add_run(conn, "backfill", window, window + 2 * Q, 100.0)
    p50, p95 = latency(conn)
    assert (p50.n, p95.n) == (20, 20)
    assert p50.measured == pytest.approx(np.percentile(np.arange(1, 21), 50))  # 10.5 s
    assert p95.measured == pytest.approx(19.05)
    assert p50.status == FAIL and p95.status == FAIL  # the target is 5 s
    assert "slowest 20.00 s" in p95.detail


def test_tick_latency_of_a_run_is_from_its_first_asset_to_its_last(conn):
    window = NEWEST
    start = window + Q + timedelta(seconds=2)
    add_run(conn, "tick", window, start, 1.0)
    conn.execute(  # a later asset of the same run finishes 3.5 s after the first began
        "INSERT INTO collection_runs VALUES ('x', 'tick', 'edge_report', ?, ?, ?, ?, 0.5, "
        "1, 1, 0, 0, 'ok', '[]')",
        [window, window + Q, start + timedelta(seconds=3), start + timedelta(seconds=3.5)],
    )
    p50, p95 = latency(conn)
    assert p50.measured == pytest.approx(3.5) and p50.n == 1
    assert p50.status == NOT_MEANINGFUL and p95.status == NOT_MEANINGFUL  # 1 tick of 5 / 20


# --------------------------------------------------------------------------- trading


def add_position(conn, i: int, status: str, won: bool | None, day: int) -> None:
    """A paper_ledger row as the ledger writes it: open (nothing settled), settled
    (P&L and realised edge) or void (stake back, P&L 0)."""
    opened = datetime(2026, 3, 1) + timedelta(days=day)
    price, stake = 0.4, 100.0
    pnl = {"open": None, "void": 0.0}.get(status)
    if status == "settled":
        pnl = stake / price - stake if won else -stake
    conn.execute(
        "INSERT INTO paper_ledger (position_id, market_id, window_start, opened_at, side, "
        "price_paid, fee, stake, shares, predicted_edge, model_version, status, settled_at, "
        "pnl, realised_edge) VALUES (?, ?, ?, ?, 'YES', ?, 0.0, ?, ?, 0.08, 'v1', ?, ?, ?, ?)",
        [
            f"p{i}",
            f"m{i}",
            opened - timedelta(minutes=15),
            opened,
            price,
            stake,
            stake / price,
            status,
            None if status == "open" else opened + timedelta(hours=1),
            pnl,
            float(won) - price if status == "settled" else None,
        ],
    )


def test_ledger_metrics_count_settled_positions_only(conn):
    for i in range(40):  # 40 settled positions, one a day, 24 of them won
        add_position(conn, i, "settled", i % 5 in (0, 1, 2), i)
    add_position(conn, 40, "open", None, 40)
    add_position(conn, 41, "void", None, 40)
    m = by_key(ledger_health(conn))
    assert m["ledger_win_rate"].measured == pytest.approx(24 / 40)
    assert m["ledger_win_rate"].n == 40 and m["ledger_win_rate"].status == PASS
    assert "1 open" in m["ledger_win_rate"].detail
    # EV per trade: the ledger's realised edge, averaged (won − price paid).
    assert m["ledger_ev"].measured == pytest.approx(24 / 40 - 0.4)
    assert m["ledger_ev"].status == PASS and "predicted +0.080" in m["ledger_ev"].detail
    assert m["ledger_sharpe"].n == 40  # days of returns
    # Won +$150 on days 0-2 of every five, lost $100 on days 3-4: the deepest fall is the
    # first, $200 from a peak of $10,450 (the bankroll is EdgeConfig's $10,000).
    assert m["ledger_max_drawdown"].measured == pytest.approx(200 / 10_450)
    assert m["ledger_max_drawdown"].status == PASS


@pytest.mark.parametrize("rows", ["no table", "open only", "other columns"])
def test_ledger_without_settled_positions_says_so(conn, rows):
    if rows == "open only":
        add_position(conn, 1, "open", None, 0)
        add_position(conn, 2, "void", None, 0)
    else:  # a warehouse from before the ledger, or a table of another shape
        conn.execute("DROP TABLE paper_ledger")
    if rows == "other columns":
        conn.execute("CREATE TABLE paper_ledger (market_id VARCHAR, pnl DOUBLE)")
    for m in ledger_health(conn):
        assert (m.measured, m.n, m.status) == (None, 0, NOT_MEANINGFUL)
        if rows == "other columns":
            assert m.detail.startswith("paper_ledger lacks status")
        else:
            assert m.detail.startswith("no settled positions yet")


def test_backtest_metrics_come_from_paper_trades(conn):
    trades = pl.DataFrame(
        [
            {
                "market_id": f"m{i}",
                "cluster": f"c{i}",
                "window_start": datetime(2026, 3, 1),
                "side": "YES",
                "price": 0.4,
                "fee": 0.0,
                "cost": 0.4,
                "shares": 250.0,
                "stake": 100.0,
                "predicted_ev": 0.1,
                "spread": 0.03,
                "spread_source": "book",
                "slippage": 0.0,
                "book_liquidity": 2000.0,
                "liquidity_source": "row",
                "settled_at": datetime(2026, 3, 1, 1),
                "won": i < 2,
                "pnl": 150.0 if i < 2 else -100.0,
                "roi": 1.5 if i < 2 else -1.0,
            }
            for i in range(3)
        ],
        schema=TRADES_SCHEMA,
    ).with_columns(pl.lit("v1").alias("model_version"))
    replace_table(conn, "paper_trades", trades)
    m = by_key(backtest_health(conn))
    assert m["backtest_win_rate"].measured == pytest.approx(2 / 3)
    assert m["backtest_ev"].measured == pytest.approx(2 / 3 - 0.4)  # hit rate − cost
    assert m["backtest_win_rate"].status == NOT_MEANINGFUL  # 3 trades of 30
    assert "backtest of model v1" in m["backtest_win_rate"].detail


def test_backtest_without_trades_is_not_meaningful(conn):
    for m in backtest_health(conn):
        assert m.status == NOT_MEANINGFUL and m.measured is None
        assert m.detail == "no backtest trade: nothing was recommended out of sample"


# --------------------------------------------------------------------------- model


def card_of(families: dict[str, int]) -> dict:
    from btc_tracker_pipeline.model import metrics
    from btc_tracker_pipeline_tests.model.test_metrics import skill_frame

    return {"metrics": metrics.evaluation_report(skill_frame(families), n_boot=50)}


def test_model_metrics_are_the_cards_beside_the_markets():
    card = card_of({"updown_1h": 25})
    overall = card["metrics"]["overall"]
    m = by_key(model_health("v7", card))
    assert m["accuracy"].measured == overall["accuracy"]
    assert m["roc_auc"].measured == overall["auc_model"]
    assert m["precision"].measured == overall["precision"]
    assert m["accuracy"].n == 25 and m["accuracy"].meaningful  # 25 events ≥ 20
    # The market's own figure on the same rows, precision included.
    assert f"market {100 * overall['precision_market']:.1f} %" in m["precision"].detail
    assert f"market {overall['auc_market']:.3f}" in m["roc_auc"].detail


def test_model_metrics_below_20_events_or_without_a_model_are_not_meaningful():
    few = by_key(model_health("v1", card_of({"updown_1h": 5})))
    assert few["roc_auc"].measured is not None and few["roc_auc"].status == NOT_MEANINGFUL
    for m in model_health(None, None):
        assert m.status == NOT_MEANINGFUL and m.detail == "no model yet: btc-tracker train"


# --------------------------------------------------------------------------- the report


def test_an_empty_warehouse_reports_every_metric_without_failing(conn):
    report = health_report(conn, NOW, None)
    statuses = {m.spec.key: m.status for m in report.metrics}
    assert statuses.pop("quality_history") == INFO
    assert set(statuses.values()) == {NOT_MEANINGFUL}
    assert len(report.metrics) == 19
    data = report.to_json()
    assert data["summary"] == {PASS: 0, FAIL: 0, NOT_MEANINGFUL: 18}
    assert "not meaningful yet" in report.markdown()
