"""FaultSpec parsing and fault injection through a real loopback ReplayServer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import ccxt
import httpx
import pytest

from btc_tracker_pipeline.replay import FaultSpec, ReplayServer
from btc_tracker_pipeline.replay.faults import FaultInjector
from btc_tracker_pipeline_tests.replay.test_server import FakeWorld

GAMMA = "/gamma/markets?limit=5"
CLOB = "/clob/prices-history?market=1&interval=1h"
BINANCE = "/binance/api/v3/ticker/24hr?symbol=BTCUSDT"


@contextmanager
def serving(spec: str) -> Iterator[tuple[ReplayServer, httpx.Client]]:
    """A server over a fresh FakeWorld with the faults ``spec``, and a client for it."""
    with (
        ReplayServer(FakeWorld(), faults=FaultSpec.parse(spec)) as srv,
        httpx.Client(base_url=srv.url, trust_env=False, timeout=10) as client,
    ):
        yield srv, client


# --- parsing -------------------------------------------------------------------------


@pytest.mark.unit
def test_parse_full_example() -> None:
    spec = FaultSpec.parse(
        "429=0.05,5xx=0.05,slow=0.02,malformed=0.02,retry_after=1,slow_s=12,down=clob,seed=3"
    )
    assert spec == FaultSpec(
        rate_429=0.05,
        rate_5xx=0.05,
        rate_slow=0.02,
        rate_malformed=0.02,
        retry_after=1,
        slow_s=12.0,
        down=frozenset({"clob"}),
        seed=3,
    )
    assert FaultSpec.parse(str(spec)) == spec
    both = FaultSpec.parse(" down = gamma+binance , only=clob ")
    assert both.down == {"gamma", "binance"} and both.only == {"clob"}
    assert FaultSpec.parse(str(both)) == both
    assert FaultSpec.parse("") == FaultSpec() and not FaultSpec().is_active
    books = FaultSpec.parse("book_down=123+456")
    assert books.book_down == {"123", "456"} and books.is_active
    histories = FaultSpec.parse("history_down=789")
    assert histories.history_down == {"789"} and histories.is_active
    assert FaultSpec.parse(str(histories)) == histories
    assert FaultSpec.parse(str(books)) == books


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("404=0.1", "unknown fault key '404'"),
        ("429=1.5", "outside [0, 1]"),
        ("429=-0.1", "outside [0, 1]"),
        ("5xx=abc", "'abc' is not a number"),
        ("429=0.6,5xx=0.6", "sum to 1.2"),
        ("retry_after=1.5", "not an integer"),
        ("slow_s=-1", "slow_s must be >= 0"),
        ("down=clob+kraken", "unknown prefix 'kraken'"),
        ("only=", "is not key=value"),
        ("seed", "is not key=value"),
        ("seed=1,seed=2", "given twice"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        FaultSpec.parse(text)


@pytest.mark.unit
def test_injector_is_deterministic_for_a_seed() -> None:
    spec = FaultSpec.parse("429=0.2,5xx=0.2,slow=0.1,malformed=0.1,seed=7")
    a, b = FaultInjector(spec), FaultInjector(spec)
    seq_a = [a.decide(p) for p in ("gamma", "clob", "binance") * 200]
    seq_b = [b.decide(p) for p in ("gamma", "clob", "binance") * 200]
    assert seq_a == seq_b
    kinds = [f.kind if f else None for f in seq_a]
    assert 0.3 < kinds.count(None) / len(kinds) < 0.5  # rates sum to 0.6
    other = FaultInjector(FaultSpec.parse("429=0.2,5xx=0.2,slow=0.1,malformed=0.1,seed=8"))
    assert [other.decide(p) for p in ("gamma", "clob", "binance") * 200] != seq_a
    a.reset()
    assert [a.decide(p) for p in ("gamma", "clob", "binance") * 200] == seq_b


# --- each fault kind through the server ----------------------------------------------


@pytest.mark.integration
def test_429_with_retry_after() -> None:
    with serving("429=1,retry_after=7") as (_, client):
        for path in (GAMMA, CLOB, BINANCE):
            r = client.get(path)
            assert r.status_code == 429
            assert r.headers["retry-after"] == "7"
            assert r.json() == {"error": "Too Many Requests"}
        # Control routes are never faulted nor counted.
        stats = client.get("/__replay/stats").json()
        assert stats["faults"]["429"] == 3 and stats["total"] == 3


@pytest.mark.integration
def test_5xx_rotates() -> None:
    with serving("5xx=1") as (srv, client):
        assert [client.get(GAMMA).status_code for _ in range(6)] == [500, 502, 503] * 2
        assert srv.stats()["faults"]["5xx"] == 6


@pytest.mark.integration
def test_slow_then_normal_answer() -> None:
    with serving("slow=1,slow_s=0.3") as (srv, client):
        started = time.perf_counter()
        r = client.get(GAMMA)
        assert time.perf_counter() - started >= 0.3
        assert r.status_code == 200 and len(r.json()) == 5
        assert srv.stats()["faults"]["slow"] == 1


@pytest.mark.integration
def test_malformed_is_truncated_json() -> None:
    with serving("malformed=1") as (srv, client):
        for path in (GAMMA, CLOB, BINANCE):
            r = client.get(path)
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/json"
            with pytest.raises(json.JSONDecodeError):
                json.loads(r.content)
        assert srv.stats()["faults"]["malformed"] == 3


@pytest.mark.integration
def test_missing_drops_the_first_items_id() -> None:
    with serving("missing=1") as (srv, client):
        items = client.get(GAMMA).json()
        assert len(items) == 5
        assert "id" not in items[0] and all("id" in m for m in items[1:])
        assert client.get(CLOB).status_code == 200  # no item with an id: answered as is
        assert srv.stats()["faults"]["missing"] == 1


@pytest.mark.integration
def test_cursor_repeats_the_cursor_asked_for() -> None:
    with serving("cursor=1,only=gamma") as (srv, client):
        first = client.get("/gamma/markets/keyset?limit=2").json()
        assert "next_cursor" in first  # a first page has no cursor to repeat
        second = client.get(f"/gamma/markets/keyset?limit=2&after_cursor={first['next_cursor']}")
        assert second.json()["next_cursor"] == first["next_cursor"]
        assert srv.stats()["faults"]["cursor"] == 1


@pytest.mark.integration
def test_down_clob_only() -> None:
    with serving("down=clob") as (srv, client):
        assert client.get(CLOB).status_code == 503
        assert client.get("/clob/book?token_id=1").status_code == 503
        assert client.get(GAMMA).status_code == 200
        assert client.get(BINANCE).status_code == 200
        stats = srv.stats()
        assert stats["faults"]["down"] == 2
        assert stats["routes"]["/clob/prices-history"] == 1


@pytest.mark.integration
def test_only_restricts_random_faults() -> None:
    with serving("429=1,only=gamma+binance") as (_, client):
        assert client.get(GAMMA).status_code == 429
        assert client.get(BINANCE).status_code == 429
        assert client.get(CLOB).status_code == 200


@pytest.mark.integration
def test_same_seed_same_faults_over_http() -> None:
    def statuses(seed: int) -> list[int]:
        with serving(f"429=0.25,5xx=0.25,malformed=0.2,seed={seed}") as (_, client):
            return [client.get(p).status_code for p in (GAMMA, CLOB, BINANCE) * 20]

    first = statuses(3)
    assert first == statuses(3)
    assert first != statuses(4)
    assert {429, 500, 502, 503, 200} <= set(first)


@pytest.mark.integration
def test_ccxt_sees_binance_down_and_throttled() -> None:
    with serving("down=binance") as (srv, _):
        exchange = ccxt.binance(
            {
                "urls": {"api": {"public": srv.url + "/binance/api/v3"}},
                "options": {"fetchMarkets": {"types": ["spot"]}},
                "enableRateLimit": False,
            }
        )
        with pytest.raises(ccxt.ExchangeNotAvailable):
            exchange.load_markets()
    with serving("429=1,only=binance") as (srv, _):
        exchange.urls["api"]["public"] = srv.url + "/binance/api/v3"
        with pytest.raises(ccxt.DDoSProtection):
            exchange.load_markets(reload=True)
