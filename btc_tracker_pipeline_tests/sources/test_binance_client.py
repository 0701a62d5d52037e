"""BinanceClient (real ccxt) against a loopback fake Binance under /binance/api/v3."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.sources.binance import BinanceClient, to_ms
from btc_tracker_pipeline.sources.errors import (
    ClientError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from btc_tracker_pipeline_tests.sources.loopback import Reply, Request, Server, routes, serve

pytestmark = pytest.mark.unit

API = "/binance/api/v3"
T0 = datetime(2026, 3, 1, 0, 0)


def load(fixtures_dir: Path, name: str) -> Any:
    return json.loads((fixtures_dir / name).read_text())


def synthetic_rows(start: datetime, n: int) -> list[list[Any]]:
    """``n`` consecutive raw 1m kline rows from ``start`` (§3.6 layout)."""
    rows = []
    for i in range(n):
        open_ms = to_ms(start) + i * 60_000
        price = f"{60000 + i:.8f}"
        ohlcv = [open_ms, price, price, price, price, "1.00000000"]
        rows.append([*ohlcv, open_ms + 59_999, "60000.0", 10, "0.5", "30000.0", "0"])
    return rows


def klines_route(rows: list[list[Any]]) -> Callable[[Request], Reply]:
    """Binance's filtering: open time in [startTime, endTime], at most ``limit`` rows."""

    def app(request: Request) -> Reply:
        assert request.get("symbol") == "BTCUSDT"
        start = int(request.get("startTime") or 0)
        end = int(request.get("endTime") or 2**62)
        limit = min(int(request.get("limit") or 500), 1000)
        return Reply([r for r in rows if start <= r[0] <= end][:limit])

    return app


def fake_binance(
    fixtures_dir: Path, klines: Callable[[Request], Reply], **extra: Callable[[Request], Reply]
) -> Callable[[Request], Reply]:
    table = {
        f"{API}/exchangeInfo": lambda _: Reply(
            load(fixtures_dir, "binance_exchange_info_btcusdt_ethusdt.json")
        ),
        f"{API}/ticker/24hr": lambda _: Reply(
            load(fixtures_dir, "binance_ticker_24hr_btcusdt.json")
        ),
        f"{API}/klines": klines,
    }
    table.update(extra)
    return routes(table)


def client_for(server: Server, **kwargs: Any) -> BinanceClient:
    kwargs.setdefault("enable_rate_limit", False)
    kwargs.setdefault("backoff_initial_s", 0.01)
    kwargs.setdefault("base_url", server.base + "/binance")
    return BinanceClient(**kwargs)


def kline_requests(server: Server) -> list[Request]:
    return [r for r in server.requests if r.path == f"{API}/klines"]


def assert_only_spot_api(server: Server) -> None:
    assert server.requests, "no request reached the fake server"
    assert all(r.path.startswith(f"{API}/") for r in server.requests), server.paths()


@pytest.mark.parametrize("n", [10, 1000, 2000, 2500])
def test_klines_pages_in_ceil_n_over_1000_requests(fixtures_dir: Path, n: int) -> None:
    # The fake has more candles than asked for, before and after the window.
    rows = synthetic_rows(T0 - timedelta(minutes=30), n + 90)
    with serve(fake_binance(fixtures_dir, klines_route(rows))) as server:
        client = client_for(server)
        klines = client.klines(T0, T0 + timedelta(minutes=n))

    assert len(klines) == n
    assert klines[0].open_time == T0
    assert klines[-1].open_time == T0 + timedelta(minutes=n - 1)
    assert len({k.open_time for k in klines}) == n
    assert klines[0].open == 60030.0
    requests = kline_requests(server)
    assert len(requests) == math.ceil(n / 1000)
    end_ms = to_ms(T0 + timedelta(minutes=n))
    assert [int(r.get("startTime") or 0) for r in requests] == [
        to_ms(T0) + page * 1000 * 60_000 for page in range(len(requests))
    ]
    for r in requests:
        assert (r.get("interval"), r.get("limit")) == ("1m", "1000")
        assert r.get("endTime") == str(end_ms - 1)
    assert server.paths().count(f"{API}/exchangeInfo") == 1
    assert_only_spot_api(server)
    assert client.requests == len(server.requests) and client.retries == 0


def test_klines_from_recorded_fixture(fixtures_dir: Path) -> None:
    rows = load(fixtures_dir, "binance_klines_btcusdt_1m.json")
    start = datetime(2021, 10, 22, 23, 3)
    with serve(fake_binance(fixtures_dir, klines_route(rows))) as server:
        klines = client_for(server).klines(start, start + timedelta(minutes=10))

    assert len(klines) == 10
    assert (klines[0].open_time, klines[0].open, klines[0].close) == (start, 60685.22, 60719.27)
    assert_only_spot_api(server)


