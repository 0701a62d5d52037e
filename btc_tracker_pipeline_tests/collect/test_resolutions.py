"""Resolution labels: classification on real and synthetic Gamma objects, the one-pass
listing and the klines cross-check against the simulated world through the replay server."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from btc_tracker_pipeline.collect.resolutions import (
    CLOSE_CALL_BPS,
    CLOSE_CALL_USD,
    CROSSCHECK_SCHEMA,
    RESOLUTION_SCHEMA,
    classify_resolution,
    crosscheck,
    find_resolutions,
    is_feed_difference,
    resolution_row,
    resolutions_frame,
    settled_at,
    settled_in_window,
)
from btc_tracker_pipeline.collect.spot import klines_frame
from btc_tracker_pipeline.defs.labels.assets import KLINES_CHECK, _label_checks
from btc_tracker_pipeline.features.market_terms import parse_market_terms
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.recorded import RecordedWorld
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.sources.binance import BinanceClient
from btc_tracker_pipeline.sources.gamma import GammaClient, parse_market
from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client
from btc_tracker_pipeline.sources.models import GammaMarket

DAY_START, DAY_END = datetime(2026, 2, 28), datetime(2026, 3, 1)
TERMS_SCHEMA = {
    "market_id": pl.String(),
    "family": pl.String(),
    "strike": pl.Float64(),
    "reference_start": pl.Datetime("us"),
    "expiry": pl.Datetime("us"),
}


def load(fixtures_dir, name: str) -> dict:
    return json.loads((fixtures_dir / name).read_text())


def variant(fixtures_dir, **changes) -> GammaMarket:
    """The closed Katana market with some raw fields replaced (None removes a key)."""
    raw = load(fixtures_dir, "gamma_market_resolved_katana_fdv.json") | changes
    return parse_market({k: v for k, v in raw.items() if v is not None})


def terms_frame(markets: list[GammaMarket]) -> pl.DataFrame:
    rows = []
    for m in markets:
        t = parse_market_terms(m)
        rows.append((m.id, t.family, t.strike, t.reference_start, t.expiry))
    return pl.DataFrame(rows, schema=TERMS_SCHEMA, orient="row")


# --------------------------------------------------------------------------- real fixtures


@pytest.mark.unit
def test_resolved_fixture_names_the_no_winner(fixtures_dir):
    m = parse_market(load(fixtures_dir, "gamma_market_resolved_katana_fdv.json"))
    assert classify_resolution(m) == ("resolved", 1)
    row = resolution_row(m, datetime(2026, 3, 19, 23, 15), datetime(2026, 3, 19, 23, 30))
    assert row["winner_outcome"] == "No" and row["yes_won"] is False
    assert row["winning_token_id"] == m.token_ids[1]
    assert row["settled_at"] == datetime(2026, 3, 19, 23, 20, 15)
    assert row["expiry"] == datetime(2028, 1, 1, 5, 0)
    assert row["uma_resolution_status"] == "resolved"
    assert json.loads(row["outcome_prices"]) == ["0", "1"]
    assert row["source"] == "gamma" and row["status"] == "resolved"


@pytest.mark.unit
def test_settled_market_without_uma_status_is_resolved(fixtures_dir):
    m = parse_market(load(fixtures_dir, "gamma_market_closed_no_uma_status.json"))
    assert m.uma_resolution_status is None
    assert classify_resolution(m) == ("resolved", 0)
    row = resolution_row(m, datetime(2026, 5, 9), datetime(2026, 5, 10))
    assert (row["winner_outcome"], row["yes_won"], row["uma_resolution_status"]) == (
        "Yes",
        True,
        None,
    )


@pytest.mark.unit
def test_active_markets_are_not_resolutions(fixtures_dir):
    markets = [
        parse_market(raw) for raw in load(fixtures_dir, "gamma_markets_btc_15m_active_nested.json")
    ]
    assert all(classify_resolution(m) is None for m in markets)
    wide = resolutions_frame(markets, datetime(2026, 1, 1), datetime(2027, 1, 1))
    assert wide.is_empty() and wide.schema == RESOLUTION_SCHEMA
    with pytest.raises(ValueError, match="not closed"):
        resolution_row(markets[0], datetime(2026, 1, 1), datetime(2027, 1, 1))


# --------------------------------------------------------------------------- synthetic variants


@pytest.mark.unit
@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ('["0.5", "0.5"]', ("void", None)),
        ('["0", "0"]', ("void", None)),
        ('["0.995", "0.005"]', ("unsettled", None)),
        ('["0.9995", "0.0005"]', ("resolved", 0)),
        ('["0.0005", "0.9995"]', ("resolved", 1)),
        ('["1", "1"]', ("unsettled", None)),
        ('["0.6", "0.4"]', ("unsettled", None)),
        (None, ("unsettled", None)),
    ],
)
def test_classification_follows_the_one_hot_rule(fixtures_dir, prices, expected):
    assert classify_resolution(variant(fixtures_dir, outcomePrices=prices)) == expected


@pytest.mark.unit
def test_open_market_with_one_hot_prices_is_no_resolution(fixtures_dir):
    assert (
        classify_resolution(variant(fixtures_dir, closed=False, outcomePrices='["1", "0"]')) is None
    )


@pytest.mark.unit
def test_void_and_unsettled_rows_carry_no_winner(fixtures_dir):
    ws, we = datetime(2026, 3, 19, 23), datetime(2026, 3, 20)
    markets = [
        variant(fixtures_dir, id="1", outcomePrices='["0.5", "0.5"]'),
        variant(fixtures_dir, id="2", outcomePrices='["0.995", "0.005"]'),
        variant(fixtures_dir, id="3", outcomePrices='["0.9995", "0.0005"]'),
    ]
    frame = resolutions_frame(markets, ws, we)
    assert frame.schema == RESOLUTION_SCHEMA
    assert frame.select("market_id", "status", "winner_outcome", "yes_won").rows() == [
        ("1", "void", None, None),
        ("2", "unsettled", None, None),
        ("3", "resolved", "Yes", True),
    ]
    assert json.loads(frame["outcome_prices"][1]) == ["0.995", "0.005"]


@pytest.mark.unit
def test_settle_time_is_closed_time_else_end_date(fixtures_dir):
    closed = variant(fixtures_dir)  # closedTime 2026-03-19 23:20:15, endDate 2028-01-01 05:00
    assert settled_in_window(closed, datetime(2026, 3, 19, 23, 15), datetime(2026, 3, 19, 23, 30))
    assert not settled_in_window(closed, datetime(2028, 1, 1, 5), datetime(2028, 1, 1, 5, 15))
    no_close = variant(fixtures_dir, closedTime=None, umaEndDate=None)
    assert settled_in_window(no_close, datetime(2028, 1, 1, 5), datetime(2028, 1, 1, 5, 15))
    # [start, end): a settle time on the end bound belongs to the next window.
    assert not settled_in_window(no_close, datetime(2028, 1, 1, 4, 45), datetime(2028, 1, 1, 5))
    assert settled_at(no_close) is None


@pytest.mark.unit
def test_settled_at_falls_back_to_uma_end_date(fixtures_dir):
    @dataclass(frozen=True)
    class WithUmaEnd(GammaMarket):
        uma_end_date: datetime | None = None

    base = variant(fixtures_dir, closedTime=None)
    fields = {name: getattr(base, name) for name in base.__dataclass_fields__}
    m = WithUmaEnd(**fields, uma_end_date=datetime(2026, 3, 19, 23, 20, 15))
    assert settled_at(m) == datetime(2026, 3, 19, 23, 20, 15)


# --------------------------------------------------------------------------- simulated world


@pytest.fixture(scope="module")
def sim():
    world = SimulatedWorld(seed=7, days=2, now=datetime(2026, 3, 1))
    with ReplayServer(world) as server:
        http = JsonHttp(make_client(HttpSettings()), HttpSettings())
        yield world, server, GammaClient(http, f"{server.url}/gamma")
        http.close()


@pytest.fixture(scope="module")
def day(sim):
    """find_resolutions over 2026-02-28, the replay stats of that call, the 1m klines."""
    world, server, gamma = sim
    server.reset_stats()
    markets, skipped = find_resolutions(gamma, DAY_START, DAY_END)
    stats = server.stats()
    binance = BinanceClient(base_url=f"{server.url}/binance")
    klines = klines_frame(binance.klines(world.start, DAY_END))
    return markets, skipped, stats, klines


def _pg_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace(" ", "T").replace("+00", "+00:00")).replace(
        tzinfo=None
    )


def _raw_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


@pytest.mark.integration
def test_finds_every_btc_market_that_closed_that_day_in_one_listing(sim, day):
    world, _, _ = sim
    markets, skipped, stats, _ = day
    raw = world.gamma_markets()
    expected = {
        r["id"] for r in raw if r["closed"] and DAY_START <= _raw_time(r["closedTime"]) < DAY_END
    }
    assert skipped == []
    assert {m.id for m in markets} == expected
    families = {parse_market_terms(m).family for m in markets}
    assert families == {"updown_15m", "updown_1h", "above"}
    # One keyset listing, newest closure first, read down to the first closure before
    # the range: never more pages than the old end-date window [-9 d, +8 d] needed.
    lo = DAY_START - timedelta(days=9)
    closed = [
        r
        for r in raw
        if r["closed"]
        and _raw_time(r["endDate"]) >= lo
        and any(t["id"] == "235" for t in r["events"][0]["tags"])
    ]
    walked = sum(_pg_time(r["closedTime"]) >= DAY_START for r in closed) + 1
    old = sum(_raw_time(r["endDate"]) <= DAY_END + timedelta(days=8) for r in closed)
    assert stats["routes"] == {"/gamma/markets/keyset": math.ceil(walked / 100)}
    assert math.ceil(walked / 100) <= math.ceil(old / 100)


@pytest.mark.integration
def test_every_label_matches_the_world(sim, day):
    world, _, _ = sim
    markets, _, _, _ = day
    frame = resolutions_frame(markets, DAY_START, DAY_END)
    assert frame.height == len(markets) and set(frame["status"]) == {"resolved"}
    for market_id, winner, yes_won in frame.select(
        "market_id", "winner_outcome", "yes_won"
    ).iter_rows():
        truth = world.resolution_of(market_id)
        assert winner == truth
        assert yes_won == (truth in ("Up", "Yes"))


@pytest.mark.integration
def test_crosscheck_agrees_for_every_simulated_market_but_chainlink_close_calls(sim, day):
    world, _, _ = sim
    markets, _, _, klines = day
    frame = resolutions_frame(markets, DAY_START, DAY_END)
    checked = crosscheck(frame, terms_frame(markets), klines)
    assert checked.schema == CROSSCHECK_SCHEMA
    assert checked.height == frame.height
    assert checked["agrees"].null_count() == 0, checked.filter(pl.col("agrees").is_null())
    # The world settles 15m windows on its "Chainlink" print: the two windows of the day
    # it puts on the other side than Binance are close calls on moves of a few dollars.
    close = checked.filter(pl.col("verdict") == "close_call")
    assert set(checked["verdict"]) == {"agrees", "close_call"}
    assert close.height == 2 and set(close["family"]) == {"updown_15m"}
    assert (close["move_usd"].abs() < 15).all() and (close["move_bps"].abs() < 2).all()
    assert checked.filter(pl.col("verdict") == "agrees")["agrees"].all()
    for row in close.iter_rows(named=True):
        truth = world.resolution_of(row["market_id"]) == "Up"
        assert row["label_yes_won"] == truth != row["klines_yes_won"]
    rules = dict(checked.select("family", "rule").unique().iter_rows())
    assert rules == {
        "updown_15m": "close(E-1m) >= open(R)",
        "updown_1h": "close(E-1m) >= open(R)",
        "above": "close(E) > K",
    }


@pytest.mark.integration
def test_crosscheck_details_name_the_compared_prices(sim, day):
    world, _, _ = sim
    markets, _, _, klines = day
    hourly = next(m for m in markets if parse_market_terms(m).family == "updown_1h")
    terms = parse_market_terms(hourly)
    checked = crosscheck(
        resolutions_frame([hourly], DAY_START, DAY_END), terms_frame([hourly]), klines
    )
    detail = checked["detail"][0]
    close = world.btc_close_at(terms.expiry - timedelta(minutes=1))
    assert f"close {close} at {terms.expiry - timedelta(minutes=1):%Y-%m-%d %H:%M}" in detail
    assert f"at {terms.reference_start:%Y-%m-%d %H:%M}" in detail


@pytest.mark.integration
def test_flipped_labels_are_disagreements_unless_a_chainlink_window_barely_moved(day):
    markets, _, _, klines = day
    frame = resolutions_frame(markets, DAY_START, DAY_END)
    terms = terms_frame(markets)
    honest = crosscheck(frame, terms, klines).filter(pl.col("verdict") == "agrees")

    def first(family: str, bps: pl.Expr) -> str:
        return honest.filter((pl.col("family") == family) & bps)["market_id"][0]

    big_15m = first("updown_15m", pl.col("move_bps").abs() > 3 * CLOSE_CALL_BPS)
    tiny_15m = first("updown_15m", pl.col("move_bps").abs() < CLOSE_CALL_BPS / 2)
    tiny_1h = first("updown_1h", pl.col("move_bps").abs() < CLOSE_CALL_BPS)
    above = first("above", pl.lit(True))
    victims = [big_15m, tiny_15m, tiny_1h, above]
    flipped = frame.with_columns(
        pl.when(pl.col("market_id").is_in(victims))
        .then(~pl.col("yes_won"))
        .otherwise(pl.col("yes_won"))
        .alias("yes_won")
    )
    checked = crosscheck(flipped, terms, klines)
    verdicts = dict(
        checked.filter(pl.col("market_id").is_in(victims))
        .select("market_id", "verdict")
        .iter_rows()
    )
    # A wrong label on a 15m window that moved under the feed gap cannot be told from a
    # close call; everywhere else it is a disagreement.
    assert verdicts == {
        big_15m: "disagrees",
        tiny_15m: "close_call",
        tiny_1h: "disagrees",
        above: "disagrees",
    }


@pytest.mark.integration
def test_explicit_ids_keep_only_the_closed_ones_settled_in_range(sim, day):
    world, _, gamma = sim
    markets, _, _, _ = day
    in_range = markets[0].id
    still_open = next(r["id"] for r in world.gamma_markets() if not r["closed"])
    found, skipped = find_resolutions(gamma, DAY_START, DAY_END, market_ids=[in_range, still_open])
    assert [m.id for m in found] == [in_range] and skipped == []


# --------------------------------------------------------------------------- crosscheck, pure


def _candles(*rows: tuple[datetime, float, float]) -> pl.DataFrame:
    return pl.DataFrame(
        [(t, o, max(o, c), min(o, c), c, 1.0) for t, o, c in rows],
        schema=["open_time", "open", "high", "low", "close", "volume"],
        orient="row",
    )


def _resolved(*rows: tuple[str, str, bool]) -> pl.DataFrame:
    data = [
        {"market_id": mid, "family": fam, "status": "resolved", "yes_won": yes}
        for mid, fam, yes in rows
    ]
    return pl.DataFrame(data, schema={k: RESOLUTION_SCHEMA[k] for k in data[0]})


@pytest.mark.unit
def test_crosscheck_without_data_marks_rows_uncheckable():
    noon = datetime(2026, 3, 2, 17)
    resolutions = _resolved(
        ("1", "above", True),  # candle at expiry missing
        ("2", "reach", True),  # barrier: not cross-checked
        ("3", "above", False),  # no tracked terms
        ("4", "below", False),  # close == strike: neither above nor below
        ("5", "above", False),
    )
    terms = pl.DataFrame(
        [
            ("1", "above", 70000.0, None, noon - timedelta(minutes=5)),
            ("2", "reach", 90000.0, None, noon),
            ("4", "below", 68000.0, None, noon),
            ("5", "above", 68000.0, None, noon),
        ],
        schema=TERMS_SCHEMA,
        orient="row",
    )
    klines = _candles((noon, 67990.0, 68000.0))
    checked = crosscheck(resolutions, terms, klines)
    got = {r["market_id"]: r for r in checked.iter_rows(named=True)}
    assert got["1"]["agrees"] is None and "no 1m candle at 2026-03-02 16:55" in got["1"]["detail"]
    assert got["2"]["agrees"] is None and "not cross-checked" in got["2"]["detail"]
    assert got["3"]["agrees"] is None and got["3"]["detail"] == "no tracked terms"
    assert (got["4"]["rule"], got["4"]["klines_yes_won"], got["4"]["agrees"]) == (
        "close(E) < K",
        False,
        True,
    )
    assert got["5"]["detail"] == "close 68000.0 at 2026-03-02 17:00 vs strike 68000"
    assert got["5"]["agrees"] is True


@pytest.mark.unit
def test_crosscheck_ignores_void_and_unsettled_rows():
    frame = pl.DataFrame(
        {
            "market_id": ["1", "2"],
            "family": ["above", "above"],
            "status": ["void", "unsettled"],
            "yes_won": [None, None],
        },
        schema={k: RESOLUTION_SCHEMA[k] for k in ("market_id", "family", "status", "yes_won")},
    )
    empty_terms = pl.DataFrame(schema=TERMS_SCHEMA)
    assert crosscheck(frame, empty_terms, _candles()).is_empty()


# --------------------------------------------------------------------------- listing quirks


def _recorded_market(mid: str, *, end: str, closed_time: str | None, **extra) -> dict:
    raw = {
        "id": mid,
        "question": f"Will Bitcoin reach ${mid},000 March 2-8?",
        "slug": f"will-bitcoin-reach-{mid}k-march-2-8",
        "conditionId": "0x" + mid.rjust(64, "0"),
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["1", "0"]',
        "clobTokenIds": json.dumps([mid + "1" * 70, mid + "2" * 70]),
        "startDate": "2026-02-27T05:00:00Z",
        "endDate": end,
        "active": True,
        "closed": True,
        "events": [
            {
                "id": "9",
                "slug": "x",
                "title": "What price will Bitcoin hit March 2-8?",
                "tags": [{"id": "235", "label": "Bitcoin", "slug": "bitcoin"}],
            }
        ],
    }
    if closed_time:
        raw["closedTime"] = closed_time
    return raw | extra


@pytest.mark.integration
def test_listing_catches_late_and_early_settlements_and_skips_bad_objects(tmp_path):
    lines = [
        # reach market that hit early: closed on Wednesday, endDate the next Monday
        _recorded_market("95", end="2026-03-09T04:00:00Z", closed_time="2026-03-04 10:05:00+00"),
        # settled by UMA 5 days after its endDate
        _recorded_market("96", end="2026-02-27T05:00:00Z", closed_time="2026-03-04 10:20:00+00"),
        # closed the day before: not in range
        _recorded_market("97", end="2026-03-03T05:00:00Z", closed_time="2026-03-03 06:00:00+00"),
        _recorded_market(
            "98",
            end="2026-03-04T10:00:00Z",
            closed_time="2026-03-04 10:10:00+00",
            volumeNum={"not": "a number"},
        ),
        # a monthly barrier that touched 27 days before its endDate
        _recorded_market("99", end="2026-04-01T04:00:00Z", closed_time="2026-03-04 10:25:00+00"),
        # a yearly one that touched in February: not in range
        _recorded_market("100", end="2027-01-01T05:00:00Z", closed_time="2026-02-11 08:00:00+00"),
    ]
    (tmp_path / "markets.jsonl").write_text("\n".join(json.dumps(m) for m in lines) + "\n")
    (tmp_path / "klines.csv").write_text(
        "open_time_ms,open,high,low,close,volume\n"
        "1772618400000,80000,80010,79990,80005,1.5\n"
        "1772618460000,80005,80020,80000,80010,2.0\n"
    )
    now = datetime(2026, 3, 4, 12)
    with ReplayServer(RecordedWorld(tmp_path, now=now)) as server:
        http = JsonHttp(make_client(HttpSettings()), HttpSettings())
        gamma = GammaClient(http, f"{server.url}/gamma")
        rs, re = datetime(2026, 3, 4, 10), datetime(2026, 3, 4, 10, 30)
        found, skipped = find_resolutions(gamma, rs, re)
        http.close()
    assert [m.id for m in found] == ["95", "96", "99"]
    assert len(skipped) == 1 and skipped[0].startswith("market 98: skipped")
    assert "volumeNum" in skipped[0]


@pytest.mark.unit
def test_crosscheck_updown_rules_on_synthetic_candles():
    r, e = datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 10, 15)
    day_r, day_e = datetime(2026, 3, 1, 17), datetime(2026, 3, 2, 17)
    resolutions = _resolved(("1", "updown_15m", True), ("2", "updown_daily", False))
    terms = pl.DataFrame(
        [("1", "updown_15m", None, r, e), ("2", "updown_daily", None, day_r, day_e)],
        schema=TERMS_SCHEMA,
        orient="row",
    )
    klines = _candles(
        (r, 84123.5, 84150.0),
        (e - timedelta(minutes=1), 84190.0, 84123.5),  # tie with the open: Up
        (e, 84123.5, 83000.0),  # the candle at E is not part of a 15m window
        (day_r, 80000.0, 80100.0),
        (day_e, 80200.0, 80050.0),  # daily: close at E below close at R: Down
    )
    got = {
        row["market_id"]: row
        for row in crosscheck(resolutions, terms, klines).iter_rows(named=True)
    }
    assert got["1"]["klines_yes_won"] is True and got["1"]["agrees"] is True
    assert got["1"]["detail"].startswith(
        "open 84123.5 at 2026-03-02 10:00, close 84123.5 at 2026-03-02 10:14"
    )
    assert (got["2"]["rule"], got["2"]["klines_yes_won"], got["2"]["agrees"]) == (
        "close(E) >= close(R)",
        False,
        True,
    )


# --------------------------------------------------------------------------- close calls


R15, E15 = datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 10, 15)


def _window(market_id: str, family: str, label_up: bool, open_: float, close: float):
    """One up/down window [R15, E15): its resolution, terms and the two candles compared."""
    resolution = (market_id, family, label_up)
    terms = (market_id, family, None, R15, E15)
    return resolution, terms, [(R15, open_, open_), (E15 - timedelta(minutes=1), close, close)]


def _check_windows(*windows) -> dict[str, dict]:
    """crosscheck over windows of different markets (each on its own day of candles)."""
    resolutions, terms, candles = [], [], []
    for day, (resolution, term, rows) in enumerate(windows):
        shift = timedelta(days=day)
        resolutions.append(resolution)
        terms.append((*term[:3], term[3] + shift, term[4] + shift))
        candles += [(t + shift, o, c) for t, o, c in rows]
    checked = crosscheck(
        _resolved(*resolutions),
        pl.DataFrame(terms, schema=TERMS_SCHEMA, orient="row"),
        _candles(*candles),
    )
    return {r["market_id"]: r for r in checked.iter_rows(named=True)}


@pytest.mark.unit
def test_chainlink_window_contradicted_on_a_tiny_move_is_a_close_call():
    # Binance: +3.20 $ (Up); the market settled Down on Chainlink.
    got = _check_windows(_window("1", "updown_15m", False, 85000.0, 85003.2))["1"]
    assert (got["agrees"], got["verdict"]) == (False, "close_call")
    assert (got["move_usd"], got["move_bps"]) == (3.2, 0.38)
    assert got["detail"].startswith("close call: Binance moved +3.20 $ (+0.38 bp), within")
    assert "open 85000.0 at 2026-03-02 10:00, close 85003.2 at 2026-03-02 10:14" in got["detail"]


@pytest.mark.unit
def test_big_contradictions_and_binance_settled_ones_stay_disagreements():
    got = _check_windows(
        _window("1", "updown_15m", False, 85000.0, 85200.0),  # +23.5 bp: not a feed gap
        _window("2", "updown_1h", False, 85000.0, 85003.2),  # settles on Binance itself
        _window("4", "updown_5m", True, 85000.0, 84990.0),  # Chainlink, -10 $: close call
        _window("5", "updown_4h", True, 20000.0, 19975.0),  # -25 $ = -12.5 bp: close call
        _window("6", "updown_4h", True, 20000.0, 19970.0),  # -30 $ and -15 bp: disagrees
    )
    verdicts = {market_id: row["verdict"] for market_id, row in got.items()}
    assert verdicts == {
        "1": "disagrees",
        "2": "disagrees",
        "4": "close_call",
        "5": "close_call",
        "6": "disagrees",
    }
    assert got["1"]["detail"].startswith("Binance moved +200.00 $ (+23.53 bp); open 85000.0")


@pytest.mark.unit
def test_feed_difference_needs_a_small_move_in_dollars_or_basis_points():
    assert is_feed_difference(CLOSE_CALL_USD, 50.0)  # $25 on a low price
    assert is_feed_difference(80.0, CLOSE_CALL_BPS)  # 10 bp on a high price
    assert not is_feed_difference(CLOSE_CALL_USD + 0.01, CLOSE_CALL_BPS + 0.01)
    assert not is_feed_difference(None, None)


@pytest.mark.unit
def test_klines_check_fails_only_on_a_disagreement():
    windows = [_window("1", "updown_15m", False, 85000.0, 85003.2)]
    calm = _check_windows(*windows)
    big = _check_windows(*windows, _window("2", "updown_15m", False, 85000.0, 85200.0))

    def klines_check(got: dict[str, dict]) -> dg.AssetCheckResult:
        checked = pl.DataFrame(list(got.values()), schema=CROSSCHECK_SCHEMA)
        frame = pl.DataFrame(
            [{"market_id": k, "status": "resolved"} for k in got],
            schema={"market_id": pl.String, "status": pl.String},
        ).with_columns(
            pl.lit("Up").alias("winner_outcome"),
            pl.lit("t").alias("winning_token_id"),
            pl.lit(True).alias("yes_won"),
        )
        return next(c for c in _label_checks(frame, checked) if c.check_name == KLINES_CHECK)

    passed = klines_check(calm)
    assert passed.passed and passed.metadata["close_call"].value == 1
    assert passed.description.startswith("Close calls (labels kept): 1 (close call: Binance")
    failed = klines_check(big)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["disagree"].value == 1
    assert failed.metadata["disagreeing_markets"].value == "2"
    assert failed.description.startswith("Disagreeing markets: 2 (Binance moved +200.00 $")


@pytest.mark.unit
def test_a_closed_market_without_closed_time_does_not_end_the_listing(fixtures_dir):
    """Gamma omits ``closedTime`` on some closed markets, and a Postgres-style descending
    order puts those first: the listing goes on past them (it used to stop there and
    return no label at all), and yields them for ``endDate`` to place."""
    from btc_tracker_pipeline_tests.sources.loopback import Reply, routes, serve

    base = load(fixtures_dir, "gamma_market_resolved_katana_fdv.json")
    base = base | {"question": "Will Bitcoin reach $150,000 in March?", "slug": "btc-150k"}
    undated = {k: v for k, v in base.items() if k != "closedTime"} | {
        "id": "1",
        "endDate": "2026-02-28T12:00:00Z",
    }
    inside = base | {"id": "2", "closedTime": "2026-02-28 18:00:00+00"}
    before = base | {"id": "3", "closedTime": "2026-02-27 18:00:00+00"}
    pages = {
        "false": [undated, inside, before],  # descending, nulls first
        "true": [undated, before, inside],  # ascending, nulls first
    }

    def keyset(request) -> Reply:
        return Reply({"markets": pages[request.get("ascending")]})

    settings = HttpSettings(timeout_s=2.0, max_attempts=1)
    with (
        serve(routes({"/gamma/markets/keyset": keyset})) as server,
        JsonHttp(make_client(settings), settings) as http,
    ):
        found, skipped = find_resolutions(
            GammaClient(http, server.base + "/gamma"), DAY_START, DAY_END
        )
    assert skipped == []
    assert sorted(m.id for m in found) == ["1", "2"]  # "1" placed by its endDate
