"""The backfill caches are keyed by their source (the API base URL and the replay world
it serves): a warehouse whose cache another world filled gets, from a backfill of the
same windows against a new world on the same address, exactly the rows of a warehouse
that only ever saw the new world."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from btc_tracker_pipeline.replay.server import ReplayServer
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_windows
from btc_tracker_pipeline.sources.binance import BinanceClient
from btc_tracker_pipeline.sources.clob import ClobClient
from btc_tracker_pipeline.sources.http import JsonHttp, make_client
from btc_tracker_pipeline_tests.window_tables import COLLECTED, window_rows

pytestmark = pytest.mark.integration

KEYS = partition_keys("2026-02-28-16:00", "2026-02-28-17:45")
HISTORY, KLINES = "/clob/prices-history", "/binance/api/v3/klines"


def world(days: int) -> SimulatedWorld:
    """Small worlds of the same seed: the same token ids, but each start draws its own
    BTC path and so its own prices (the demo's world against ``ui --replay``'s)."""
    return SimulatedWorld(
        seed=7,
        days=days,
        now=datetime(2026, 3, 1),
        strikes_per_ladder=3,
        updown_lead=timedelta(hours=3),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backfill(folder: Path, days: int, port: int) -> dict[str, int]:
    """Backfill KEYS in runs of 4 windows against ``world(days)``; the server's routes."""
    with replay_session(world(days), folder, port=port) as session:
        outcomes = run_windows(KEYS, instance=session.instance, chunk_size=4)
        assert all(o.success for o in outcomes), [o.error for o in outcomes]
        return dict(session.server.stats()["routes"])


def rows(folder: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        return window_rows(conn, COLLECTED)


def test_a_cache_of_another_world_is_not_read(tmp_path):
    port = free_port()
    backfill(tmp_path / "both", days=2, port=port)
    first = rows(tmp_path / "both")
    again = backfill(tmp_path / "both", days=2, port=port)
    assert HISTORY not in again and KLINES not in again  # the same source reads its cache
    assert rows(tmp_path / "both") == first

    later = backfill(tmp_path / "both", days=3, port=port)
    backfill(tmp_path / "fresh", days=3, port=port)
    got, expected = rows(tmp_path / "both"), rows(tmp_path / "fresh")
    assert got["btc_spot_prices"] != first["btc_spot_prices"]  # the worlds do differ
    assert got == expected
    assert later.get(HISTORY) and later.get(KLINES)


def test_the_clients_name_the_world_a_replay_server_serves_and_only_then():
    sim = world(2)
    with ReplayServer(sim) as server, JsonHttp(make_client()) as http:
        clob = ClobClient(http, f"{server.url}/clob")
        binance = BinanceClient(f"{server.url}/binance", enable_rate_limit=False)
        assert clob.source() == f"{server.url}/clob world={sim.identity()}"
        assert binance.source() == f"{server.url}/binance world={sim.identity()}"
    real = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=1)))
    with JsonHttp(real) as http:
        assert ClobClient(http, "https://clob.example/").source() == "https://clob.example"
