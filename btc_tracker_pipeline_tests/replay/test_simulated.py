"""The simulated world: determinism, real shapes, resolution rules, lifecycle, prices."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from btc_tracker_pipeline.replay.simulated import MAX_NOISE, NOISE_LOGIT, SimulatedWorld
from btc_tracker_pipeline.replay.simulation.et_calendar import ET
from btc_tracker_pipeline.replay.world import UnknownTokenError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 11, 15, 7)
PG_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\+00$")
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return SimulatedWorld(seed=7, days=5, now=NOW)


@pytest.fixture(scope="module")
def markets(world: SimulatedWorld) -> list[dict[str, Any]]:
    return world.gamma_markets()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def _ms(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1)).total_seconds() * 1000)


def _tokens(market: dict[str, Any]) -> list[str]:
    return json.loads(market["clobTokenIds"])


def _family(market: dict[str, Any]) -> str:
    # Market ids are family * 10**9 + local (simulated.py docstring); slugs vary by shape.
    # Weekly (4, 5) and monthly (11, 12) barriers are one family each.
    families = {1: "15m", 2: "1h", 3: "above", 4: "reach", 5: "dip", 11: "reach", 12: "dip"}
    return families[int(market["id"]) // 10**9]


def _window_start(market: dict[str, Any]) -> datetime:
    """An up/down market's window start (from its id: title-only ones have no field)."""
    seconds = {"15m": 900, "1h": 3600}[_family(market)]
    return datetime(1970, 1, 1) + timedelta(seconds=int(market["id"]) % 10**9 * seconds)


def _strike(market: dict[str, Any]) -> float:
    """A ladder market's strike (from its id: rules-only ones have no groupItemTitle)."""
    return float(int(market["id"]) % 10**5 * 10)


def _by_family(markets: list[dict[str, Any]], family: str, closed: bool) -> list[dict[str, Any]]:
    return [m for m in markets if _family(m) == family and m["closed"] is closed]


# --- determinism ---------------------------------------------------------------------


def _fingerprint(w: SimulatedWorld) -> str:
    ms = w.gamma_markets()
    token = _tokens(next(m for m in ms if not m["closed"]))[0]
    return json.dumps(
        [
            ms,
            w.gamma_events(),
            w.klines("15m", None, None, 200),
            w.ticker_24h(),
            w.price_history(token, 0, 2_000_000_000, 5),
            w.book(token),
        ],
        sort_keys=False,
    )


def test_same_seed_gives_identical_answers(world: SimulatedWorld) -> None:
    assert _fingerprint(SimulatedWorld(seed=7, days=5, now=NOW)) == _fingerprint(world)


def test_different_seed_differs(world: SimulatedWorld) -> None:
    other = SimulatedWorld(seed=8, days=5, now=NOW)
    assert other.klines("1m", None, None, 50) != world.klines("1m", None, None, 50)
    assert _fingerprint(other) != _fingerprint(world)


def test_path_starts_near_85k_and_construction_is_fast() -> None:
    started = time.perf_counter()
    w = SimulatedWorld(seed=7, days=30, now=NOW)
    assert time.perf_counter() - started < 2.0
    first = w.klines("1m", 0, None, 1)[0]
    assert first[0] == _ms(w.start) and float(first[1]) == 85_000.0


# --- shapes --------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def test_market_keys_have_the_fixture_types(
    markets: list[dict[str, Any]], fixtures_dir: Path
) -> None:
    real = json.loads((fixtures_dir / "gamma_markets_btc_15m_active_nested.json").read_text())
    by_slug = json.loads((fixtures_dir / "gamma_market_btc_5m_by_slug.json").read_text())
    reference: dict[str, str] = {}
    for sample in [*real, by_slug]:
        for key, value in sample.items():
            if value is not None:
                reference.setdefault(key, _kind(value))
    for market in markets:
        for key, value in market.items():
            if key in reference:
                assert _kind(value) == reference[key], (key, value)
    common = {"id", "conditionId", "questionID", "clobTokenIds", "outcomes", "outcomePrices"}
    assert common <= set(markets[0])


