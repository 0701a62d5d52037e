"""Klines with outages: both worlds answer ``startTime`` like Binance (docs/apis.md §3.8),
with the first ``limit`` candles opening at or after it however long the gap, and the
client pages through them; a recorded directory of coarser candles is refused up front."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.replay.recorded import RecordedDataError, RecordedWorld
from btc_tracker_pipeline.replay.server import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.sources.binance import BinanceClient

NOW = datetime(2026, 3, 11, 15, 7)
DAY0 = datetime(2026, 3, 6)  # the path start of a 5-day world at NOW
# A 35-minute outage across 15-minute buckets, and one of 26 hours (longer than a page).
GAPS = [
    (datetime(2026, 3, 7, 10, 5), datetime(2026, 3, 7, 10, 40)),
    (datetime(2026, 3, 8, 20, 0), datetime(2026, 3, 9, 22, 0)),
]
T0 = 1_773_230_400  # 2026-03-11 12:00:00 UTC


def _ms(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1)).total_seconds() * 1000)


def _in_gap(open_ms: int) -> bool:
    return any(_ms(a) <= open_ms < _ms(b) for a, b in GAPS)


def _every_candle(world: SimulatedWorld) -> list[list[Any]]:
    """All 1m candles of a world without outages, paged by open time."""
    rows: list[list[Any]] = []
    cursor = 0
    while batch := world.klines("1m", cursor, None, 1000):
        rows += batch
        cursor = batch[-1][0] + 60_000
    return rows


def _binance(rows: list[list[Any]], start: int | None, end: int | None, limit: int) -> list:
    """What Binance answers from ``rows``: open times in [start, end], the first
    ``limit`` (the newest ``limit`` without a start)."""
    kept = [r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] <= end)]
    return kept[-limit:] if start is None else kept[:limit]


@pytest.fixture(scope="module")
def worlds() -> tuple[SimulatedWorld, SimulatedWorld]:
    return SimulatedWorld(seed=7, days=5, now=NOW), SimulatedWorld(
        seed=7, days=5, now=NOW, kline_gaps=GAPS
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("start", "end", "limit"),
    [
        (DAY0 - timedelta(days=1), None, 1000),  # a lookback from before the first candle
        (datetime(2026, 3, 7, 10, 0), None, 1000),  # a page with an outage inside
        (datetime(2026, 3, 7, 10, 10), None, 20),  # a page starting in an outage
        (datetime(2026, 3, 8, 21, 0), None, 1000),  # in the outage longer than a page
        (datetime(2026, 3, 8, 19, 0), datetime(2026, 3, 9, 23, 0), 1000),
        (datetime(2026, 3, 8, 20, 30), datetime(2026, 3, 9, 21, 0), 1000),  # none: empty
        (None, datetime(2026, 3, 9, 21, 0), 50),  # the newest 50 before an outage's end
    ],
)
def test_simulated_1m_klines_skip_outages_like_binance(worlds, start, end, limit) -> None:
    plain, gappy = worlds
    served = [r for r in _every_candle(plain) if not _in_gap(r[0])]
    start_ms = None if start is None else _ms(start)
    end_ms = None if end is None else _ms(end)
    got = gappy.klines("1m", start_ms, end_ms, limit)
    assert got == _binance(served, start_ms, end_ms, limit)
    assert not any(_in_gap(r[0]) for r in got)


@pytest.mark.unit
def test_simulated_coarse_klines_aggregate_what_the_outage_left(worlds) -> None:
    plain, gappy = worlds
    start = _ms(datetime(2026, 3, 7, 9, 45))
    quarters = gappy.klines("15m", start, None, 4)
    opens = [datetime(1970, 1, 1) + timedelta(milliseconds=r[0]) for r in quarters]
    assert [t.strftime("%H:%M") for t in opens] == ["09:45", "10:00", "10:30", "10:45"]
    # 10:00 holds 10:00–10:04 only, 10:30 only 10:40–10:44; 10:15 (all out) is no candle.
    ones = gappy.klines("1m", _ms(datetime(2026, 3, 7, 10, 0)), None, 10)
    assert _opens(ones) == [f"10:0{i}" for i in range(5)] + [f"10:4{i}" for i in range(5)]
    assert quarters[1][1] == ones[0][1] and quarters[1][4] == ones[4][4]
    assert quarters[2][1] == ones[5][1] and quarters[2][4] == ones[9][4]
    assert quarters[0] == plain.klines("15m", start, None, 1)[0]
    assert gappy.klines("1d", None, None, 10) != plain.klines("1d", None, None, 10)


@pytest.mark.unit
def test_outages_are_part_of_the_world_and_only_of_its_klines(worlds) -> None:
    plain, gappy = worlds
    assert "kline_gaps" not in plain.parameters()  # worlds without outages keep their id
    assert gappy.identity() != plain.identity()
    again = SimulatedWorld.from_parameters(gappy.parameters(), now=NOW)
    assert again.identity() == gappy.identity()
    start = _ms(datetime(2026, 3, 8, 19, 0))
    assert again.klines("1m", start, None, 1000) == gappy.klines("1m", start, None, 1000)
    assert gappy.ticker_24h() == plain.ticker_24h()
    assert gappy.gamma_markets() == plain.gamma_markets()
    with pytest.raises(ValueError, match="must end after it starts"):
        SimulatedWorld(seed=7, days=1, now=NOW, kline_gaps=[(NOW, NOW)])


@pytest.mark.integration
def test_client_pages_a_day_of_simulated_outages(worlds) -> None:
    plain, gappy = worlds
    start, end = DAY0 - timedelta(days=1), datetime(2026, 3, 10)
    with ReplayServer(gappy) as server:
        client = BinanceClient(server.url + "/binance", enable_rate_limit=False)
        got = client.klines(start, end)
    served = [r for r in _every_candle(plain) if not _in_gap(r[0]) and r[0] < _ms(end)]
    assert [_ms(k.open_time) for k in got] == [r[0] for r in served]


# --- recorded ------------------------------------------------------------------------


def _write_recorded(root: Path, minutes: list[int], step_s: int = 60) -> Path:
    """A recorded directory: candles at T0 + ``minutes`` × ``step_s``, no markets."""
    root.mkdir(parents=True, exist_ok=True)
    rows = ["open_time_ms,open,high,low,close,volume"]
    for i in minutes:
        price = 80_000 + i
        rows.append(f"{(T0 + step_s * i) * 1000},{price},{price + 3},{price - 3},{price + 1},1.5")
    (root / "klines.csv").write_text("\n".join(rows) + "\n")
    (root / "markets.jsonl").write_text("")
    return root


@pytest.fixture()
def recorded(tmp_path: Path) -> RecordedWorld:
    """12:00–13:59 in 1m candles with an outage 12:30–12:59."""
    return RecordedWorld(_write_recorded(tmp_path, [*range(30), *range(60, 120)]))


def _opens(rows: list[list[Any]]) -> list[str]:
    return [(datetime(1970, 1, 1) + timedelta(milliseconds=r[0])).strftime("%H:%M") for r in rows]


@pytest.mark.unit
def test_recorded_klines_answer_the_first_candles_at_or_after_start(recorded) -> None:
    assert _opens(recorded.klines("1m", (T0 + 1800) * 1000, None, 3)) == ["13:00", "13:01", "13:02"]
    assert _opens(recorded.klines("1m", (T0 - 86_400) * 1000, None, 2)) == ["12:00", "12:01"]
    assert _opens(recorded.klines("1m", (T0 + 1500) * 1000, None, 7)) == [
        "12:25", "12:26", "12:27", "12:28", "12:29", "13:00", "13:01"
    ]  # fmt: skip
    quarters = recorded.klines("15m", T0 * 1000, None, 4)
    assert _opens(quarters) == ["12:00", "12:15", "13:00", "13:15"]
    assert _opens(recorded.klines("1h", T0 * 1000, None, 5)) == ["12:00", "13:00"]
    assert recorded.klines("1m", (T0 + 1800) * 1000, (T0 + 3540) * 1000, 10) == []


@pytest.mark.unit
def test_recorded_newest_klines_end_before_an_outage(recorded) -> None:
    end = (T0 + 2700) * 1000  # 12:45, in the outage
    assert _opens(recorded.klines("1m", None, end, 3)) == ["12:27", "12:28", "12:29"]
    assert _opens(recorded.klines("15m", None, end, 5)) == ["12:00", "12:15"]
    assert _opens(recorded.klines("1m", None, None, 2)) == ["13:58", "13:59"]


@pytest.mark.integration
def test_client_gets_every_recorded_candle_of_a_lookback_from_before_them(recorded) -> None:
    start = datetime(2026, 3, 10, 12, 0)  # a day before the first candle
    with ReplayServer(recorded) as server:
        client = BinanceClient(server.url + "/binance", enable_rate_limit=False)
        got = client.klines(start, datetime(2026, 3, 11, 14, 0))
    assert len(got) == 90 and _opens([[_ms(k.open_time)] for k in got])[29:31] == ["12:29", "13:00"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("step_s", "words"),
    [
        (900, "holds 15-minute candles (900 s apart)"),
        (3600, "holds 1-hour candles (3600 s apart)"),
    ],
)
def test_coarse_recorded_candles_are_refused_for_the_pipeline(tmp_path, step_s, words) -> None:
    # Hours with a missing one, and an odd pair: the common spacing names the interval.
    world = RecordedWorld(_write_recorded(tmp_path, [0, 1, 2, 4, 5, 6, 7], step_s))
    assert world.kline_spacing_ms == step_s * 1000
    with pytest.raises(RecordedDataError) as caught:
        world.check_for_pipeline()
    message = str(caught.value)
    assert message == (
        f"{tmp_path / 'klines.csv'}: {words}; the pipeline needs 1-minute candles "
        "(Binance 1m klines)"
    )


@pytest.mark.unit
def test_1m_recorded_candles_with_outages_suit_the_pipeline(recorded) -> None:
    assert recorded.kline_spacing_ms == 60_000
    recorded.check_for_pipeline()
