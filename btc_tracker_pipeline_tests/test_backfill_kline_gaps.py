"""A backfill across Binance outages (docs/apis.md §3.8) loses only the outage: the
windows after it, and a first day whose 24 h lookback starts before any candle, get
every candle the world has, from the simulated world and from a recording of it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from btc_tracker_pipeline.replay.recorded import RecordedWorld
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.replay.world import World
from btc_tracker_pipeline.runner import partition_keys, run_windows

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1)  # the path starts 2026-02-27 00:00
# 30 minutes inside the first page of the later range's lookback, and two of its windows.
GAPS = [
    (datetime(2026, 2, 27, 12, 0), datetime(2026, 2, 27, 12, 30)),
    (datetime(2026, 2, 28, 10, 0), datetime(2026, 2, 28, 10, 30)),
]
FIRST_DAY = partition_keys("2026-02-27-00:00", "2026-02-27-01:45")  # lookback before data
ACROSS = partition_keys("2026-02-28-09:00", "2026-02-28-11:45")
RUN = 8
SPOT_TIMES = "SELECT open_time FROM btc_spot_prices ORDER BY 1"
LABEL_CHECKS = "SELECT label_check, count(*) FROM market_resolutions GROUP BY 1"


def simulated() -> SimulatedWorld:
    return SimulatedWorld(
        seed=7,
        days=2,
        now=NOW,
        strikes_per_ladder=3,
        updown_lead=timedelta(hours=3),
        kline_gaps=GAPS,
    )


def _ms(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1)).total_seconds() * 1000)


def record(world: SimulatedWorld, folder: Path) -> RecordedWorld:
    """The world's candles, markets and price histories as a recorded directory."""
    folder.mkdir()
    rows, cursor = [], 0
    while batch := world.klines("1m", cursor, _ms(NOW) - 60_000, 1000):
        rows += batch
        cursor = batch[-1][0] + 60_000
    (folder / "klines.csv").write_text(
        "open_time_ms,open,high,low,close,volume\n"
        + "".join(",".join(map(str, r[:6])) + "\n" for r in rows)
    )
    markets = world.gamma_markets()
    (folder / "markets.jsonl").write_text("".join(json.dumps(m) + "\n" for m in markets))
    (folder / "prices").mkdir()
    for market in markets:
        for token in json.loads(market["clobTokenIds"]):
            points = world.price_history(token, 0, _ms(NOW) // 1000, 1)
            (folder / "prices" / f"{token}.csv").write_text(
                "t,p\n" + "".join(f"{p['t']},{p['p']}\n" for p in points)
            )
    return RecordedWorld(folder, now=NOW - timedelta(minutes=1))


def candle_times(world: World, keys: list[str]) -> list[datetime]:
    """Open times of every 1m candle the world serves inside the windows of ``keys``."""
    lo = datetime.strptime(keys[0], "%Y-%m-%d-%H:%M")
    hi = datetime.strptime(keys[-1], "%Y-%m-%d-%H:%M") + timedelta(minutes=15)
    rows = world.klines("1m", _ms(lo), _ms(hi) - 1, 1000)
    return [datetime(1970, 1, 1) + timedelta(milliseconds=r[0]) for r in rows]


@pytest.mark.parametrize("kind", ["simulated", "recorded"])
def test_a_backfill_across_outages_loses_only_the_outage(tmp_path: Path, kind: str) -> None:
    world = simulated() if kind == "simulated" else record(simulated(), tmp_path / "data")
    with replay_session(world, tmp_path / "run") as session:
        for keys in (FIRST_DAY, ACROSS):
            outcomes = run_windows(keys, instance=session.instance, chunk_size=RUN)
            assert all(o.success for o in outcomes), [o.error for o in outcomes]
    with duckdb.connect(str(tmp_path / "run" / "warehouse.duckdb"), read_only=True) as conn:
        stored = [t for (t,) in conn.sql(SPOT_TIMES).fetchall()]
        windows = [w for (w,) in conn.sql("SELECT window_start FROM btc_spot_windows").fetchall()]
        checks = dict(conn.sql(LABEL_CHECKS).fetchall())

    expected = candle_times(world, FIRST_DAY) + candle_times(world, ACROSS)
    assert stored == expected
    assert len(stored) == (len(FIRST_DAY) + len(ACROSS)) * 15 - 30
    outage = {datetime(2026, 2, 28, 10, 0), datetime(2026, 2, 28, 10, 15)}
    assert len(windows) == len(FIRST_DAY) + len(ACROSS) - 2 and not outage & set(windows)
    assert checks.get("agrees", 0) > 0 and not checks.get("disagrees")