def test_market_fields_decode_like_gamma(markets: list[dict[str, Any]]) -> None:
    ids = [m["id"] for m in markets]
    assert len(set(ids)) == len(ids)
    for m in markets:
        assert m["id"].isdigit()
        assert re.fullmatch(r"0x[0-9a-f]{64}", m["conditionId"])
        assert re.fullmatch(r"0x[0-9a-f]{64}", m["questionID"])
        tokens = _tokens(m)
        assert len(tokens) == 2 and all(t.isdigit() and 60 <= len(t) <= 78 for t in tokens)
        outcomes = json.loads(m["outcomes"])
        prices = json.loads(m["outcomePrices"])
        assert outcomes in (["Up", "Down"], ["Yes", "No"])
        assert all(isinstance(p, str) for p in prices)
        assert math.isclose(sum(map(float, prices)), 1.0)
        assert isinstance(m["volume"], str) and float(m["volume"]) == m["volumeNum"]
        assert m["orderPriceMinTickSize"] == 0.01
        assert m["feesEnabled"] is True
        assert m["feeSchedule"] == {
            "exponent": 1,
            "rate": 0.07,
            "takerOnly": True,
            "rebateRate": 0.2,
        }
        for key in ("startDate", "endDate", "createdAt", "updatedAt"):
            assert ISO_Z.match(m[key]), (key, m[key])
        assert m["endDateIso"] == m["endDate"][:10]
        assert "bestBid" not in m or m["bestBid"] > 0
        (event,) = m["events"]
        assert "markets" not in event
        assert {"235", "21", "1312"} <= {t["id"] for t in event["tags"]}


def test_events_nest_markets_without_events(world: SimulatedWorld) -> None:
    events = world.gamma_events()
    assert len({e["id"] for e in events}) == len(events)
    for event in events:
        assert isinstance(event["volume"], int | float) and isinstance(event["id"], str)
        assert event["markets"] and all("events" not in m for m in event["markets"])
        assert event["seriesSlug"] == event["series"][0]["slug"]


def test_15m_family_follows_polymarket(
    world: SimulatedWorld, markets: list[dict[str, Any]]
) -> None:
    open_15m = _by_family(markets, "15m", closed=False)
    assert open_15m
    title_only = 0
    for m in open_15m + _by_family(markets, "15m", closed=True):
        start = _window_start(m)
        t = int((start - datetime(1970, 1, 1)).total_seconds())
        event = m["events"][0]
        if "eventStartTime" in m:
            assert m["slug"] == f"btc-updown-15m-{t}"
            assert _dt(m["eventStartTime"]) == start == _dt(event["startTime"])
        else:  # a real shape: only the title says which window it is
            title_only += 1
            assert m["slug"].startswith("bitcoin-up-or-down-") and "startTime" not in event
        assert _dt(m["endDate"]) == start + timedelta(minutes=15)
        assert timedelta(0) <= start - _dt(m["startDate"]) <= timedelta(days=1)
        assert re.fullmatch(
            r"Bitcoin Up or Down - [A-Z][a-z]+ \d{1,2}, \d{1,2}:\d{2}[AP]M-\d{1,2}:\d{2}[AP]M ET",
            m["question"],
        )
        assert event["slug"] == m["slug"] and event["series"][0]["id"] == "10192"
        has_price = start <= world.now()
        assert ("eventMetadata" in event) is has_price
    assert 0.05 < title_only / len(open_15m + _by_family(markets, "15m", closed=True)) < 0.15
    # 2026-03-11 15:00Z is 11:00 EDT
    sample = next(m for m in open_15m if _window_start(m) == datetime(2026, 3, 11, 15))
    assert sample["question"] == "Bitcoin Up or Down - March 11, 11:00AM-11:15AM ET"
    start = _window_start(sample)
    to_beat = sample["events"][0]["eventMetadata"]["priceToBeat"]
    assert to_beat == float(world.klines("1m", _ms(start), _ms(start), 1)[0][1])


def test_other_families_titles_and_slugs(markets: list[dict[str, Any]]) -> None:
    hourly = _by_family(markets, "1h", closed=False)
    assert any(m["question"] == "Bitcoin Up or Down - March 11, 11AM ET" for m in hourly)
    assert any(m["slug"] == "bitcoin-up-or-down-march-11-2026-11am-et" for m in hourly)
    above = [m for m in markets if m["slug"].endswith("-on-march-11") and _family(m) == "above"]
    assert len(above) == 11
    event = above[0]["events"][0]
    assert event["title"] == "Bitcoin above ___ on March 11?"
    assert event["slug"] == "bitcoin-above-on-march-11"
    assert event["seriesSlug"] == "btc-multi-strikes-weekly"
    for m in above:
        strike = int(_strike(m))
        if "groupItemTitle" in m:
            assert m["groupItemTitle"] == f"{strike:,}"
            assert m["question"] == f"Will the price of Bitcoin be above ${strike:,} on March 11?"
        else:  # a real shape: the strike is only in the rules
            assert m["question"] == "Bitcoin above ___ on March 11?"
            assert f'final "Close" price of {strike:,}.01 or higher' in m["description"]
        assert m["endDate"] == "2026-03-11T16:00:00Z"  # noon EDT
        assert m["outcomes"] == '["Yes", "No"]'
    assert sorted(int(m["groupItemThreshold"]) for m in above) == list(range(11))
    hits = [m for m in markets if _family(m) in ("reach", "dip") and "March 9-15" in m["question"]]
    assert {m["groupItemTitle"][0] for m in hits} == {"↑", "↓"}
    assert hits[0]["events"][0]["title"] == "What price will Bitcoin hit March 9-15?"
    assert hits[0]["endDate"] == "2026-03-16T04:00:00Z"  # Monday 00:00 EDT