def test_klines_stop_when_a_page_brings_nothing_new(fixtures_dir: Path) -> None:
    # A broken server that ignores startTime keeps answering the same 1,000 rows.
    rows = synthetic_rows(T0, 1000)
    with serve(fake_binance(fixtures_dir, lambda _: Reply(rows))) as server:
        klines = client_for(server).klines(T0, T0 + timedelta(minutes=3000))

    assert len(klines) == 1000
    assert len(kline_requests(server)) == 2


def test_ticker_and_exchange_info(fixtures_dir: Path) -> None:
    with serve(fake_binance(fixtures_dir, klines_route([]))) as server:
        client = client_for(server, enable_rate_limit=True)
        ticker = client.ticker_24h()

    assert ticker.last == 81472.77
    assert ticker.change_pct == 0.529
    assert (ticker.bid, ticker.ask) == (81472.76, 81472.77)
    assert ticker.timestamp == datetime(2026, 9, 21, 2, 22, 9, 5000)
    assert server.paths() == [f"{API}/exchangeInfo", f"{API}/ticker/24hr"]
    assert server.requests[1].get("symbol") == "BTCUSDT"
    markets = client.exchange.markets
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01
    assert markets["BTC/USDT"]["precision"]["amount"] == 1e-05


def test_ticker_list_answer_is_accepted(fixtures_dir: Path) -> None:
    rows = load(fixtures_dir, "binance_ticker_24hr_symbols_btcusdt_ethusdt.json")
    app = fake_binance(
        fixtures_dir, klines_route([]), **{f"{API}/ticker/24hr": lambda _: Reply(rows)}
    )
    with serve(app) as server:
        assert client_for(server).ticker_24h().last == 81472.77


