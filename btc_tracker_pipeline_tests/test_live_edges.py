"""Live edges (model/live_edges.py, `btc-tracker edges --live`, live_edge_job) on a
simulated world with 5-minute markets and a 90 s lag, backfilled two windows so the
warehouse knows the open up/down markets and has klines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from btc_tracker_pipeline.features.market_terms import parse_market_terms
from btc_tracker_pipeline.model.edges import fee_per_share
from btc_tracker_pipeline.model.live_edges import (
    LIVE_COLUMNS,
    LiveEdgesError,
    compute_live_edges,
    fetch_live,
    live_clients,
    live_rows,
    read_inputs,
    write_live_edges,
)
from btc_tracker_pipeline.replay import FaultSpec
from btc_tracker_pipeline.replay.session import ReplaySession, replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import run_windows
from btc_tracker_pipeline.sources.gamma import parse_market
from btc_tracker_pipeline_tests.cli_process import cli_env, run_cli

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 11, 15, 7)
WINDOWS = ["2026-03-11-14:30", "2026-03-11-14:45"]


def world() -> SimulatedWorld:
    return SimulatedWorld(seed=7, days=2, now=NOW, updown_5m=True, lag_s=90)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Iterator[ReplaySession]:
    folder = tmp_path_factory.mktemp("live")
    with replay_session(world(), folder) as s:
        assert all(o.success for o in run_windows(WINDOWS, instance=s.instance, chunk_size=2))
        yield s


def live(session: ReplaySession, minute: datetime = NOW):
    clob, binance = live_clients(
        f"{session.server.url}/clob", f"{session.server.url}/binance", 10.0
    )
    try:
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            inputs = read_inputs(conn, minute)
        return compute_live_edges(inputs, clob, binance, session.models)
    finally:
        clob.http.close()


def open_updown(w: SimulatedWorld) -> dict[str, str]:
    """The world's up/down markets open at NOW, by id: their family."""
    out = {}
    for raw in w.gamma_markets():
        terms = parse_market_terms(parse_market(raw))
        if terms.family.startswith("updown") and terms.reference_start <= NOW < terms.expiry:
            out[str(raw["id"])] = terms.family
    return out


def test_a_row_for_every_open_updown_market_with_book_spot_and_structural(session):
    rows = live(session).rows
    assert rows.columns == list(LIVE_COLUMNS)
    expected = open_updown(session.server.world)
    assert dict(zip(rows["market_id"], rows["family"], strict=True)) == expected
    assert {"updown_5m", "updown_15m", "updown_1h"} <= set(expected.values())
    assert rows["minute_ts"].unique().to_list() == [NOW]
    assert rows["error"].null_count() == rows.height
    for r in rows.iter_rows(named=True):
        assert 0.0 < r["best_bid"] < r["best_ask"] < 1.0
        assert r["market_prob"] == pytest.approx((r["best_bid"] + r["best_ask"]) / 2)
        assert r["spread"] == pytest.approx(r["best_ask"] - r["best_bid"])
        assert r["btc_spot"] > 0 and r["open_price"] > 0
        assert 0.0 < r["structural_probability"] < 1.0
        # No model saved yet: the structural probability stands in, and says so.
        assert r["prob_source"] == "structural" and r["model_version"] is None
        assert r["model_prob"] == r["structural_probability"]
        assert r["minutes_left"] == (r["expiry"] - NOW) / timedelta(minutes=1)


def test_net_edge_is_probability_minus_price_fee_and_half_the_spread(session):
    rows = live(session).rows
    for r in rows.iter_rows(named=True):
        q, p, half = r["model_prob"], r["market_prob"], r["spread"] / 2
        if r["side"] == "YES":
            fee = fee_per_share(r["best_ask"], 0.07, 1.0)
            assert r["net_edge"] == pytest.approx(q - p - half - fee)
        else:
            fee = fee_per_share(1.0 - r["best_bid"], 0.07, 1.0)
            assert r["net_edge"] == pytest.approx((p - q) - half - fee)
        assert r["fee"] == pytest.approx(fee)
        # The side is the better one: the other side's net edge is not larger.
        other = (p - q) if r["side"] == "YES" else (q - p)
        assert r["net_edge"] >= other - half - 0.0176
        # No card proves skill: a would-be trade is PASS, its side and edge kept.
        assert r["recommendation"] == "PASS" and r["stake"] == 0.0
        if r["net_edge"] >= 0.05:
            assert "no_proven_skill" in r["flags"]


def test_a_failing_book_is_recorded_on_its_row_and_leaves_the_others(session):
    clean = live(session).rows
    token = (
        duckdb.connect(str(session.warehouse), read_only=True)
        .execute(
            "SELECT yes_token_id FROM tracked_markets WHERE market_id = ? LIMIT 1",
            [clean["market_id"][0]],
        )
        .fetchone()[0]
    )
    session.server.set_faults(FaultSpec.parse(f"book_down={token}"))
    try:
        faulted = live(session).rows
        assert session.server.stats()["faults"]["book_down"] >= 1
    finally:
        session.server.set_faults(None)
    failed = faulted.filter(pl.col("market_id") == clean["market_id"][0]).row(0, named=True)
    assert failed["error"].startswith("book: ServerError")
    assert failed["best_bid"] is None and failed["best_ask"] is None
    assert failed["recommendation"] == "PASS" and failed["stake"] == 0.0
    # It still has its history price and its structural probability.
    assert failed["market_prob"] is not None and failed["structural_probability"] is not None
    others = faulted.filter(pl.col("market_id") != clean["market_id"][0]).drop("computed_at")
    assert others.equals(
        clean.filter(pl.col("market_id") != clean["market_id"][0]).drop("computed_at")
    )