# --- resolutions ---------------------------------------------------------------------


def test_updown_resolutions_follow_their_settlement_feed(
    world: SimulatedWorld, markets: list[dict[str, Any]]
) -> None:
    """Hourly windows settle on the Binance klines; 15-minute ones on the "Chainlink"
    print, which puts about 1-2 % of them on the other side, only on tiny moves."""
    checked, close_calls = 0, []
    for family, minutes in (("15m", 15), ("1h", 60)):
        for m in _by_family(markets, family, closed=True):
            start = _window_start(m)
            end = start + timedelta(minutes=minutes)
            candles = world.klines("1m", _ms(start), _ms(start) + (minutes - 1) * 60_000, 100)
            assert len(candles) == minutes
            first, last = float(candles[0][1]), float(candles[-1][4])
            if family == "1h":
                up = last >= first
                (hour,) = world.klines("1h", _ms(start), _ms(start), 1)
                assert (float(hour[4]) >= float(hour[1])) is up
            else:
                chainlink = world.chainlink_price(start), world.chainlink_price(end)
                for price, binance in zip(chainlink, (first, last), strict=True):
                    assert abs(price - binance) <= 2.5e-4 * binance + 0.005  # 2.5 bp, cents
                up = chainlink[1] >= chainlink[0]
                if up != (last >= first):
                    close_calls.append((last - first) / first * 1e4)
            assert world.resolution_of(m["id"]) == ("Up" if up else "Down")
            assert json.loads(m["outcomePrices"]) == (["1", "0"] if up else ["0", "1"])
            checked += 1
    assert checked > 500
    n_15m = len(_by_family(markets, "15m", closed=True))
    assert 0.005 * n_15m <= len(close_calls) <= 0.03 * n_15m
    assert all(abs(bps) < 5.0 for bps in close_calls)


def test_chainlink_prints_are_deterministic_per_seed() -> None:
    at = datetime(2026, 3, 10, 12, 30)
    one, again = (SimulatedWorld(seed=7, days=5, now=NOW) for _ in range(2))
    other = SimulatedWorld(seed=8, days=5, now=NOW)
    assert one.chainlink_price(at) == again.chainlink_price(at)
    assert one.chainlink_price(at) != one.btc_close_at(at - timedelta(minutes=1))
    assert (one.chainlink_price(at) / one.btc_close_at(at - timedelta(minutes=1))) != (
        other.chainlink_price(at) / other.btc_close_at(at - timedelta(minutes=1))
    )
    with pytest.raises(ValueError, match="no Chainlink print"):
        one.chainlink_price(NOW + timedelta(minutes=5))


def test_ladder_resolution_is_close_at_end_above_strike(
    world: SimulatedWorld, markets: list[dict[str, Any]]
) -> None:
    closed = _by_family(markets, "above", closed=True)
    assert closed
    outcomes = set()
    for m in closed:
        strike = _strike(m)
        yes = world.btc_close_at(_dt(m["endDate"])) > strike
        assert world.resolution_of(m["id"]) == ("Yes" if yes else "No")
        outcomes.add(yes)
    assert outcomes == {True, False}


def _period_start(m: dict[str, Any]) -> datetime:
    """00:00 ET of the first day of a barrier's week or month, as naive UTC."""
    end = _dt(m["endDate"])
    if " in " not in m["question"]:
        return end - timedelta(days=7)
    last_day = (end.replace(tzinfo=UTC).astimezone(ET) - timedelta(days=1)).date()
    first = datetime(last_day.year, last_day.month, 1, tzinfo=ET)
    return first.astimezone(UTC).replace(tzinfo=None)


