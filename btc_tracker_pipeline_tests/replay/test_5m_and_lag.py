"""The simulated world's 5-minute up/down markets (``updown_5m``) and its lagging
prices (``lag_s``): both off by default, and then the world is what it was."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from btc_tracker_pipeline.features.market_terms import parse_market_terms
from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.simulated import MAX_LAG_S, SimulatedWorld
from btc_tracker_pipeline.sources.gamma import GammaClient, parse_market
from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client

NOW = datetime(2026, 3, 11, 15, 7)
EPOCH = datetime(1970, 1, 1)
FIVE_M = 14  # the 5-minute markets' id prefix (simulated.py docstring)
LAG_S = 90.0


@pytest.fixture(scope="module")
def plain() -> SimulatedWorld:
    return SimulatedWorld(seed=7, days=2, now=NOW)


@pytest.fixture(scope="module")
def with_5m() -> SimulatedWorld:
    return SimulatedWorld(seed=7, days=2, now=NOW, updown_5m=True)


def _is_5m(market: dict[str, Any]) -> bool:
    return int(market["id"]) // 10**9 == FIVE_M


def _window_start(market: dict[str, Any]) -> datetime:
    """A 5-minute market's window start, from its id (title-only ones have no field)."""
    return EPOCH + timedelta(seconds=int(market["id"]) % 10**9 * 300)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def _ms(dt: datetime) -> int:
    return int((dt - EPOCH).total_seconds() * 1000)


# --- 5-minute markets ----------------------------------------------------------------


@pytest.mark.unit
def test_5m_markets_list_every_5_minutes_a_day_ahead(with_5m: SimulatedWorld) -> None:
    fives = [m for m in with_5m.gamma_markets() if _is_5m(m)]
    starts = sorted(_window_start(m) for m in fives)
    day = datetime(2026, 3, 10)
    assert sum(day <= s < day + timedelta(days=1) for s in starts) == 288
    assert starts == [starts[0] + timedelta(minutes=5 * i) for i in range(len(starts))]
    title_only = 0
    for m in fives:
        start = _window_start(m)
        t = int((start - EPOCH).total_seconds())
        assert t % 300 == 0
        assert _dt(m["endDate"]) == start + timedelta(minutes=5)
        if "eventStartTime" in m:
            assert m["slug"] == f"btc-updown-5m-{t}"
            assert _dt(m["eventStartTime"]) == start
        else:  # the title-only shape, as for the 15-minute windows
            title_only += 1
            assert m["slug"].startswith("bitcoin-up-or-down-")
        assert re.fullmatch(
            r"Bitcoin Up or Down - [A-Z][a-z]+ \d{1,2}, \d{1,2}:\d{2}[AP]M-\d{1,2}:\d{2}[AP]M ET",
            m["question"],
        )
        assert m["outcomes"] == '["Up", "Down"]'
        event = m["events"][0]
        assert event["slug"] == m["slug"] and event["series"][0]["id"] == "10684"
        assert "235" in {tag["id"] for tag in event["tags"]}
        listed = _dt(m["startDate"])
        if listed > with_5m.start:  # listed updown_lead ahead, within a minute after
            assert timedelta(days=1) - timedelta(minutes=1) < start - listed <= timedelta(days=1)
        # The pipeline's parser: structured slug, or the title of the title-only ones.
        terms = parse_market_terms(parse_market(m))
        assert terms.family == "updown_5m", m["slug"]
        assert (terms.reference_start, terms.expiry) == (start, start + timedelta(minutes=5))
    assert 0.05 < title_only / len(fives) < 0.15
    # 2026-03-11 15:00Z is 11:00 EDT; open windows reach a day ahead of now
    sample = next(m for m in fives if _window_start(m) == datetime(2026, 3, 11, 15))
    assert sample["question"] == "Bitcoin Up or Down - March 11, 11:00AM-11:05AM ET"
    assert max(starts) - NOW < timedelta(days=1) <= max(starts) + timedelta(minutes=5) - NOW
    # open: 288 a day ahead, the current window and the one that ended at 15:05 (it
    # closes 2 min after its end, like the 15-minute ones)
    assert sum(not m["closed"] for m in fives) == 290


