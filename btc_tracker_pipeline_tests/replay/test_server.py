"""ReplayServer over a small in-test World: real loopback server, httpx and ccxt clients."""

from __future__ import annotations

import copy
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt
import httpx
import pytest

from btc_tracker_pipeline.replay import ReplayServer
from btc_tracker_pipeline.replay.faults import FAULT_KINDS
from btc_tracker_pipeline.replay.world import UnknownTokenError

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 22, 8, 0)  # naive UTC, like every World datetime
N_WINDOWS = 240  # 5-minute up/down markets, 60 closed + 180 open
FIRST_WINDOW = NOW - timedelta(minutes=5 * 60)

# Real shapes, copied from the recorded API responses in $BTC_TRACKER_FIXTURES (values
# trimmed, keys kept).
TAG_BITCOIN = {
    "id": "235",
    "label": "Bitcoin",
    "slug": "bitcoin",
    "forceShow": True,
    "publishedAt": "2023-11-02 21:40:32.968+00",
    "updatedBy": 15,
    "createdAt": "2023-11-02T21:40:32.974Z",
    "updatedAt": "2026-03-09T22:20:01.537313Z",
    "requiresTranslation": False,
}
TAG_CRYPTO = {
    "id": "21",
    "label": "Crypto",
    "slug": "crypto",
    "forceShow": False,
    "publishedAt": "2023-11-02 21:03:54.55+00",
    "updatedBy": 15,
    "createdAt": "2023-11-02T21:03:54.564Z",
    "updatedAt": "2026-03-09T22:28:03.349847Z",
    "requiresTranslation": False,
}
TAG_POLITICS = {
    "id": "2",
    "label": "Politics",
    "slug": "politics",
    "forceShow": False,
    "publishedAt": "2023-10-25 18:55:50.674+00",
    "updatedBy": 13,
    "createdAt": "2023-10-25T18:55:50.681Z",
    "updatedAt": "2026-03-09T22:35:26.76623Z",
    "forceHide": True,
    "requiresTranslation": False,
}
SERIES_5M = {
    "id": "10684",
    "ticker": "btc-up-or-down-5m",
    "slug": "btc-up-or-down-5m",
    "title": "BTC Up or Down 5m",
    "seriesType": "single",
    "recurrence": "5m",
    "image": "",
    "icon": "",
    "active": True,
    "closed": False,
    "archived": False,
    "featured": False,
    "restricted": True,
    "createdAt": "2025-11-21T21:46:22.201627Z",
    "updatedAt": "2026-03-22T07:56:00.811262Z",
    "volume24hr": 34447153.55748598,
    "volume": 67925.91870299994,
    "liquidity": 1741964.6797,
    "commentCount": 39462,
    "requiresTranslation": False,
}
TICKER_24H = {
    "symbol": "BTCUSDT",
    "priceChange": "428.77000000",
    "priceChangePercent": "0.529",
    "weightedAvgPrice": "80870.50376751",
    "prevClosePrice": "81044.01000000",
    "lastPrice": "81472.77000000",
    "lastQty": "0.00009000",
    "bidPrice": "81472.76000000",
    "bidQty": "4.44197000",
    "askPrice": "81472.77000000",
    "askQty": "0.14130000",
    "openPrice": "81044.00000000",
    "highPrice": "82100.00000000",
    "lowPrice": "80126.04000000",
    "volume": "12362.33320000",
    "quoteVolume": "999748113.62582550",
    "openTime": 1789870929005,
    "closeTime": 1789957329005,
    "firstId": 6695397933,
    "lastId": 6697790300,
    "count": 2392368,
}