def test_reach_and_dip_resolve_on_the_first_touch_of_their_period(
    world: SimulatedWorld, markets: list[dict[str, Any]]
) -> None:
    candles = []
    cursor, stop = _ms(world.start), _ms(world.now())
    while cursor < stop:
        batch = world.klines("1m", cursor, stop - 60_000, 1000)
        candles += batch
        cursor = batch[-1][0] + 60_000
    opens = np.array([c[0] for c in candles], dtype=np.int64)
    highs = np.array([float(c[2]) for c in candles])
    lows = np.array([float(c[3]) for c in candles])
    closed = [m for m in markets if _family(m) in ("reach", "dip") and m["closed"]]
    monthly_yes_early = 0
    for m in closed:
        end = _dt(m["endDate"])
        rows = (opens >= _ms(_period_start(m))) & (opens < _ms(end))
        strike = float(m["groupItemTitle"][2:].replace(",", ""))
        hits = highs[rows] >= strike if _family(m) == "reach" else lows[rows] <= strike
        closed_at = _dt(m["closedTime"].replace(" ", "T").replace("+00", ""))
        assert world.resolution_of(m["id"]) == ("Yes" if hits.any() else "No")
        if hits.any():
            touch_close_ms = int(opens[rows][np.argmax(hits)]) + 60_000
            lag_s = (_ms(closed_at) - touch_close_ms) / 1000
            assert 5 * 60 <= lag_s <= 95 * 60, m["question"]
            if " in " in m["question"] and end - closed_at > timedelta(days=10):
                monthly_yes_early += 1
        else:
            assert closed_at > end
    assert {" in " in m["question"] for m in closed} == {True, False}
    assert monthly_yes_early > 0


def test_clob_market_winner_matches_resolution(
    world: SimulatedWorld, markets: list[dict[str, Any]]
) -> None:
    closed = next(m for m in markets if m["closed"])
    body = world.clob_market(closed["conditionId"])
    assert body["closed"] is True
    winners = [t["outcome"] for t in body["tokens"] if t["winner"]]
    assert winners == [world.resolution_of(closed["id"])]
    assert [t["token_id"] for t in body["tokens"]] == _tokens(closed)
    open_ = next(m for m in markets if not m["closed"])
    body = world.clob_market(open_["conditionId"])
    assert body["closed"] is False and not any(t["winner"] for t in body["tokens"])
    with pytest.raises(KeyError):
        world.clob_market("0x" + "0" * 64)


# --- lifecycle -----------------------------------------------------------------------


def test_lifecycle_states(world: SimulatedWorld, markets: list[dict[str, Any]]) -> None:
    now = world.now()
    for m in markets:
        end = _dt(m["endDate"])
        assert _dt(m["startDate"]) <= now
        assert m["active"] is True
        if m["closed"]:
            assert PG_TIME.match(m["closedTime"])
            # only a barrier that touched its strike closes before its endDate (§3.8)
            assert end < now or (
                _family(m) in ("reach", "dip") and m["outcomePrices"] == '["1", "0"]'
            )
            assert "liquidity" not in m
            assert json.loads(m["outcomePrices"]) in (["1", "0"], ["0", "1"])
            assert m["acceptingOrders"] is False
        elif now < end:
            assert m["acceptingOrders"] is True and "closedTime" not in m
            assert "liquidity" in m and "umaResolutionStatus" not in m
        else:
            assert m["acceptingOrders"] is False
    closed = [m for m in markets if m["closed"]]
    with_status = sum("umaResolutionStatus" in m for m in closed)
    assert 0.6 * len(closed) < with_status < len(closed)
    assert all(m["umaResolutionStatus"] == "resolved" for m in closed if "umaResolutionStatus" in m)


def test_ended_market_drifts_then_closes() -> None:
    # 15:15Z: the 15:00 window ended; it closes from 15:17 (+ jitter).
    slug = "btc-updown-15m-1773241200"
    states = {}
    for minute in (16, 20):
        w = SimulatedWorld(seed=7, days=5, now=datetime(2026, 3, 11, 15, minute))
        states[minute] = next(m for m in w.gamma_markets() if m["slug"] == slug)
    ended, closed = states[16], states[20]
    assert ended["closed"] is False and ended["acceptingOrders"] is False
    assert sorted(json.loads(ended["outcomePrices"])) == ["0.005", "0.995"]
    assert closed["closed"] is True and PG_TIME.match(closed["closedTime"])
    winner = 0 if json.loads(ended["outcomePrices"])[0] == "0.995" else 1
    assert json.loads(closed["outcomePrices"])[winner] == "1"


