"""The recorded world: loading, derived state, resampling, and rejection of bad data."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.replay.recorded import RecordedDataError, RecordedWorld
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.replay.world import UnknownTokenError

pytestmark = pytest.mark.unit

T0 = 1_773_230_400  # 2026-03-11 12:00:00 UTC
YES, NO, OTHER = "1" * 70, "2" * 70, "3" * 70


def _market(market_id: str, tokens: list[str], **extra: Any) -> dict[str, Any]:
    body = {
        "id": market_id,
        "question": f"Question {market_id}?",
        "conditionId": "0x" + market_id.rjust(64, "0"),
        "slug": f"market-{market_id}",
        "startDate": "2026-03-11T11:00:00Z",
        "endDate": "2026-03-11T13:00:00Z",
        "outcomes": json.dumps(["Yes", "No"][: len(tokens)]),
        "outcomePrices": json.dumps(["0.5", "0.5"][: len(tokens)]),
        "clobTokenIds": json.dumps(tokens),
        "active": True,
        "closed": False,
        "acceptingOrders": True,
        "orderPriceMinTickSize": 0.01,
    }
    return body | extra


def _write_dir(root: Path) -> Path:
    rows = ["open_time_ms,open,high,low,close,volume"]
    price = 80_000.0
    for i in range(120):  # 12:00 .. 13:59, 1m
        o, c = price, price + (7 if i % 3 else -5)
        rows.append(f"{(T0 + 60 * i) * 1000},{o},{max(o, c) + 2},{min(o, c) - 2},{c},{1.5 + i % 4}")
        price = c
    (root / "klines.csv").write_text("\n".join(rows) + "\n")
    closed = _market(
        "100",
        [YES, NO],
        closed=True,
        acceptingOrders=False,
        outcomePrices='["1", "0"]',
        closedTime="2026-03-11 13:05:00+00",
        umaResolutionStatus="resolved",
        events=[{"id": "900", "slug": "event-900", "title": "Event 900", "tags": [{"id": "235"}]}],
    )
    open_ = _market("200", [OTHER, "4" * 70], endDate="2026-03-12T13:00:00Z")
    (root / "markets.jsonl").write_text(json.dumps(closed) + "\n\n" + json.dumps(open_) + "\n")
    prices = root / "prices"
    prices.mkdir()
    yes = ["t,p"] + [f"{T0 + 60 * i + 3},{min(0.5 + i / 100, 1)}" for i in range(70)]
    (prices / f"{YES}.csv").write_text("\n".join(yes) + "\n")
    other = ["t,p"] + [f"{T0 + 600 * i},{0.3 + i / 100}" for i in range(12)]
    (prices / f"{OTHER}.csv").write_text("\n".join(other) + "\n")
    return root


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return _write_dir(tmp_path)


def _ms(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1)).total_seconds() * 1000)


def test_loads_and_defaults_now_to_newest_data(data_dir: Path) -> None:
    world = RecordedWorld(data_dir)
    assert world.base_interval_ms == 60_000
    # newest: the 13:59 candle; price points end at 13:09:03 → 13:59 wins
    assert world.now() == datetime(2026, 3, 11, 13, 59)
    markets = {m["id"]: m for m in world.gamma_markets()}
    assert set(markets) == {"100", "200"}
    assert markets["100"]["closed"] is True and markets["100"]["events"][0]["id"] == "900"
    synthetic = markets["200"]["events"][0]
    assert synthetic["id"] == "200" and synthetic["title"] == "Question 200?"
    assert json.loads(markets["200"]["outcomePrices"]) == ["0.41", "0.59"]
    assert markets["200"]["bestBid"] == 0.41 and markets["200"]["bestAsk"] == 0.42
    events = {e["id"]: e for e in world.gamma_events()}
    assert [m["id"] for m in events["900"]["markets"]] == ["100"]
    assert all("events" not in m for e in events.values() for m in e["markets"])
    assert world.resolution_of("100") == "Yes" and world.resolution_of("200") is None


def test_before_close_a_recorded_resolution_is_replayed_as_open(data_dir: Path) -> None:
    world = RecordedWorld(data_dir, now=datetime(2026, 3, 11, 12, 30))
    (market,) = [m for m in world.gamma_markets() if m["id"] == "100"]
    assert market["closed"] is False and market["acceptingOrders"] is True
    assert "closedTime" not in market and "umaResolutionStatus" not in market
    # last point at or before 12:30:00 is 12:29:03 → p = 0.79; NO side = 1 - p
    assert json.loads(market["outcomePrices"]) == ["0.79", "0.21"]
    (event,) = [e for e in world.gamma_events() if e["id"] == "900"]
    assert event["closed"] is False and market["events"][0]["closed"] is False
    book = world.book(YES)
    assert book["bids"][-1]["price"] == "0.79" and book["asks"][-1]["price"] == "0.8"
    assert [lvl["size"] for lvl in book["bids"]] == ["500", "400", "300", "200", "100"]
    clob = world.clob_market(market["conditionId"])
    assert clob["closed"] is False and not any(t["winner"] for t in clob["tokens"])
    later = RecordedWorld(data_dir, now=datetime(2026, 3, 11, 13, 10))
    with pytest.raises(UnknownTokenError):
        later.book(YES)
    clob = later.clob_market(market["conditionId"])
    assert [t["winner"] for t in clob["tokens"]] == [True, False]


def test_price_history_respects_now_and_fidelity(data_dir: Path) -> None:
    world = RecordedWorld(data_dir, now=datetime(2026, 3, 11, 12, 30))
    history = world.price_history(YES, 0, 2_000_000_000, 1)
    assert len(history) == 30 and history[-1]["t"] <= T0 + 1800
    assert history[0] == {"t": T0 + 3, "p": 0.5}
    thinned = world.price_history(YES, 0, 2_000_000_000, 10)
    assert [p["t"] for p in thinned] == [T0 + 3, T0 + 603, T0 + 1203]
    assert world.price_history("4" * 70, 0, 2_000_000_000, 1) == []
    with pytest.raises(UnknownTokenError):
        world.price_history("999", 0, 2_000_000_000, 1)


def test_klines_resample_up_and_refuse_finer(data_dir: Path) -> None:
    world = RecordedWorld(data_dir)
    ones = world.klines("1m", T0 * 1000, None, 1000)
    assert len(ones) == 120 and ones[0][6] == ones[0][0] + 59_999
    quarter = world.klines("15m", T0 * 1000, None, 3)
    assert len(quarter) == 3 and quarter[1][0] == (T0 + 900) * 1000
    parts = ones[15:30]
    assert quarter[1][1] == parts[0][1] and quarter[1][4] == parts[-1][4]
    assert float(quarter[1][2]) == max(float(c[2]) for c in parts)
    assert float(quarter[1][3]) == min(float(c[3]) for c in parts)
    assert math.isclose(float(quarter[1][5]), sum(float(c[5]) for c in parts))
    hours = world.klines("1h", None, None, 10)
    assert [h[0] for h in hours] == [T0 * 1000, (T0 + 3600) * 1000]
    assert world.klines("5m", None, (T0 + 900) * 1000, 2)[-1][0] == (T0 + 900) * 1000
    coarse_dir = data_dir.parent / "coarse"
    coarse_dir.mkdir()
    (coarse_dir / "klines.csv").write_text(
        "open_time_ms,open,high,low,close,volume\n"
        + "".join(f"{(T0 + 300 * i) * 1000},1,2,1,2,1\n" for i in range(4))
    )
    (coarse_dir / "markets.jsonl").write_text("")
    coarse = RecordedWorld(coarse_dir)
    assert coarse.base_interval_ms == 300_000
    with pytest.raises(ValueError, match="1m cannot be served"):
        coarse.klines("1m", None, None, 10)
    with pytest.raises(ValueError, match="3m cannot be served"):
        coarse.klines("3m", None, None, 10)


def test_ticker_from_candles(data_dir: Path) -> None:
    world = RecordedWorld(data_dir)
    ticker = world.ticker_24h()
    assert ticker["closeTime"] == _ms(world.now())
    assert ticker["closeTime"] - ticker["openTime"] == 86_400_000
    assert float(ticker["openPrice"]) == 80_000.0
    last = float(world.klines("1m", None, None, 1)[0][4])
    assert float(ticker["lastPrice"]) == last
    assert math.isclose(float(ticker["priceChange"]), last - 80_000.0, abs_tol=0.005)
    assert ticker["count"] == ticker["lastId"] - ticker["firstId"] + 1 == 120


def test_round_trip_of_a_simulated_world(tmp_path: Path) -> None:
    now = datetime(2026, 3, 11, 15, 7)
    sim = SimulatedWorld(seed=3, days=1, now=now)
    start = _ms(sim.start)
    rows, cursor = [], start
    while batch := sim.klines("1m", cursor, _ms(now) - 60_000, 1000):
        rows += batch
        cursor = batch[-1][0] + 60_000
    (tmp_path / "klines.csv").write_text(
        "open_time_ms,open,high,low,close,volume\n"
        + "".join(",".join(map(str, r[:6])) + "\n" for r in rows)
    )
    everything = sim.gamma_markets()
    markets = [m for m in everything if m["closed"]][-20:] + everything[-20:]
    (tmp_path / "markets.jsonl").write_text("".join(json.dumps(m) + "\n" for m in markets))
    (tmp_path / "prices").mkdir()
    for market in markets:
        for token in json.loads(market["clobTokenIds"]):
            points = sim.price_history(token, 0, _ms(now) // 1000, 1)
            (tmp_path / "prices" / f"{token}.csv").write_text(
                "t,p\n" + "".join(f"{p['t']},{p['p']}\n" for p in points)
            )
    rec = RecordedWorld(tmp_path, now=now - timedelta(minutes=1))
    end = _ms(now) - 3_600_000
    assert [r[:6] for r in rec.klines("15m", None, end, 8)] == [
        r[:6] for r in sim.klines("15m", None, end, 8)
    ]
    recorded = {m["id"]: m for m in rec.gamma_markets()}
    closed = [m for m in markets if m["closed"]]
    assert len(closed) == 20
    for market in closed:
        assert recorded[market["id"]] == market
        assert rec.resolution_of(market["id"]) == sim.resolution_of(market["id"])
    for market in markets:
        if not market["closed"]:
            assert recorded[market["id"]]["closed"] is False
            token = json.loads(market["clobTokenIds"])[0]
            assert rec.book(token)["asks"]


# --- rejection of broken data ----------------------------------------------------------


def _replace(path: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        target = root / path
        target.write_text(target.read_text().replace(old, new, 1))

    return edit


def _append(path: str, text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        with (root / path).open("a") as handle:
            handle.write(text)

    return edit


def _remove(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path).unlink()


def _kline_line(i: int) -> str:
    return f"{(T0 + 60 * i) * 1000},1,2,1,2,1\n"


BROKEN = {
    "missing klines": (_remove("klines.csv"), "klines.csv: missing"),
    "missing markets": (_remove("markets.jsonl"), "markets.jsonl: missing"),
    "klines header": (_replace("klines.csv", "open_time_ms", "time"), "klines.csv:1: header"),
    "klines text": (_replace("klines.csv", ",1.5\n", ",abc\n"), "klines.csv:2: volume"),
    "klines unsorted": (_append("klines.csv", _kline_line(5)), "klines.csv:122: unsorted"),
    "klines duplicate": (_append("klines.csv", _kline_line(119)), "klines.csv:122: duplicate"),
    "klines bounds": (_replace("klines.csv", ",80002.0,", ",79000.0,"), "klines.csv:2: high/low"),
    "prices header": (_replace(f"prices/{YES}.csv", "t,p", "time,price"), f"{YES}.csv:1: header"),
    "prices text": (_replace(f"prices/{YES}.csv", ",0.5\n", ",x\n"), f"{YES}.csv:2: p must be"),
    "prices range": (_replace(f"prices/{YES}.csv", ",0.5\n", ",1.5\n"), f"{YES}.csv:2: p must be"),
    "prices unsorted": (_append(f"prices/{YES}.csv", f"{T0},0.5\n"), f"{YES}.csv:72: unsorted"),
    "prices orphan": (
        lambda root: (root / "prices" / "555.csv").write_text("t,p\n"),
        "555.csv: token 555 is in no market",
    ),
    "market not object": (_append("markets.jsonl", "[1, 2]\n"), "markets.jsonl:4: not a JSON"),
    "market bad json": (_append("markets.jsonl", "{oops\n"), "markets.jsonl:4: invalid JSON"),
    "market no id": (
        _append("markets.jsonl", '{"clobTokenIds": "[\\"5\\"]"}\n'),
        ":4: market has no id",
    ),
    "market no tokens": (
        _append("markets.jsonl", '{"id": "7"}\n'),
        "markets.jsonl:4: clobTokenIds",
    ),
    "market duplicate": (
        _append("markets.jsonl", json.dumps(_market("200", ["8"])) + "\n"),
        "markets.jsonl:4: duplicate market id 200",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_rejects_broken_data_naming_file_and_line(data_dir: Path, case: str) -> None:
    edit, message = BROKEN[case]
    edit(data_dir)
    with pytest.raises(RecordedDataError) as error:
        RecordedWorld(data_dir)
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)