def iso(dt: datetime) -> str:
    """Gamma's ISO-8601 with ``Z``."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def ts(dt: datetime) -> int:
    """Unix seconds of a naive UTC datetime."""
    return int(dt.replace(tzinfo=UTC).timestamp())


def make_event(
    event_id: str,
    slug: str,
    title: str,
    start: datetime,
    end: datetime,
    closed: bool,
    tags: list[dict[str, Any]],
    series: list[dict[str, Any]] | None = None,
    volume: float = 1000.0,
) -> dict[str, Any]:
    """An event in the real Gamma shape (fixture gamma_market_btc_5m_by_slug.json)."""
    event: dict[str, Any] = {
        "id": event_id,
        "ticker": slug,
        "slug": slug,
        "title": title,
        "description": 'This market will resolve to "Up" if ...',
        "resolutionSource": "https://data.chain.link/streams/btc-usd",
        "startDate": iso(start - timedelta(days=1)) if series else iso(start),
        "creationDate": iso(start - timedelta(days=1)),
        "endDate": iso(end),
        "active": True,
        "closed": closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": 19748.9135,
        "volume": volume,
        "openInterest": 0,
        "createdAt": iso(start - timedelta(days=1)),
        "updatedAt": iso(min(end, NOW)),
        "competitive": 0.8031967229573703,
        "volume24hr": volume,
        "enableOrderBook": True,
        "liquidityClob": 19748.9135,
        "negRisk": False,
        "commentCount": 0,
        "tags": copy.deepcopy(tags),
        "cyom": False,
        "showAllOutcomes": True,
        "showMarketImages": True,
        "enableNegRisk": False,
        "automaticallyActive": True,
        "negRiskAugmented": False,
        "pendingDeployment": False,
        "deploying": False,
        "requiresTranslation": False,
    }
    if series:
        event["series"] = copy.deepcopy(series)
        event["seriesSlug"] = series[0]["slug"]
        event["startTime"] = iso(start)
        event["eventMetadata"] = {"priceToBeat": 69047.89810564333}
    return event


def make_market(
    market_id: int,
    slug: str,
    question: str,
    start: datetime,
    end: datetime,
    closed: bool,
    volume: float,
    outcomes: tuple[str, str] = ("Up", "Down"),
    with_bid: bool = True,
) -> dict[str, Any]:
    """A market in the real Gamma shape: JSON-encoded strings, string volume/liquidity."""
    tokens = [f"9424220687122137039{market_id:07d}1", f"2294340023725022931{market_id:07d}2"]
    market: dict[str, Any] = {
        "id": str(market_id),
        "question": question,
        "conditionId": f"0x{market_id:064x}",
        "slug": slug,
        "resolutionSource": "https://data.chain.link/streams/btc-usd",
        "endDate": iso(end),
        "liquidity": "19748.9135",
        "startDate": iso(start - timedelta(days=1)),
        "description": 'This market will resolve to "Up" if ...',
        "outcomes": json.dumps(list(outcomes)),
        "outcomePrices": json.dumps(["1", "0"] if closed else ["0.52", "0.48"]),
        "volume": str(volume),
        "active": True,
        "closed": closed,
        "marketMakerAddress": "",
        "createdAt": iso(start - timedelta(days=1)),
        "updatedAt": iso(min(end, NOW)),
        "archived": False,
        "questionID": f"0x{market_id + 1:064x}",
        "enableOrderBook": True,
        "orderPriceMinTickSize": 0.001,
        "orderMinSize": 5,
        "volumeNum": volume,
        "liquidityNum": 19748.9135,
        "endDateIso": end.strftime("%Y-%m-%d"),
        "startDateIso": (start - timedelta(days=1)).strftime("%Y-%m-%d"),
        "volume24hr": volume,
        "clobTokenIds": json.dumps(tokens),
        "acceptingOrders": not closed,
        "negRisk": False,
        "spread": 0.02,
        "lastTradePrice": 0.52,
        "bestAsk": 0.53,
        "eventStartTime": iso(start),
        "umaResolutionStatuses": "[]",
        "feesEnabled": True,
        "feeSchedule": {"exponent": 2, "rate": 0.25, "takerOnly": True, "rebateRate": 0.2},
    }
    if with_bid:  # bestBid is absent when the bid side is empty
        market["bestBid"] = 0.51
    if closed:
        market["closedTime"] = (end + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S+00")
        market["umaResolutionStatus"] = "resolved"
    return market


class FakeWorld:
    """A handful of BTC/politics markets and events, klines and books; mutable for tests."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._now = NOW
        for i in range(N_WINDOWS):
            start = FIRST_WINDOW + timedelta(minutes=5 * i)
            end = start + timedelta(minutes=5)
            slug = f"btc-updown-5m-{ts(start)}"
            title = f"Bitcoin Up or Down - {start:%B %d, %H:%M}-{end:%H:%M} UTC"
            event = make_event(
                str(300000 + i),
                slug,
                title,
                start,
                end,
                end <= NOW,
                [TAG_CRYPTO, TAG_BITCOIN],
                [SERIES_5M],
                volume=float(1000 + (i * 7919) % 5000),
            )
            event["markets"] = [
                make_market(
                    1_700_000 + i,
                    slug,
                    title,
                    start,
                    end,
                    end <= NOW,
                    volume=float(1000 + (i * 7919) % 5000),
                    with_bid=i % 3 != 0,
                )
            ]
            self.events.append(event)
        ladder_end = datetime(2026, 3, 22, 16, 0)
        ladder = make_event(
            "246060",
            "bitcoin-above-on-march-22",
            "Bitcoin above ___ on March 22?",
            datetime(2026, 3, 15, 17, 4),
            ladder_end,
            False,
            [TAG_BITCOIN, TAG_CRYPTO],
            volume=6291446.59,
        )
        ladder["seriesSlug"] = "btc-multi-strikes-weekly"
        ladder["markets"] = [
            make_market(
                1_500_000 + k,
                f"bitcoin-above-{k}k-on-march-22",
                f"Will the price of Bitcoin be above ${k},000 on March 22?",
                datetime(2026, 3, 15, 17, 4),
                ladder_end,
                False,
                volume=100000.0 * (k - 60),
                outcomes=("Yes", "No"),
            )
            for k in (64, 66, 68)
        ]
        self.events.append(ladder)
        politics = make_event(
            "30829",
            "democratic-presidential-nominee-2028",
            "Democratic Presidential Nominee 2028",
            datetime(2025, 7, 11, 18, 41),
            datetime(2028, 11, 7),
            False,
            [TAG_POLITICS],
            volume=799823812.487094,
        )
        politics["markets"] = [
            make_market(
                559657,
                "will-stephen-a-smith-win-the-2028-democratic-presidential-nomination-914",
                "Will Stephen A. Smith win the 2028 Democratic presidential nomination?",
                datetime(2025, 7, 11, 18, 36),
                datetime(2028, 11, 7),
                False,
                volume=12232699.615479222,
                outcomes=("Yes", "No"),
            )
        ]
        self.events.append(politics)
        self.kline_start_ms = ts(NOW - timedelta(days=2)) * 1000
        self._token_index: dict[str, dict[str, Any]] | None = None

    # World protocol -------------------------------------------------------------------

    def now(self) -> datetime:
        return self._now

    def identity(self) -> str:
        return "fake"

    def gamma_markets(self) -> list[dict[str, Any]]:
        out = []
        for event in self.events:
            shell = {k: v for k, v in event.items() if k != "markets"}
            for market in event["markets"]:
                out.append({**market, "events": [shell]})
        return out

    def gamma_events(self) -> list[dict[str, Any]]:
        return self.events

    def _tokens(self) -> dict[str, dict[str, Any]]:
        if self._token_index is None:
            self._token_index = {
                token: market
                for market in self.gamma_markets()
                for token in json.loads(market["clobTokenIds"])
            }
        return self._token_index

    def price_history(
        self, token_id: str, start_ts: int, end_ts: int, fidelity_min: int
    ) -> list[dict[str, Any]]:
        if token_id not in self._tokens():
            raise UnknownTokenError(token_id)
        step = 60 * fidelity_min
        first = max(start_ts, ts(NOW) - 3 * 86400)
        last = min(end_ts, ts(self._now))
        return [
            {"t": t + 1, "p": round(0.5 + ((t // step) % 7) / 100, 4)}
            for t in range(first - first % step, last - 1, step)
            if start_ts <= t + 1 <= end_ts
        ]

    def book(self, token_id: str) -> dict[str, Any]:
        market = self._tokens().get(token_id)
        if market is None:
            raise UnknownTokenError(token_id)
        # Deliberately unsorted: the server must put the best level last.
        return {
            "market": market["conditionId"],
            "asset_id": token_id,
            "timestamp": str(ts(self._now) * 1000),
            "hash": "d9374ee77981988b6e64b867b04a1fa78b8c0ddb",
            "bids": [
                {"price": "0.50", "size": "120"},
                {"price": "0.51", "size": "50.5"},
                {"price": "0.48", "size": "3147.19"},
            ],
            "asks": [
                {"price": "0.55", "size": "80"},
                {"price": "0.53", "size": "530"},
                {"price": "0.999", "size": "10"},
            ],
            "min_order_size": "5",
            "tick_size": "0.001",
            "neg_risk": False,
            "last_trade_price": "0.52",
        }

    def clob_market(self, condition_id: str) -> dict[str, Any]:
        for market in self.gamma_markets():
            if market["conditionId"] == condition_id:
                tokens = json.loads(market["clobTokenIds"])
                outcomes = json.loads(market["outcomes"])
                return {
                    "condition_id": condition_id,
                    "question": market["question"],
                    "market_slug": market["slug"],
                    "closed": market["closed"],
                    "accepting_orders": market["acceptingOrders"],
                    "minimum_tick_size": 0.001,
                    "end_date_iso": market["endDate"],
                    "tokens": [
                        {"token_id": t, "outcome": o, "price": 0.5, "winner": False}
                        for t, o in zip(tokens, outcomes, strict=True)
                    ],
                }
        raise KeyError(condition_id)

    def klines(
        self, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        step = {"1m": 60_000, "15m": 900_000, "1h": 3_600_000}.get(interval)
        if step is None:
            raise ValueError(interval)
        now_ms = ts(self._now) * 1000
        last_open = min(end_ms if end_ms is not None else now_ms, now_ms)
        last_open -= last_open % step
        if start_ms is None:
            first = max(self.kline_start_ms, last_open - (limit - 1) * step)
        else:
            first = max(self.kline_start_ms, start_ms + (-start_ms) % step)
        rows = []
        t = first
        while t <= last_open and len(rows) < limit:
            price = 60000 + (t // step) % 100
            rows.append(
                [
                    t,
                    f"{price:.8f}",
                    f"{price + 5:.8f}",
                    f"{price - 5:.8f}",
                    f"{price + 1:.8f}",
                    "21.63272000",
                    t + step - 1,
                    "1313200.01340410",
                    617,
                    "12.28492000",
                    "745719.41022840",
                    "0",
                ]
            )
            t += step
        return rows

    def ticker_24h(self) -> dict[str, Any]:
        close_ms = ts(self._now) * 1000
        return {**TICKER_24H, "openTime": close_ms - 86_400_000, "closeTime": close_ms}


def open_market_ids(world: FakeWorld, closed: bool = False) -> set[str]:
    """Ids of the world's markets with ``closed == closed``."""
    return {m["id"] for m in world.gamma_markets() if m["closed"] is closed}


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture(scope="module")
def server(world: FakeWorld) -> Iterator[ReplayServer]:
    with ReplayServer(world) as srv:
        yield srv


@pytest.fixture()
def client(server: ReplayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as c:
        yield c


def keyset_ids(client: httpx.Client, path: str, key: str, params: dict[str, Any]) -> list[str]:
    """Follow ``next_cursor`` to the end; return the ids in the order served."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        query = dict(params)
        if cursor:
            query["after_cursor"] = cursor
        r = client.get(path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) <= {key, "next_cursor"}
        ids += [item["id"] for item in body[key]]
        cursor = body.get("next_cursor")
        if cursor is None:
            return ids
        assert isinstance(cursor, str) and cursor
    raise AssertionError("keyset paging never ended")


# --- basics --------------------------------------------------------------------------


def test_status_and_not_found(client: httpx.Client) -> None:
    r = client.get("/gamma/status")
    assert (r.status_code, r.text) == (200, "OK")
    for path in ("/nope", "/gamma/nope", "/clob/nope", "/binance/api/v3/depth", "/binance/x"):
        assert client.get(path).status_code == 404, path


def test_url_and_keep_alive(server: ReplayServer, client: httpx.Client) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    r = client.get("/gamma/markets", params={"limit": 1})
    assert r.headers["content-type"] == "application/json"
    assert r.http_version == "HTTP/1.1"
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.headers.get("connection", "").lower() != "close"


def test_every_answer_names_the_world_and_clob_tells_the_time(client: httpx.Client) -> None:
    for path in ("/gamma/status", "/clob/nope", "/binance/api/v3/ping", "/__replay/stats"):
        assert client.get(path).headers["x-replay-world"] == "fake", path
    r = client.get("/clob/time")
    assert (r.status_code, r.json()) == (200, ts(NOW))


# --- gamma markets -------------------------------------------------------------------


def test_markets_closed_defaults_to_false(client: httpx.Client, world: FakeWorld) -> None:
    open_ids = open_market_ids(world)
    closed_ids = open_market_ids(world, closed=True)
    assert len(open_ids) > 100 and closed_ids

    page = client.get("/gamma/markets", params={"limit": 100}).json()
    assert isinstance(page, list) and len(page) == 100
    assert all(m["closed"] is False for m in page)

    closed = keyset_ids(client, "/gamma/markets/keyset", "markets", {"closed": "true"})
    assert set(closed) == closed_ids
    # An explicit id/slug does not lift the default (docs/apis.md §0).
    some_closed = sorted(closed_ids)[0]
    assert client.get("/gamma/markets", params={"id": some_closed}).json() == []
    r = client.get("/gamma/markets", params={"id": some_closed, "closed": "true"})
    assert [m["id"] for m in r.json()] == [some_closed]


def test_markets_limit_clamped_and_offset(client: httpx.Client, world: FakeWorld) -> None:
    assert len(client.get("/gamma/markets", params={"limit": 1000}).json()) == 100
    first = client.get("/gamma/markets", params={"limit": 10}).json()
    second = client.get("/gamma/markets", params={"limit": 10, "offset": 5}).json()
    assert [m["id"] for m in first[5:]] == [m["id"] for m in second[:5]]
    assert client.get("/gamma/markets", params={"offset": 2000}).status_code == 200
    r = client.get("/gamma/markets", params={"offset": 2001})
    assert r.status_code == 422
    assert r.json() == {
        "type": "validation error",
        "error": "offset too large, use /markets/keyset for deeper pagination",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 30},
        {"limit": 100},
        {"limit": 7, "order": "endDate", "ascending": "false"},
        {"limit": 25, "order": "volumeNum,endDate"},
        {"limit": 40, "order": "bestBid", "ascending": "false"},  # absent on some markets
        {"limit": 33, "order": "slug", "ascending": "false"},
        {"limit": 100, "order": "closedTime,eventStartTime", "tag_id": 235},
    ],
)
def test_keyset_visits_every_market_exactly_once(
    client: httpx.Client, world: FakeWorld, params: dict[str, Any]
) -> None:
    ids = keyset_ids(client, "/gamma/markets/keyset", "markets", params)
    assert len(ids) == len(set(ids))
    expected = open_market_ids(world)
    if "tag_id" in params:
        expected.discard("559657")
    assert set(ids) == expected


def test_keyset_order_and_last_page(client: httpx.Client) -> None:
    body = client.get(
        "/gamma/markets/keyset",
        params={"limit": 100, "order": "volumeNum", "ascending": "false"},
    ).json()
    volumes = [m["volumeNum"] for m in body["markets"]]
    assert volumes == sorted(volumes, reverse=True)
    assert "next_cursor" in body
    last = client.get("/gamma/markets/keyset", params={"limit": 100, "slug": "nope"}).json()
    assert last == {"markets": []}


def test_keyset_rejects_offset_and_garbled_cursor(client: httpx.Client) -> None:
    r = client.get("/gamma/markets/keyset", params={"offset": 0})
    assert r.status_code == 422 and r.json()["type"] == "validation error"
    for cursor in ("garbage!", "eyJmb28iOjF9", "bm90IGpzb24"):
        r = client.get("/gamma/markets/keyset", params={"after_cursor": cursor})
        assert r.status_code == 422, cursor
    # A cursor is bound to the order it was built for.
    cursor = client.get("/gamma/markets/keyset", params={"limit": 5}).json()["next_cursor"]
    r = client.get(
        "/gamma/markets/keyset", params={"limit": 5, "after_cursor": cursor, "order": "endDate"}
    )
    assert r.status_code == 422


def test_keyset_limit_clamped_and_cursor_param_ignored(client: httpx.Client) -> None:
    first = client.get("/gamma/markets/keyset", params={"limit": 500}).json()
    assert len(first["markets"]) == 100
    # `cursor=` instead of `after_cursor=` is silently ignored: page 1 again (§1.3).
    again = client.get(
        "/gamma/markets/keyset", params={"limit": 500, "cursor": first["next_cursor"]}
    ).json()
    assert [m["id"] for m in again["markets"]] == [m["id"] for m in first["markets"]]


def test_keyset_cursor_is_stable_when_the_cursor_market_disappears() -> None:
    world = FakeWorld()
    with (
        ReplayServer(world) as srv,
        httpx.Client(base_url=srv.url, trust_env=False) as c,
    ):
        page = c.get("/gamma/markets/keyset", params={"limit": 10}).json()
        ids = [m["id"] for m in page["markets"]]
        # The last market of the page (the cursor position) and the first one vanish.
        world.events = [e for e in world.events if e["markets"][0]["id"] not in (ids[-1], ids[0])]
        nxt = c.get(
            "/gamma/markets/keyset", params={"limit": 10, "after_cursor": page["next_cursor"]}
        ).json()
        expected = sorted(open_market_ids(world) - set(ids), key=int)[:10]
        assert [m["id"] for m in nxt["markets"]] == expected


def test_id_slug_and_token_filters(client: httpx.Client, world: FakeWorld) -> None:
    markets = [m for m in world.gamma_markets() if not m["closed"]]
    a, b = markets[3], markets[40]
    r = client.get("/gamma/markets", params=[("id", a["id"]), ("id", b["id"])])
    assert sorted(m["id"] for m in r.json()) == sorted([a["id"], b["id"]])
    r = client.get("/gamma/markets", params=[("slug", a["slug"]), ("slug", b["slug"])])
    assert sorted(m["slug"] for m in r.json()) == sorted([a["slug"], b["slug"]])
    ta, tb = json.loads(a["clobTokenIds"])[0], json.loads(b["clobTokenIds"])[1]
    r = client.get("/gamma/markets", params=[("clob_token_ids", ta), ("clob_token_ids", tb)])
    assert sorted(m["id"] for m in r.json()) == sorted([a["id"], b["id"]])
    r = client.get("/gamma/markets", params={"clob_token_ids": f"{ta},{tb}"})
    assert r.status_code == 422 and r.json()["error"] == "invalid clob token ids"
    assert client.get("/gamma/markets", params={"id": "abc"}).status_code == 422
    too_many = [("id", str(1_700_000 + i)) for i in range(1200)]
    assert client.get("/gamma/markets", params=too_many).status_code == 414


def test_tag_date_and_volume_filters(client: httpx.Client, world: FakeWorld) -> None:
    r = client.get("/gamma/markets", params={"tag_id": 2})
    assert [m["id"] for m in r.json()] == ["559657"]
    btc = keyset_ids(client, "/gamma/markets/keyset", "markets", {"tag_id": 235})
    assert "559657" not in btc and len(btc) == len(open_market_ids(world)) - 1

    lo, hi = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    r = client.get(
        "/gamma/markets",
        params={"end_date_min": iso(lo), "end_date_max": hi.isoformat() + "+00:00"},
    )
    got = {m["id"] for m in r.json()}
    expected = {
        m["id"]
        for m in world.gamma_markets()
        if not m["closed"] and iso(lo) <= m["endDate"] <= iso(hi)
    }
    assert got == expected and len(expected) == 13
    r = client.get("/gamma/markets", params={"start_date_max": "2025-12-31T00:00:00Z"})
    assert [m["id"] for m in r.json()] == ["559657"]
    assert client.get("/gamma/markets", params={"end_date_min": "yesterday"}).status_code == 422

    r = client.get("/gamma/markets", params={"volume_num_min": 500000, "liquidity_num_min": 1})
    assert sorted(m["id"] for m in r.json()) == ["1500066", "1500068", "559657"]


def test_order_validation(client: httpx.Client) -> None:
    r = client.get("/gamma/markets", params={"order": "notAField"})
    assert r.status_code == 422 and r.json()["error"] == "order fields are not valid"
    # snake_case names are ignored rather than rejected (§1.2): default id order.
    plain = client.get("/gamma/markets", params={"limit": 20}).json()
    snake = client.get("/gamma/markets", params={"limit": 20, "order": "volume_num"}).json()
    assert [m["id"] for m in snake] == [m["id"] for m in plain]
    r = client.get("/gamma/markets", params={"order": "endDate", "ascending": "false"})
    ends = [m["endDate"] for m in r.json()]
    assert ends == sorted(ends, reverse=True)


def test_single_market_and_event_lookups(client: httpx.Client, world: FakeWorld) -> None:
    closed = next(m for m in world.gamma_markets() if m["closed"])
    r = client.get(f"/gamma/markets/{closed['id']}")
    assert r.status_code == 200 and r.json()["id"] == closed["id"]
    assert r.json()["events"][0]["slug"] == closed["slug"]
    r = client.get(f"/gamma/markets/slug/{closed['slug']}")
    assert r.status_code == 200 and r.json()["closed"] is True
    assert client.get("/gamma/markets/999999999").status_code == 404
    assert client.get("/gamma/markets/slug/no-such-market").status_code == 404
    assert client.get("/gamma/markets/not-a-number").status_code == 422

    r = client.get("/gamma/events/246060")
    assert r.status_code == 200 and len(r.json()["markets"]) == 3
    r = client.get("/gamma/events/slug/bitcoin-above-on-march-22")
    assert r.json()["id"] == "246060"
    assert client.get("/gamma/events/1").status_code == 404
    assert client.get("/gamma/events/slug/nope").status_code == 404


# --- gamma events, search, tags ------------------------------------------------------


def test_events_lists_and_keyset(client: httpx.Client, world: FakeWorld) -> None:
    open_events = {e["id"] for e in world.events if not e["closed"]}
    page = client.get("/gamma/events", params={"limit": 500}).json()
    assert isinstance(page, list) and len(page) == 100
    assert all("markets" in e for e in page)
    r = client.get("/gamma/events/keyset", params={"limit": 1000}).json()
    assert set(r) == {"events"} and {e["id"] for e in r["events"]} == open_events
    ids = keyset_ids(client, "/gamma/events/keyset", "events", {"limit": 50, "order": "endDate"})
    assert len(ids) == len(set(ids)) and set(ids) == open_events
    series = keyset_ids(client, "/gamma/events/keyset", "events", {"series_id": 10684})
    assert len(series) == len(open_events) - 2
    r = client.get("/gamma/events", params={"series_slug": "btc-multi-strikes-weekly"})
    assert [e["id"] for e in r.json()] == ["246060"]
    r = client.get("/gamma/events", params={"slug": "democratic-presidential-nominee-2028"})
    assert [e["id"] for e in r.json()] == ["30829"]
    r = client.get("/gamma/events", params={"tag_id": 2, "closed": "true"})
    assert r.json() == []


def test_public_search(client: httpx.Client) -> None:
    r = client.get("/gamma/public-search", params={"q": "BITCOIN ABOVE"})
    body = r.json()
    assert set(body) == {"events", "tags", "profiles", "pagination"}
    assert [e["id"] for e in body["events"]] == ["246060"]
    assert body["pagination"] == {"hasMore": False, "totalResults": 1}
    # Matches market questions too.
    r = client.get("/gamma/public-search", params={"q": "stephen a. smith"})
    assert [e["id"] for e in r.json()["events"]] == ["30829"]
    r = client.get(
        "/gamma/public-search",
        params={"q": "bitcoin", "events_status": "closed", "limit_per_type": 20, "page": 2},
    )
    body = r.json()
    assert len(body["events"]) == 20 and all(e["closed"] for e in body["events"])
    assert body["pagination"] == {"hasMore": True, "totalResults": 60}
    r = client.get("/gamma/public-search", params={"q": "bitcoin", "events_status": "active"})
    assert all(not e["closed"] for e in r.json()["events"])
    assert client.get("/gamma/public-search").status_code == 422


def test_tags(client: httpx.Client) -> None:
    tags = client.get("/gamma/tags").json()
    assert sorted(t["id"] for t in tags) == ["2", "21", "235"]
    assert all(isinstance(t["id"], str) and "slug" in t for t in tags)


# --- clob ----------------------------------------------------------------------------


def token_of(world: FakeWorld, index: int = 100, side: int = 0) -> str:
    market = world.gamma_markets()[index]
    return json.loads(market["clobTokenIds"])[side]


def test_prices_history(client: httpx.Client, world: FakeWorld) -> None:
    token = token_of(world)
    end = ts(NOW)
    r = client.get(
        "/clob/prices-history",
        params={"market": token, "startTs": end - 1_296_001, "endTs": end, "fidelity": 60},
    )
    assert r.status_code == 400
    assert r.json() == {"error": "'startTs' and 'endTs' interval is too long"}
    r = client.get(
        "/clob/prices-history",
        params={"market": token, "startTs": end - 1_296_000, "endTs": end, "fidelity": 60},
    )
    assert r.status_code == 200 and len(r.json()["history"]) > 0
    r = client.get(
        "/clob/prices-history",
        params={"market": token, "startTs": end - 3600, "endTs": end, "fidelity": 1},
    )
    history = r.json()["history"]
    assert len(history) == 60 and all(end - 3600 <= p["t"] <= end for p in history)
    assert all(isinstance(p["t"], int) and isinstance(p["p"], float) for p in history)
    # startTs alone is not capped.
    r = client.get("/clob/prices-history", params={"market": token, "startTs": end - 40 * 86400})
    assert r.status_code == 200
    r = client.get("/clob/prices-history", params={"market": "123", "interval": "1d"})
    assert r.status_code == 200 and r.json() == {"history": []}


def test_prices_history_intervals(client: httpx.Client, world: FakeWorld) -> None:
    token = token_of(world)
    r = client.get("/clob/prices-history", params={"market": token, "interval": "1d"})
    history = r.json()["history"]
    assert r.status_code == 200 and history
    assert all(ts(NOW) - 86400 <= p["t"] <= ts(NOW) for p in history)
    r = client.get("/clob/prices-history", params={"market": token, "interval": "1m"})
    assert r.status_code == 400 and "minimum 'fidelity'" in r.json()["error"]
    r = client.get(
        "/clob/prices-history", params={"market": token, "interval": "1w", "fidelity": 4}
    )
    assert r.status_code == 400 and "minimum 'fidelity'" in r.json()["error"]
    r = client.get(
        "/clob/prices-history", params={"market": token, "interval": "1m", "fidelity": 10}
    )
    assert r.status_code == 200
    r = client.get(
        "/clob/prices-history", params={"market": token, "interval": "max", "fidelity": 720}
    )
    assert r.status_code == 200 and r.json()["history"]
    for bad in ({"interval": "2d"}, {}, {"interval": "1d", "startTs": 1}, {"fidelity": "x"}):
        r = client.get("/clob/prices-history", params={"market": token, **bad})
        assert r.status_code == 400 and "error" in r.json(), bad
    assert client.get("/clob/prices-history", params={"interval": "1d"}).status_code == 400


def test_book_midpoint_and_clob_market(client: httpx.Client, world: FakeWorld) -> None:
    token = token_of(world)
    book = client.get("/clob/book", params={"token_id": token}).json()
    bids = [float(level["price"]) for level in book["bids"]]
    asks = [float(level["price"]) for level in book["asks"]]
    assert bids == sorted(bids) and bids[-1] == 0.51  # best bid last
    assert asks == sorted(asks, reverse=True) and asks[-1] == 0.53  # best ask last
    assert all(isinstance(level["size"], str) for level in book["bids"] + book["asks"])
    assert client.get("/clob/midpoint", params={"token_id": token}).json() == {"mid": "0.52"}

    r = client.get("/clob/book", params={"token_id": "42"})
    assert r.status_code == 404
    assert r.json() == {"error": "No orderbook exists for the requested token id"}
    assert client.get("/clob/midpoint", params={"token_id": "42"}).status_code == 404

    condition = world.gamma_markets()[0]["conditionId"]
    r = client.get(f"/clob/markets/{condition}")
    assert r.status_code == 200 and r.json()["tokens"][0]["token_id"] == token_of(world, 0)
    assert client.get("/clob/markets/0xdead").status_code == 404


# --- binance -------------------------------------------------------------------------


def test_binance_through_ccxt(server: ReplayServer) -> None:
    exchange = ccxt.binance(
        {
            "urls": {"api": {"public": server.url + "/binance/api/v3"}},
            "options": {"fetchMarkets": {"types": ["spot"]}},
            "enableRateLimit": False,
        }
    )
    markets = exchange.load_markets()
    assert list(markets) == ["BTC/USDT"]
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01

    ticker = exchange.fetch_ticker("BTC/USDT")
    assert ticker["last"] == 81472.77 and ticker["timestamp"] == ts(NOW) * 1000

    since = ts(NOW - timedelta(hours=5)) * 1000
    rows = exchange.fetch_ohlcv("BTC/USDT", "15m", since=since, limit=8)
    assert [r[0] for r in rows] == [since + i * 900_000 for i in range(8)]
    assert all(len(r) == 6 and isinstance(r[4], float) for r in rows)
    latest = exchange.fetch_ohlcv("BTC/USDT", "1m")
    assert len(latest) == 500 and latest[-1][0] == ts(NOW) * 1000
    with pytest.raises(ccxt.BadSymbol):
        exchange.fetch_ohlcv("ETH/USDT", "1m")  # not listed: ccxt refuses locally


def test_binance_errors(client: httpx.Client) -> None:
    base = "/binance/api/v3/klines"
    r = client.get(base, params={"symbol": "ETHUSDT", "interval": "1m"})
    assert (r.status_code, r.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
    r = client.get(base, params={"symbol": "BTCUSDT", "interval": "7m"})
    assert (r.status_code, r.json()) == (400, {"code": -1120, "msg": "Invalid interval."})
    r = client.get(base, params={"symbol": "BTCUSDT", "interval": "1s"})  # world can't serve
    assert (r.status_code, r.json()["code"]) == (400, -1120)
    r = client.get(base, params={"symbol": "BTCUSDT", "interval": "1m", "limit": 5000})
    assert len(r.json()) == 1000
    r = client.get(base, params={"symbol": "BTCUSDT"})
    assert r.status_code == 400 and r.json()["code"] == -1102
    r = client.get("/binance/api/v3/ticker/24hr", params={"symbol": "ETHUSDT"})
    assert r.json() == {"code": -1121, "msg": "Invalid symbol."}
    r = client.get("/binance/api/v3/ticker/24hr")
    assert isinstance(r.json(), list) and r.json()[0]["symbol"] == "BTCUSDT"
    info = client.get("/binance/api/v3/exchangeInfo").json()
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]
    assert info["serverTime"] == ts(NOW) * 1000


# --- stats ---------------------------------------------------------------------------


def test_stats_count_route_templates_and_reset() -> None:
    world = FakeWorld()
    with (
        ReplayServer(world) as srv,
        httpx.Client(base_url=srv.url, trust_env=False) as c,
    ):
        c.get("/gamma/markets/1700100")
        c.get("/gamma/markets/1700101")
        c.get("/gamma/markets/slug/whatever")
        c.get("/gamma/markets/keyset")
        c.get("/clob/prices-history", params={"market": "1", "interval": "1h"})
        c.get("/binance/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"})
        c.get("/gamma/unknown")
        stats = c.get("/__replay/stats").json()
        assert stats == {
            "total": 7,
            "routes": {
                "(unmatched)": 1,
                "/binance/api/v3/klines": 1,
                "/clob/prices-history": 1,
                "/gamma/markets/keyset": 1,
                "/gamma/markets/slug/{slug}": 1,
                "/gamma/markets/{id}": 2,
            },
            "faults": dict.fromkeys(FAULT_KINDS, 0),
        }
        assert c.get("/__replay/stats").json()["total"] == 7  # not counted
        r = c.post("/__replay/reset")
        assert r.status_code == 200 and r.json()["total"] == 0
        assert c.get("/__replay/stats").json()["routes"] == {}
        assert srv.stats()["total"] == 0


def test_lifecycle_and_serve_forever_stops_on_sigterm() -> None:
    srv = ReplayServer(FakeWorld())
    assert srv.url == f"http://127.0.0.1:{srv.port}" and srv.port > 0  # bound before start
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    previous = signal.getsignal(signal.SIGTERM)
    seen: list[int] = []

    def probe() -> None:
        with httpx.Client(base_url=srv.url, trust_env=False) as c:
            seen.append(c.get("/gamma/status").status_code)

    threading.Timer(0.2, probe).start()
    timer.start()
    srv.serve_forever()  # returns once SIGTERM arrives
    assert seen == [200]
    assert signal.getsignal(signal.SIGTERM) is previous
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as c:
        c.get(srv.url + "/gamma/status")
    srv.stop()  # idempotent
    with pytest.raises(RuntimeError):
        srv.start()


# --- load ----------------------------------------------------------------------------


def test_burst_from_16_threads(server: ReplayServer) -> None:
    paths = [
        "/gamma/status",
        "/clob/midpoint?token_id=" + token_of(FakeWorld()),
        "/binance/api/v3/ticker/24hr?symbol=BTCUSDT",
        "/binance/api/v3/exchangeInfo",
    ]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(n: int) -> None:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as c:
            local = Counter(c.get(paths[i % len(paths)]).status_code for i in range(n))
        with lock:
            statuses.update(local)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(100,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert statuses == {200: 1600}
    # Client and server share one interpreter here; the server alone does >2,000 req/s.
    assert elapsed < 8, f"1600 requests took {elapsed:.2f}s"