@pytest.mark.unit
def test_5m_markets_settle_up_iff_the_chainlink_close_is_at_least_the_open(
    with_5m: SimulatedWorld,
) -> None:
    closed = [m for m in with_5m.gamma_markets() if _is_5m(m) and m["closed"]]
    assert len(closed) > 400
    for m in closed:
        start = _window_start(m)
        end = start + timedelta(minutes=5)
        candles = with_5m.klines("1m", _ms(start), _ms(start) + 4 * 60_000, 10)
        assert len(candles) == 5
        first, last = float(candles[0][1]), float(candles[-1][4])
        opened, ended = with_5m.chainlink_price(start), with_5m.chainlink_price(end)
        for price, binance in ((opened, first), (ended, last)):
            assert abs(price - binance) <= 2.5e-4 * binance + 0.005  # 2.5 bp, cents
        up = ended >= opened
        assert with_5m.resolution_of(m["id"]) == ("Up" if up else "Down")
        assert json.loads(m["outcomePrices"]) == (["1", "0"] if up else ["0", "1"])
        event = m["events"][0]
        assert event["eventMetadata"]["priceToBeat"] == first


@pytest.mark.integration
def test_5m_markets_parse_as_updown_5m_through_the_gamma_client(
    with_5m: SimulatedWorld,
) -> None:
    fives = [m for m in with_5m.gamma_markets() if _is_5m(m) and not m["closed"]]
    with ReplayServer(with_5m) as server:
        http = JsonHttp(make_client(HttpSettings()), HttpSettings())
        try:
            gamma = GammaClient(http, f"{server.url}/gamma")
            ids = {m["id"] for m in fives}
            listed = [m for m in gamma.iter_markets(closed=False) if m.id in ids]
            structured = next(m for m in fives if m["slug"].startswith("btc-updown-5m-"))
            by_slug = gamma.get_market_by_slug(structured["slug"])
        finally:
            http.close()
    assert len(listed) == len(fives) == 290
    for market in [*listed, by_slug]:
        terms = parse_market_terms(market)
        assert terms.family == "updown_5m" and terms.direction == "up"
        assert terms.expiry - terms.reference_start == timedelta(minutes=5)
    assert parse_market_terms(by_slug).parse_source == "structured"


@pytest.mark.unit
def test_without_5m_the_world_is_the_5m_world_minus_its_5m_markets(
    plain: SimulatedWorld, with_5m: SimulatedWorld
) -> None:
    assert not plain.updown_5m and not any(_is_5m(m) for m in plain.gamma_markets())
    assert SimulatedWorld(seed=7, days=2, now=NOW, updown_5m=False).identity() == plain.identity()
    assert plain.gamma_markets() == [m for m in with_5m.gamma_markets() if not _is_5m(m)]
    events = [e for e in with_5m.gamma_events() if not _is_5m(e["markets"][0])]
    assert plain.gamma_events() == events
    now_s = _ms(NOW) // 1000
    shared = [m for m in plain.gamma_markets() if not m["closed"]][::40]
    assert len(shared) >= 5
    for m in shared:
        token = json.loads(m["clobTokenIds"])[0]
        for w in (plain, with_5m):
            assert w.price_history(token, now_s - 86_400, now_s, 1)
        assert plain.price_history(token, now_s - 86_400, now_s, 1) == with_5m.price_history(
            token, now_s - 86_400, now_s, 1
        )
        assert plain.book(token) == with_5m.book(token)
    assert plain.klines("1m", None, None, 500) == with_5m.klines("1m", None, None, 500)


@pytest.mark.unit
def test_updown_5m_is_a_parameter_of_the_world(
    plain: SimulatedWorld, with_5m: SimulatedWorld
) -> None:
    assert "updown_5m" not in plain.parameters()  # worlds without it keep their identity
    assert with_5m.parameters()["updown_5m"] is True
    again = SimulatedWorld.from_parameters(with_5m.parameters(), now=NOW)
    assert again.updown_5m and again.identity() == with_5m.identity() != plain.identity()
    assert again.gamma_markets() == with_5m.gamma_markets()
    assert not SimulatedWorld.from_parameters(plain.parameters(), now=NOW).updown_5m
    with pytest.raises(ValueError, match="updown_5m must be True or False"):
        SimulatedWorld(seed=7, days=1, now=NOW, updown_5m="yes")  # type: ignore[arg-type]