def test_clock_advances_and_future_markets_are_invisible() -> None:
    clock = [NOW]
    w = SimulatedWorld(seed=7, days=5, clock=lambda: clock[0])
    before = {m["id"] for m in w.gamma_markets()}
    assert all(_dt(m["startDate"]) <= NOW for m in w.gamma_markets())
    clock[0] = NOW + timedelta(hours=2, seconds=30)
    assert w.now() == NOW + timedelta(hours=2)
    after = w.gamma_markets()
    assert before < {m["id"] for m in after}
    with pytest.raises(UnknownTokenError):
        # a market listed after the first snapshot was not yet known then
        SimulatedWorld(seed=7, days=5, now=NOW).book(_tokens(after[-1])[0])


def test_gamma_markets_is_cached_per_minute(world: SimulatedWorld) -> None:
    world.gamma_markets()
    started = time.perf_counter()
    for _ in range(10):
        world.gamma_markets()
    assert (time.perf_counter() - started) / 10 < 0.05


def test_scales_to_thousands_of_open_markets() -> None:
    w = SimulatedWorld(seed=7, days=1, now=NOW, strikes_per_ladder=400)
    open_markets = [m for m in w.gamma_markets() if not m["closed"]]
    assert len(open_markets) >= 1000
    assert len({m["id"] for m in open_markets}) == len(open_markets)


def test_updown_lead_lists_up_down_markets_that_much_ahead(
    markets: list[dict[str, Any]],
) -> None:
    def open_updown(ms: list[dict[str, Any]]) -> dict[str, int]:
        counts = {"15m": 0, "1h": 0}
        for m in ms:
            if not m["closed"] and _family(m) in counts:
                counts[_family(m)] += 1
        return counts

    short = SimulatedWorld(seed=7, days=5, now=NOW, updown_lead=timedelta(hours=1))
    # Default (24 h ahead): the current window plus ~96 / ~24 listed ones; 1 h ahead: ~5 / ~2.
    assert open_updown(markets) == {"15m": 97, "1h": 25}
    assert open_updown(short.gamma_markets()) == {"15m": 5, "1h": 2}
    for m in short.gamma_markets():
        if _family(m) in ("15m", "1h") and _dt(m["startDate"]) > short.start:
            assert _window_start(m) - _dt(m["startDate"]) <= timedelta(hours=1)
    with pytest.raises(ValueError, match="updown_lead"):
        SimulatedWorld(seed=7, now=NOW, updown_lead=timedelta(0))


# --- prices --------------------------------------------------------------------------


def test_price_history_stops_at_now_and_at_close(
    world: SimulatedWorld, markets: list[dict[str, Any]]
) -> None:
    now_s = _ms(world.now()) // 1000
    open_ = next(m for m in markets if _family(m) == "above" and not m["closed"])
    yes, no = (world.price_history(t, 0, now_s + 10_000, 1) for t in _tokens(open_))
    assert yes and yes[-1]["t"] <= now_s and yes[0]["t"] >= _ms(_dt(open_["startDate"])) // 1000
    assert [p["t"] for p in yes] == [p["t"] for p in no]
    assert all(math.isclose(a["p"] + b["p"], 1.0) for a, b in zip(yes, no, strict=True))
    gaps = {b["t"] - a["t"] for a, b in pairwise(yes)}
    assert gaps <= set(range(55, 66)) and len(gaps) > 1  # irregular like the real API
    coarse = world.price_history(_tokens(open_)[0], 0, now_s, 60)
    assert all(3590 <= b["t"] - a["t"] <= 3610 for a, b in pairwise(coarse))
    closed = next(m for m in markets if _family(m) == "15m" and m["closed"])
    closed_s = _ms(_dt(closed["closedTime"].replace(" ", "T").replace("+00", ""))) // 1000
    history = world.price_history(_tokens(closed)[0], 0, now_s, 1)
    assert history[-1]["t"] <= closed_s and history[-1]["p"] in (0.005, 0.995)
    assert world.price_history(_tokens(closed)[0], now_s - 3600, now_s, 1) == []
    with pytest.raises(UnknownTokenError):
        world.price_history("123", 0, now_s, 1)


def _live_spreads(w: SimulatedWorld) -> dict[str, list[float]]:
    """best ask − best bid of every open two-sided market, by family."""
    out: dict[str, list[float]] = {}
    for m in w.gamma_markets():
        if not m["closed"] and m.get("bestBid") is not None:
            out.setdefault(_family(m), []).append(round(m["bestAsk"] - m["bestBid"], 4))
    return out