def test_no_open_market_is_one_clear_error(session):
    with pytest.raises(LiveEdgesError, match="no open up/down market at 2026-04-01 00:00"):
        live(session, datetime(2026, 4, 1))


def test_the_command_prints_a_table_and_json_and_writes_nothing(session, tmp_path):
    env = cli_env(session.server, tmp_path) | {
        "BTC_TRACKER_WAREHOUSE": str(session.warehouse),
        "BTC_TRACKER_MODELS": str(session.models),
    }
    before = Path(session.warehouse).stat().st_mtime_ns
    text = run_cli(env, "edges", "--live")
    assert text.returncode == 0, text.stderr
    assert "live edges at 2026-03-11 15:07 UTC" in text.stdout
    assert "updown_5m" in text.stdout and "…" not in text.stdout
    assert text.stderr == ""
    out = run_cli(env, "edges", "--live", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["minute_ts"] == "2026-03-11 15:07:00"
    assert {r["market_id"] for r in payload["rows"]} == set(open_updown(session.server.world))
    assert Path(session.warehouse).stat().st_mtime_ns == before
    session.server.set_faults(FaultSpec.parse("down=clob"))
    try:
        down = run_cli(env, "edges", "--live")
    finally:
        session.server.set_faults(None)
    assert down.returncode == 1
    assert down.stderr.startswith("error: the CLOB at ") and down.stderr.count("\n") == 1
    missing = run_cli(
        env | {"BTC_TRACKER_WAREHOUSE": str(tmp_path / "none.duckdb")}, "edges", "--live"
    )
    assert missing.returncode == 1 and "no warehouse at" in missing.stderr


def test_the_job_appends_a_minute_and_a_rerun_replaces_it(session):
    from btc_tracker_pipeline.definitions import defs
    from btc_tracker_pipeline.defs.live.assets import live_edges
    from btc_tracker_pipeline.defs.resources import (
        BinanceResource,
        ClockResource,
        ModelStoreResource,
        PolymarketResource,
        WarehouseResource,
    )

    d = defs()
    schedule = d.resolve_schedule_def("live_edge_job_schedule")
    assert schedule.cron_schedule == "* * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert d.resolve_job_def("live_edge_job").asset_layer.selected_asset_keys == {
        dg.AssetKey("live_edges")
    }
    url = session.server.url
    resources = {
        "polymarket": PolymarketResource(gamma_url=f"{url}/gamma", clob_url=f"{url}/clob"),
        "binance": BinanceResource(base_url=f"{url}/binance"),
        "warehouse": WarehouseResource(path=str(session.warehouse)),
        "model_store": ModelStoreResource(models_dir=str(session.models)),
        "clock": ClockResource(now_utc="2026-03-11T15:07:30"),
    }

    def stored() -> pl.DataFrame:
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            return conn.execute("SELECT * FROM live_edges ORDER BY market_id").pl()

    assert dg.materialize([live_edges], resources=resources, instance=session.instance).success
    first = stored()
    assert first.height == len(open_updown(session.server.world))
    assert first["minute_ts"].unique().to_list() == [NOW]
    assert dg.materialize([live_edges], resources=resources, instance=session.instance).success
    again = stored()
    assert again.drop("computed_at").equals(first.drop("computed_at"))
    # Another minute is appended beside it (written directly: the world stands at NOW).
    later = first.with_columns(pl.col("minute_ts") + timedelta(minutes=1))
    with duckdb.connect(str(session.warehouse)) as conn:
        write_live_edges(conn, later)
    assert stored().height == 2 * first.height


def test_the_model_sees_the_book_at_the_minute_as_the_quote_with_spot_at_the_minute(session):
    """A two-sided book is the market's price at the minute: the model's inputs take it
    as a quote of age 0 and spot at the minute, not the history point (up to the quote
    age limit old) beside spot newer than it."""
    clob, binance = live_clients(
        f"{session.server.url}/clob", f"{session.server.url}/binance", 10.0
    )
    try:
        with duckdb.connect(str(session.warehouse), read_only=True) as conn:
            inputs = read_inputs(conn, NOW)
        rows = live_rows(inputs, fetch_live(clob, binance, inputs))
    finally:
        clob.http.close()
    assert rows.height >= 3
    for r in rows.iter_rows(named=True):
        mid = (r["best_bid"] + r["best_ask"]) / 2
        assert r["market_probability"] == pytest.approx(mid) and r["quote_age_s"] == 0.0
        assert r["btc_spot_price"] == r["btc_close"]
        assert r["time_to_expiry_hours"] == pytest.approx(
            (r["expiry"] - NOW).total_seconds() / 3600
        )