# --- lag -----------------------------------------------------------------------------


def _window_quotes(
    w: SimulatedWorld, family_prefix: int, lag_days: int = 1
) -> tuple[list[Any], np.ndarray, dict[str, np.ndarray]]:
    """Quotes of the up/down markets (id prefix ``family_prefix``) whose windows ended
    in the last ``lag_days`` days, over their windows' minutes."""
    now_min = int((w.now() - w.start).total_seconds() // 60)
    markets = [
        w._by_id[m["id"]]
        for m in w.gamma_markets()
        if int(m["id"]) // 10**9 == family_prefix and m["closed"]
    ]
    markets = [mk for mk in markets if mk.end_min > now_min - 1440 * lag_days]
    span = markets[0].end_min - markets[0].start_min
    minutes = np.array([np.arange(mk.start_min, mk.start_min + span) for mk in markets])
    return markets, minutes, w._quotes(markets, minutes)


def _fair_at(w: SimulatedWorld, markets: list[Any], minutes: np.ndarray) -> np.ndarray:
    """``FairValues.of`` for ``markets[i]`` at ``minutes[i, :]``."""
    k = minutes.shape[1]
    rows = [
        w._fair_values.of(
            np.full(k, mk.family),
            np.full(k, mk.start_min),
            np.full(k, mk.end_min),
            np.full(k, mk.strike),
            row,
        )
        for mk, row in zip(markets, minutes, strict=True)
    ]
    return np.array(rows)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.log(p / (1.0 - p))


@pytest.mark.unit
def test_lagged_mid_is_the_fair_value_90_seconds_earlier() -> None:
    lagged = SimulatedWorld(seed=7, days=2, now=NOW, lag_s=LAG_S, updown_5m=True)
    plain = SimulatedWorld(seed=7, days=2, now=NOW, updown_5m=True)
    for prefix in (1, FIVE_M):  # 15-minute and 5-minute windows
        markets, minutes, q = _window_quotes(lagged, prefix)
        _, _, q0 = _window_quotes(plain, prefix)
        # the oracle's column is the fair value at m, lag or not
        assert np.array_equal(q["fair"], q0["fair"])
        # m − 1.5 min: halfway in logit space between m − 2 and m − 1
        before = [_logit(_fair_at(lagged, markets, minutes - k)) for k in (2, 1)]
        expected = 1.0 / (1.0 + np.exp(-0.5 * (before[0] + before[1])))
        expected = np.clip(expected, 0.005, 0.995)
        assert np.abs(q["mid"] - expected).max() <= 0.005 + 1e-9
        # the lag-0 world quotes the fair value at m, which is elsewhere: the check bites
        assert np.abs(q0["mid"] - q0["fair"]).max() <= 0.005 + 1e-9
        assert (np.abs(q0["mid"] - expected) > 0.01).mean() > 0.2
    # the oracle is not lagged either
    ids = [mk.static.id for mk in markets]
    at = [lagged.start + timedelta(minutes=int(row[-1])) for row in minutes]
    assert np.array_equal(lagged.fair_probabilities(ids, at), plain.fair_probabilities(ids, at))


@pytest.mark.unit
def test_lag_clamps_to_the_path_start() -> None:
    w = SimulatedWorld(seed=7, days=2, now=NOW, lag_s=LAG_S)
    ladder = [w._by_id[m["id"]] for m in w.gamma_markets() if m["id"].startswith("3")][:5]
    assert all(mk.listed_min == 0 for mk in ladder)
    q = w._quotes(ladder, np.array([[0, 1, 2, 3]] * len(ladder)))
    first = q["fair"][:, :1]
    # minutes 0 and 1 (m − 1.5 before the start) are priced from minute 0
    assert (np.abs(q["mid"][:, :2] - first) <= 0.005 + 1e-9).all()


@pytest.mark.unit
def test_lag_0_is_the_world_without_lag(plain: SimulatedWorld) -> None:
    zero = SimulatedWorld(seed=7, days=2, now=NOW, lag_s=0)
    assert zero.identity() == plain.identity() and "lag_s" not in zero.parameters()
    assert zero.gamma_markets() == plain.gamma_markets()
    for prefix in (1, 2):
        _, _, q = _window_quotes(zero, prefix)
        _, _, q0 = _window_quotes(plain, prefix)
        for name in q0:
            assert np.array_equal(q[name], q0[name]), name


@pytest.mark.unit
def test_lag_moves_the_price_away_from_the_fair_value() -> None:
    gaps = []
    for lag_s in (0.0, 30.0, 90.0, 300.0):
        w = SimulatedWorld(seed=7, days=2, now=NOW, lag_s=lag_s)
        _, _, q = _window_quotes(w, 1)  # 15-minute windows of the last day
        gaps.append(float(np.abs(q["mid"] - q["fair"]).mean()))
    assert gaps == sorted(gaps) and len(set(gaps)) == 4, gaps
    assert gaps[0] < 0.003 and gaps[2] > 2 * gaps[0], gaps


@pytest.mark.unit
def test_lag_is_a_parameter_of_the_world(plain: SimulatedWorld) -> None:
    lagged = SimulatedWorld(seed=7, days=2, now=NOW, lag_s=LAG_S, bias=0.2, noise=0.1)
    assert lagged.parameters()["lag_s"] == LAG_S
    again = SimulatedWorld.from_parameters(lagged.parameters(), now=NOW)
    assert again.lag_s == LAG_S and again.identity() == lagged.identity() != plain.identity()
    assert again.gamma_markets() == lagged.gamma_markets()
    SimulatedWorld(seed=7, days=1, now=NOW, lag_s=MAX_LAG_S)


@pytest.mark.unit
@pytest.mark.parametrize("lag_s", [-1, MAX_LAG_S + 1, math.nan, math.inf, "90", None, True])
def test_invalid_lag_is_refused(lag_s: Any) -> None:
    with pytest.raises(ValueError, match=r"lag_s must be a finite number in \[0, 3600\]"):
        SimulatedWorld(seed=7, days=1, now=NOW, lag_s=lag_s)


# --- the command line ----------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("command", "value", "says"),
    [
        ("replay", "-1", "not in [0, 3600]"),
        ("demo", "-1", "not in [0, 3600]"),
        ("replay", "3601", "not in [0, 3600]"),
        ("demo", "nan", "not a finite number"),
    ],
)
def test_a_bad_lag_is_a_one_line_usage_error(command, value, says, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from btc_tracker_pipeline.cli import app

    monkeypatch.setenv("BTC_TRACKER_WAREHOUSE", str(tmp_path / "w.duckdb"))
    result = CliRunner().invoke(app, [command, "--lag-s", value])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.output
    assert lines[0].startswith("error: Invalid value for '--lag-s'") and says in lines[0]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # nothing started


@pytest.mark.unit
@pytest.mark.parametrize("command", ["demo", "replay"])
def test_demo_and_replay_take_the_lag_and_the_5m_markets(command) -> None:
    from typer.testing import CliRunner

    from btc_tracker_pipeline import cli

    result = CliRunner().invoke(cli.app, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())  # the help box wraps
    assert "--lag-s" in text and "0: none" in text and "--updown-5m" in text
    assert "--no-updown-5m" in text and "(288 a day)" in text
    assert cli.MAX_LAG_S == MAX_LAG_S and cli.LAG_RANGE(MAX_LAG_S) == MAX_LAG_S


@pytest.mark.unit
def test_the_cli_builds_the_world_it_is_asked_for() -> None:
    from btc_tracker_pipeline.cli import _build_world, world_line

    w = _build_world(7, 1.0, NOW, 0.0, 0.0, None, 11, lag_s=LAG_S, updown_5m=True)
    assert w.lag_s == LAG_S and w.updown_5m
    assert any(_is_5m(m) for m in w.gamma_markets())
    plain = _build_world(7, 1.0, NOW, 0.0, 0.0, None, 11)
    assert plain.lag_s == 0.0 and not plain.updown_5m
    assert world_line(0.0, 0.0, 90.0) == (
        "world: bias 0, noise 0, lag 90 s (distorted: the market is beatable)"
    )
    assert world_line(0.0, 0.0, 0.0) == world_line(0.0, 0.0)
    assert world_line(0.0, 0.0, 0.0).startswith("world: efficient")