def test_live_books_are_as_wide_as_recorded_ones() -> None:
    # Recorded hourly up/down books: mean 2.7¢, 71 % wider than 2¢ (docs: costs).
    updown, near, far = [], [], []
    for hour in range(0, 24, 6):
        w = SimulatedWorld(seed=7, days=5, now=NOW + timedelta(hours=hour))
        spreads = _live_spreads(w)
        updown += spreads["15m"] + spreads["1h"]
        for m in w.gamma_markets():
            if not m["closed"] and m.get("bestBid") is not None:
                mid = (m["bestBid"] + m["bestAsk"]) / 2
                (near if abs(mid - 0.5) < 0.1 else far).append(m["bestAsk"] - m["bestBid"])
    assert 0.02 <= sum(updown) / len(updown) <= 0.03
    assert sum(s > 0.0201 for s in updown) / len(updown) >= 0.6
    assert {round(s, 2) for s in updown} <= {0.01, 0.02, 0.03, 0.04, 0.05}
    # Wider near 0.5 than towards the bounds.
    assert sum(near) / len(near) > sum(far) / len(far) + 0.005
    # Deterministic per seed, and another seed draws other books.
    assert _live_spreads(SimulatedWorld(seed=7, days=5, now=NOW)) == _live_spreads(
        SimulatedWorld(seed=7, days=5, now=NOW)
    )
    assert _live_spreads(SimulatedWorld(seed=8, days=5, now=NOW)) != _live_spreads(
        SimulatedWorld(seed=7, days=5, now=NOW)
    )


def test_sparse_history_is_hourly_for_barrier_markets_only() -> None:
    step = timedelta(hours=1)
    sparse = SimulatedWorld(seed=7, days=5, now=NOW, sparse_history_step=step)
    now_s = _ms(sparse.now()) // 1000
    by_family: dict[str, dict[str, Any]] = {}
    for m in sparse.gamma_markets():
        if not m["closed"]:
            by_family.setdefault(_family(m), m)
    for family, m in by_family.items():
        points = sparse.price_history(_tokens(m)[0], now_s - 6 * 3600, now_s, 1)
        gaps = {b["t"] - a["t"] for a, b in pairwise(points)}
        if family in ("reach", "dip"):
            assert points and gaps <= set(range(3596, 3605))
            assert all(p["t"] % 3600 < 5 for p in points)
        else:
            assert gaps <= set(range(55, 66))
    # Part of the world's parameters (so of its identity); worlds without it keep theirs.
    assert sparse.parameters()["sparse_history_step_s"] == 3600
    assert "sparse_history_step_s" not in SimulatedWorld(seed=7, days=5, now=NOW).parameters()
    again = SimulatedWorld.from_parameters(sparse.parameters(), now=NOW)
    assert (
        again.identity() == sparse.identity() != SimulatedWorld(seed=7, days=5, now=NOW).identity()
    )
    with pytest.raises(ValueError, match="sparse_history_step"):
        SimulatedWorld(seed=7, days=5, now=NOW, sparse_history_step=timedelta(seconds=90))


def _longshots(w: SimulatedWorld) -> list[float]:
    return [
        float(json.loads(m["outcomePrices"])[0])
        for m in w.gamma_markets()
        if not m["closed"] and _family(m) in ("above", "reach", "dip")
    ]


def test_bias_overprices_longshots_and_underprices_favourites(world: SimulatedWorld) -> None:
    efficient = _longshots(world)
    biased = _longshots(SimulatedWorld(seed=7, days=5, now=NOW, bias=0.5))
    assert len(efficient) == len(biased)
    pairs = [(a, b) for a, b in zip(efficient, biased, strict=True) if 0.05 < a < 0.95]
    assert pairs
    for fair, distorted in pairs:
        assert (distorted >= fair) if fair < 0.5 else (distorted <= fair)
    assert sum(abs(b - 0.5) for _, b in pairs) < sum(abs(a - 0.5) for a, _ in pairs)