def flaky(first: Reply, then: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    calls: list[int] = []

    def app(request: Request) -> Reply:
        calls.append(1)
        return first if len(calls) == 1 else then(request)

    return app


def test_429_waits_retry_after(fixtures_dir: Path) -> None:
    sleeps: list[float] = []
    rows = synthetic_rows(T0, 5)
    busy = Reply({"code": -1003, "msg": "Too many requests"}, 429, {"Retry-After": "1"})
    with serve(fake_binance(fixtures_dir, flaky(busy, klines_route(rows)))) as server:
        client = client_for(server, sleep=sleeps.append)
        klines = client.klines(T0, T0 + timedelta(minutes=5))

    assert len(klines) == 5
    assert sleeps == [1.0]
    assert client.retries == 1 and len(kline_requests(server)) == 2


def test_500_every_time_is_server_error(fixtures_dir: Path) -> None:
    sleeps: list[float] = []
    with serve(fake_binance(fixtures_dir, lambda _: Reply(b"", 500))) as server:
        client = client_for(server, max_attempts=3, sleep=sleeps.append)
        with pytest.raises(ServerError) as caught:
            client.klines(T0, T0 + timedelta(minutes=5))

    assert caught.value.status == 500
    assert len(kline_requests(server)) == 3 and len(sleeps) == 2
    assert "/binance/api/v3/klines" in (caught.value.url or "")


def test_invalid_symbol_is_client_error_not_retried(fixtures_dir: Path) -> None:
    bad = Reply({"code": -1121, "msg": "Invalid symbol."}, 400)
    app = fake_binance(fixtures_dir, lambda _: bad)
    with serve(app) as server, pytest.raises(ClientError, match="Invalid symbol"):
        client_for(server).klines(T0, T0 + timedelta(minutes=5))

    assert len(kline_requests(server)) == 1


def test_timeout_retried_then_transport_error(fixtures_dir: Path) -> None:
    slow = Reply(synthetic_rows(T0, 1), delay_s=0.5)
    with serve(fake_binance(fixtures_dir, lambda _: slow)) as server:
        client = client_for(server, timeout_s=0.1, max_attempts=2, sleep=lambda _: None)
        with pytest.raises(TransportError, match="RequestTimeout"):
            client.klines(T0, T0 + timedelta(minutes=1))

    assert len(kline_requests(server)) == 2


def test_missing_route_is_not_found_and_rate_limit_error_typed(fixtures_dir: Path) -> None:
    with serve(routes({})) as server, pytest.raises(NotFoundError):
        client_for(server).ticker_24h()
    assert server.paths() == [f"{API}/exchangeInfo"]

    teapot = Reply({"code": -1003, "msg": "banned"}, 418)
    with serve(fake_binance(fixtures_dir, lambda _: teapot)) as server:
        client = client_for(server, max_attempts=2, sleep=lambda _: None)
        with pytest.raises(RateLimitedError):
            client.klines(T0, T0 + timedelta(minutes=1))


@pytest.mark.parametrize("route", ["exchangeInfo", "ticker/24hr", "klines"])
def test_a_truncated_answer_is_retried(fixtures_dir: Path, route: str) -> None:
    """ccxt does not raise on a body cut short (found by bench/soak.py): it loads no
    markets (then every call is BadSymbol) or parses nothing; both must be retried."""
    bodies = {
        "exchangeInfo": load(fixtures_dir, "binance_exchange_info_btcusdt_ethusdt.json"),
        "ticker/24hr": load(fixtures_dir, "binance_ticker_24hr_btcusdt.json"),
        "klines": synthetic_rows(T0, 5),
    }
    apps = {
        "exchangeInfo": lambda _: Reply(bodies["exchangeInfo"]),
        "ticker/24hr": lambda _: Reply(bodies["ticker/24hr"]),
        "klines": klines_route(bodies["klines"]),
    }
    good, calls = apps[route], [0]

    def cut_once(request: Request) -> Reply:
        calls[0] += 1
        return Reply(json.dumps(bodies[route]).encode()[:120]) if calls[0] == 1 else good(request)

    apps[route] = cut_once
    with serve(routes({f"{API}/{name}": app for name, app in apps.items()})) as server:
        client = client_for(server, sleep=lambda _: None)
        assert client.ticker_24h().last > 0
        assert len(client.klines(T0, T0 + timedelta(minutes=5))) == 5
    assert client.retries == 1


# --- gaps: Binance answers startTime with the first candles at or after it (§3.8) -----


def gappy_rows() -> list[list[Any]]:
    """1m candles from T0 + 10 min with two outages: 30 minutes inside the first page
    and 1,500 minutes (longer than a page) later; the last 20 minutes are an outage too."""
    rows = synthetic_rows(T0 + timedelta(minutes=10), 3000)
    outages = [(400, 430), (1200, 2700), (2980, 3000)]
    return [r for i, r in enumerate(rows) if not any(a <= i < b for a, b in outages)]


def expected_times(rows: list[list[Any]], start: datetime, end: datetime) -> list[datetime]:
    lo, hi = to_ms(start), to_ms(end)
    return [datetime(1970, 1, 1) + timedelta(milliseconds=r[0]) for r in rows if lo <= r[0] < hi]


@pytest.mark.parametrize("cap", [1000, 300])
def test_klines_page_past_gaps_and_short_pages(fixtures_dir: Path, cap: int) -> None:
    # A range that starts before the first candle, has an outage inside a page, one
    # longer than a page, and ends in an outage; ``cap`` < 1000: a server answering
    # fewer rows than asked (a short page that is not the end of the range).
    rows = gappy_rows()
    route = klines_route(rows)

    def capped(request: Request) -> Reply:
        reply = route(request)
        return Reply(reply.body[:cap])

    start, end = T0 - timedelta(hours=24), T0 + timedelta(minutes=3010)
    with serve(fake_binance(fixtures_dir, capped)) as server:
        klines = client_for(server).klines(start, end)

    assert [k.open_time for k in klines] == expected_times(rows, start, end)
    assert len(klines) == 3000 - 30 - 1500 - 20
    # Each page starts after the newest candle so far; one empty page ends the range.
    requests = kline_requests(server)
    assert len(requests) == math.ceil(len(klines) / cap) + 1
    assert int(requests[-1].get("startTime") or 0) == to_ms(T0 + timedelta(minutes=10 + 2980))


def test_klines_of_a_range_inside_an_outage_are_none_in_one_request(fixtures_dir: Path) -> None:
    rows = gappy_rows()
    start = T0 + timedelta(minutes=10 + 1300)
    with serve(fake_binance(fixtures_dir, klines_route(rows))) as server:
        assert client_for(server).klines(start, start + timedelta(hours=2)) == []
    assert len(kline_requests(server)) == 1


@pytest.mark.parametrize("suffix", ["", "/", "/api/v3", "/api/v3/"])
def test_the_base_url_works_with_or_without_the_api_path(fixtures_dir: Path, suffix: str) -> None:
    # BTC_TRACKER_BINANCE_URL is set either way in the wild: the host, or the API root.
    rows = load(fixtures_dir, "binance_klines_btcusdt_1m.json")
    start = datetime(2021, 10, 22, 23, 3)
    with serve(fake_binance(fixtures_dir, klines_route(rows))) as server:
        client = client_for(server, base_url=server.base + "/binance" + suffix)
        klines = client.klines(start, start + timedelta(minutes=3))

    assert [k.close for k in klines][:1] == [60719.27]
    assert {p.rsplit("/", 1)[0] for p in server.paths()} == {API}