def _open_quotes(w: SimulatedWorld, per_market: int = 40) -> dict[str, np.ndarray]:
    """``_quotes`` of the markets open at ``now()`` over their last ``per_market`` minutes
    (at most one market in 3, so a few thousand (market, minute) pairs)."""
    open_ = [w._by_id[m["id"]] for m in w.gamma_markets() if not m["closed"]][::3]
    now_min = int((w.now() - w.start).total_seconds() // 60)
    minutes = np.array(
        [
            np.maximum(np.arange(now_min - per_market + 1, now_min + 1), mk.listed_min)
            for mk in open_
        ]
    )
    return w._quotes(open_, minutes)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def test_noise_0_quotes_the_fair_value_rounded_to_the_tick(world: SimulatedWorld) -> None:
    assert world.noise == 0.0  # the default: an efficient world
    q = _open_quotes(world)
    assert q["mid"].size >= 500
    spread = (q["ask"] - q["bid"]) / 100
    off = np.abs(q["mid"] - q["fair"])
    assert (off <= spread / 2 + 0.005).all()
    assert off.max() <= 0.005 + 1e-9  # half a tick: the bid is the fair price, rounded


def test_noise_moves_mids_away_from_the_fair_value_persistently() -> None:
    q = _open_quotes(SimulatedWorld(seed=7, days=5, now=NOW, noise=NOISE_LOGIT), per_market=60)
    fair, mid = q["fair"], q["mid"]
    inner = (fair > 0.1) & (fair < 0.9)  # where a tick is small in logit space
    assert inner.sum() > 1000
    dev = np.where(inner, _logit(mid) - _logit(np.clip(fair, 0.01, 0.99)), np.nan)
    assert np.nanmean(np.abs(dev)) > 0.06  # noise sd 0.12 (a tick near 0.5 is 0.02)
    # Persistent: consecutive minutes of a market share most of their noise (15-minute part).
    a, b = dev[:, :-1].ravel(), dev[:, 1:].ravel()
    both = ~np.isnan(a) & ~np.isnan(b)
    assert np.corrcoef(a[both], b[both])[0, 1] > 0.3
    # Without noise the same quotes sit on the fair value.
    q0 = _open_quotes(SimulatedWorld(seed=7, days=5, now=NOW), per_market=60)
    dev0 = _logit(q0["mid"][inner]) - _logit(np.clip(q0["fair"][inner], 0.01, 0.99))
    assert np.abs(dev0).mean() < 0.5 * np.nanmean(np.abs(dev))


def test_noise_is_a_parameter_of_the_world() -> None:
    noisy = SimulatedWorld(seed=7, days=5, now=NOW, noise=NOISE_LOGIT)
    assert noisy.parameters()["noise"] == NOISE_LOGIT
    plain = SimulatedWorld(seed=7, days=5, now=NOW)
    assert plain.parameters()["noise"] == 0.0  # always written
    again = SimulatedWorld.from_parameters(noisy.parameters(), now=NOW)
    assert again.noise == NOISE_LOGIT and again.identity() == noisy.identity()
    assert noisy.identity() != plain.identity()
    assert _fingerprint(again) == _fingerprint(noisy) != _fingerprint(plain)
    # A record written before noise was a knob reads as noise 0.
    old = {k: v for k, v in plain.parameters().items() if k != "noise"}
    assert SimulatedWorld.from_parameters(old, now=NOW).noise == 0.0
    # bias and noise are independent knobs
    both = SimulatedWorld(seed=7, days=5, now=NOW, bias=0.5, noise=NOISE_LOGIT)
    assert both.parameters()["bias"] == 0.5 and both.parameters()["noise"] == NOISE_LOGIT
    SimulatedWorld(seed=7, days=1, now=NOW, noise=MAX_NOISE)


@pytest.mark.parametrize("noise", [-0.01, MAX_NOISE + 0.01, math.nan, math.inf, "0.1", None, True])
def test_invalid_noise_is_refused(noise: Any) -> None:
    with pytest.raises(ValueError, match="noise must be a finite number in"):
        SimulatedWorld(seed=7, days=1, now=NOW, noise=noise)


def test_book_shape(world: SimulatedWorld, markets: list[dict[str, Any]]) -> None:
    m = next(m for m in markets if _family(m) == "1h" and not m["closed"])
    yes, no = (world.book(t) for t in _tokens(m))
    for book in (yes, no):
        assert book["market"] == m["conditionId"] and book["tick_size"] == "0.01"
        assert book["timestamp"] == str(_ms(world.now()))
        assert re.fullmatch(r"[0-9a-f]{40}", book["hash"])
        bids = [float(level["price"]) for level in book["bids"]]
        asks = [float(level["price"]) for level in book["asks"]]
        assert bids == sorted(bids) and asks == sorted(asks, reverse=True)
        assert len(bids) > 1 and len(asks) > 1 and bids[-1] < asks[-1]
        assert all(isinstance(v, str) for lvl in book["bids"] + book["asks"] for v in lvl.values())
    assert float(yes["bids"][-1]["price"]) == m.get("bestBid")
    assert float(yes["asks"][-1]["price"]) == m["bestAsk"]
    assert math.isclose(float(no["asks"][-1]["price"]), 1 - m["bestBid"])
    closed = next(m for m in markets if m["closed"])
    with pytest.raises(UnknownTokenError):
        world.book(_tokens(closed)[0])


# --- Binance -------------------------------------------------------------------------


def test_klines_shape_and_aggregation(world: SimulatedWorld) -> None:
    now_ms = _ms(world.now())
    fifteen = world.klines("15m", None, None, 20)
    assert len(fifteen) == 20 and fifteen[-1][0] <= now_ms < fifteen[-1][0] + 900_000
    for row in fifteen[:-1]:
        assert len(row) == 12 and row[6] == row[0] + 899_999 and row[11] == "0"
        assert isinstance(row[0], int) and isinstance(row[8], int)
        assert all(isinstance(v, str) for v in row[1:6] + row[7:8] + row[9:12])
        ones = world.klines("1m", row[0], row[0] + 14 * 60_000, 100)
        assert len(ones) == 15
        assert row[1] == ones[0][1] and row[4] == ones[-1][4]
        assert float(row[2]) == max(float(c[2]) for c in ones)
        assert float(row[3]) == min(float(c[3]) for c in ones)
        assert math.isclose(float(row[5]), sum(float(c[5]) for c in ones), abs_tol=1e-6)
        assert row[8] == sum(c[8] for c in ones)
    for interval in ("1m", "3m", "5m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"):
        rows = world.klines(interval, None, None, 5)
        assert rows and rows[-1][0] <= now_ms
        steps = {b[0] - a[0] for a, b in pairwise(rows)}
        assert steps <= {rows[0][6] - rows[0][0] + 1}
    assert world.klines("1m", now_ms + 60_000, None, 10) == []
    assert world.klines("1m", now_ms - 120_000, None, 10)[-1][0] == now_ms
    with pytest.raises(ValueError, match="interval"):
        world.klines("1w", None, None, 10)


def test_ticker_is_consistent(world: SimulatedWorld) -> None:
    t = world.ticker_24h()
    assert t["symbol"] == "BTCUSDT" and t["closeTime"] - t["openTime"] == 86_400_000
    assert t["closeTime"] == _ms(world.now())
    last, open_ = float(t["lastPrice"]), float(t["openPrice"])
    assert math.isclose(float(t["priceChange"]), last - open_, abs_tol=0.005)
    assert t["count"] == t["lastId"] - t["firstId"] + 1
    assert float(t["lowPrice"]) <= last <= float(t["highPrice"])
    assert math.isclose(
        float(t["weightedAvgPrice"]), float(t["quoteVolume"]) / float(t["volume"]), rel_tol=1e-6
    )
    assert last == float(world.klines("1m", None, None, 1)[0][4])
    assert all(isinstance(t[k], str) for k in ("lastPrice", "volume", "bidPrice", "askPrice"))


def test_btc_close_at_refuses_the_future(world: SimulatedWorld) -> None:
    minute = world.now() - timedelta(minutes=1)
    (row,) = world.klines("1m", _ms(minute), _ms(minute), 1)
    assert world.btc_close_at(minute + timedelta(seconds=20)) == float(row[4])
    with pytest.raises(ValueError):
        world.btc_close_at(world.now())


def test_some_markets_take_the_rarer_real_shapes(world: SimulatedWorld, markets) -> None:
    """TWAP-settled 15m windows, rules-only strikes and neg-risk ladders (docs/apis.md §3.8)."""
    fifteen = [m for m in markets if _family(m) == "15m"]
    twap = [m for m in fifteen if "cryptoMarketConfig" in m]
    assert 0.15 < len(twap) / len(fifteen) < 0.35
    for m in twap:
        assert m["cryptoMarketConfig"]["twapEnabled"] is True
        assert m["resolutionSource"].endswith("btc-usd-twap-60s-streams")
    above = [m for m in markets if _family(m) == "above"]
    rules_only = {m["events"][0]["id"] for m in above if "groupItemTitle" not in m}
    neg_risk = {m["events"][0]["id"] for m in above if m["negRisk"]}
    assert rules_only and neg_risk and len(neg_risk) < len({m["events"][0]["id"] for m in above})
    for event in world.gamma_events():
        ids = {m.get("negRiskMarketID") for m in event["markets"]}
        assert event["negRisk"] is (ids != {None}) and len(ids) == 1
