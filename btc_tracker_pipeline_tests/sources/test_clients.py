"""GammaClient and ClobClient against a real loopback server (routes under /gamma
and /clob, like the replay server) serving the recorded fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from btc_tracker_pipeline.sources.clob import MAX_HISTORY_SPAN, ClobClient
from btc_tracker_pipeline.sources.errors import (
    CursorLoopError,
    MalformedResponseError,
    NotFoundError,
)
from btc_tracker_pipeline.sources.gamma import GammaClient
from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client
from btc_tracker_pipeline.sources.models import PricePoint
from btc_tracker_pipeline_tests.sources.loopback import Reply, Request, routes, serve

pytestmark = pytest.mark.unit

SETTINGS = HttpSettings(timeout_s=2.0, max_attempts=3, backoff_initial_s=0.01)


def load(fixtures_dir: Path, name: str) -> Any:
    return json.loads((fixtures_dir / name).read_text())


@pytest.fixture
def http() -> Iterator[JsonHttp]:
    with make_client(SETTINGS) as client:
        yield JsonHttp(client, SETTINGS, sleep=lambda _: None)


@pytest.fixture
def markets_15m(fixtures_dir: Path) -> list[dict[str, Any]]:
    return load(fixtures_dir, "gamma_markets_btc_15m_active_nested.json")


# ---------------------------------------------------------------- Gamma keyset


def test_keyset_three_pages_resend_filters(
    http: JsonHttp, markets_15m: list[dict[str, Any]]
) -> None:
    pages = {
        None: {"markets": markets_15m[:3], "next_cursor": "c1"},
        "c1": {"markets": markets_15m[3:6], "next_cursor": "c2"},
        "c2": {"markets": markets_15m[6:]},  # last page: no next_cursor
    }

    def keyset(request: Request) -> Reply:
        return Reply(pages[request.get("after_cursor")])

    with serve(routes({"/gamma/markets/keyset": keyset})) as server:
        gamma = GammaClient(http, server.base + "/gamma/")
        markets = list(
            gamma.iter_markets(
                closed=True, tag_id=235, end_date_min=datetime(2026, 3, 1), id=["11", "22"]
            )
        )

    assert [m.id for m in markets] == [m["id"] for m in markets_15m]
    assert [r.get("after_cursor") for r in server.requests] == [None, "c1", "c2"]
    for request in server.requests:
        assert request.path == "/gamma/markets/keyset"
        assert request.get("limit") == "100"
        assert request.get("closed") == "true"
        assert request.get("tag_id") == "235"
        assert request.get("end_date_min") == "2026-03-01T00:00:00Z"
        assert request.all("id") == ["11", "22"]
        assert request.get("cursor") is None


def test_keyset_null_cursor_ends(http: JsonHttp, markets_15m: list[dict[str, Any]]) -> None:
    body = {"markets": markets_15m[:2], "next_cursor": None}
    with serve(routes({"/gamma/markets/keyset": lambda _: Reply(body)})) as server:
        assert len(list(GammaClient(http, server.base + "/gamma").iter_markets())) == 2

    assert len(server.requests) == 1


def test_keyset_repeating_cursor(http: JsonHttp, markets_15m: list[dict[str, Any]]) -> None:
    body = {"markets": markets_15m[:1], "next_cursor": "same"}
    with serve(routes({"/gamma/markets/keyset": lambda _: Reply(body)})) as server:
        gamma = GammaClient(http, server.base + "/gamma")
        with pytest.raises(CursorLoopError, match="same"):
            list(gamma.iter_markets(closed=False))

    assert len(server.requests) == 2


def test_keyset_envelope_missing(http: JsonHttp, markets_15m: list[dict[str, Any]]) -> None:
    # The legacy /markets answer (a bare array) where the keyset envelope belongs.
    with serve(routes({"/gamma/markets/keyset": lambda _: Reply(markets_15m)})) as server:
        gamma = GammaClient(http, server.base + "/gamma")
        with pytest.raises(MalformedResponseError, match="markets page") as caught:
            list(gamma.iter_markets())

    assert caught.value.url == server.base + "/gamma/markets/keyset"


def test_events_keyset(http: JsonHttp, fixtures_dir: Path) -> None:
    [event] = load(fixtures_dir, "gamma_events_list_sample.json")
    search = load(fixtures_dir, "gamma_public_search_bitcoin_above.json")
    pages = {
        None: {"events": [event], "next_cursor": "e1"},
        "e1": {"events": search["events"], "next_cursor": None},
    }

    def keyset(request: Request) -> Reply:
        return Reply(pages[request.get("after_cursor")])

    with serve(routes({"/gamma/events/keyset": keyset})) as server:
        events = list(GammaClient(http, server.base + "/gamma").iter_events(series_id=[1, 2]))

    assert [e.id for e in events] == ["30829", "246060"]
    assert [len(e.markets) for e in events] == [2, 1]
    assert events[1].markets[0].series_slug == "btc-multi-strikes-weekly"
    assert [r.all("series_id") for r in server.requests] == [["1", "2"], ["1", "2"]]
    assert [r.get("limit") for r in server.requests] == ["100", "100"]


# ---------------------------------------------------------------- Gamma lookups


def test_get_market_by_slug_and_id(http: JsonHttp, fixtures_dir: Path) -> None:
    raw = load(fixtures_dir, "gamma_market_btc_5m_by_slug.json")
    table = {
        "/gamma/markets/slug/btc-updown-5m-1774165800": lambda _: Reply(raw),
        "/gamma/markets/1669969": lambda _: Reply(raw),
    }
    with serve(routes(table)) as server:
        gamma = GammaClient(http, server.base + "/gamma")
        by_slug = gamma.get_market_by_slug("btc-updown-5m-1774165800")
        by_id = gamma.get_market("1669969")
        with pytest.raises(NotFoundError) as caught:
            gamma.get_market("404")

    assert by_slug == by_id
    assert by_slug.series_slug == "btc-up-or-down-5m"
    assert by_slug.price_to_beat == 69047.89810564333
    assert caught.value.url == server.base + "/gamma/markets/404"
    assert len(server.requests) == 3  # the 404 was not retried


def test_get_markets_by_ids_open_and_closed(http: JsonHttp, fixtures_dir: Path) -> None:
    open_market = load(fixtures_dir, "gamma_market_btc_5m_by_slug.json")
    resolved = load(fixtures_dir, "gamma_market_resolved_katana_fdv.json")
    by_closed = {"false": [open_market], "true": [resolved, open_market]}

    def keyset(request: Request) -> Reply:
        asked = set(request.all("id"))
        found = [m for m in by_closed[request.get("closed") or "false"] if m["id"] in asked]
        return Reply({"markets": found})

    ids = [str(n) for n in range(1_000_000, 1_000_148)] + ["1460332", "1669969", "1460332"]
    with serve(routes({"/gamma/markets/keyset": keyset})) as server:
        markets = GammaClient(http, server.base + "/gamma").get_markets_by_ids(ids)

    assert [m.id for m in markets] == ["1460332", "1669969"]
    assert markets[0].closed is True and markets[1].closed is False
    # Open first (100 + 50 ids, concurrently), then closed=true for the 149 ids not found open.
    sent = [(r.get("closed"), len(r.all("id"))) for r in server.requests]
    assert sorted(sent[:2]) == [("false", 50), ("false", 100)]
    assert sorted(sent[2:]) == [("true", 49), ("true", 100)]
    assert "1669969" not in {i for r in server.requests[2:] for i in r.all("id")}


def test_get_markets_by_ids_in_parallel_keeps_order_and_reports_in_order(
    http: JsonHttp, fixtures_dir: Path
) -> None:
    good = load(fixtures_dir, "gamma_market_btc_5m_by_slug.json")
    ids = [str(n) for n in range(2_000_000, 2_000_250)]  # three id= requests per pass
    slow_first = {"done": False}

    def keyset(request: Request) -> Reply:
        asked = request.all("id")
        if request.get("closed") == "true":
            return Reply({"markets": []})
        # Each chunk answers its last id with a copy of a real market and its first id
        # with a malformed one; the first chunk answers last.
        first = asked[0] == ids[0]
        delay = 0.3 if first and not slow_first["done"] else 0.0
        slow_first["done"] = slow_first["done"] or first
        markets = [good | {"id": asked[-1]}, {"id": asked[0], "outcomes": 7}]
        return Reply({"markets": markets}, delay_s=delay)

    reported: list[str] = []
    with serve(routes({"/gamma/markets/keyset": keyset})) as server:
        gamma = GammaClient(http, server.base + "/gamma")
        markets = gamma.get_markets_by_ids(
            ids, on_malformed=lambda raw, exc: reported.append(raw["id"])
        )

    assert [m.id for m in markets] == ["2000099", "2000199", "2000249"]
    assert reported == ["2000000", "2000100", "2000200"]  # request order, not arrival order
    assert len(server.requests) == 6  # 3 open + 3 closed=true for the 247 still missing


def test_get_markets_by_ids_rejects_non_digits(http: JsonHttp) -> None:
    gamma = GammaClient(http, "http://127.0.0.1:9/gamma")  # never contacted

    with pytest.raises(ValueError, match=r"btc-updown-5m-1774165800.*0x12"):
        gamma.get_markets_by_ids(["123", "btc-updown-5m-1774165800", "0x12"])
    assert http.requests == 0


def test_search_events(http: JsonHttp, fixtures_dir: Path) -> None:
    body = load(fixtures_dir, "gamma_public_search_bitcoin_above.json")
    with serve(routes({"/gamma/public-search": lambda _: Reply(body)})) as server:
        events = GammaClient(http, server.base + "/gamma").search_events(
            "bitcoin", events_status="active", limit_per_type=50
        )

    [event] = events
    assert event.markets[0].slug == "bitcoin-above-64k-on-march-11"
    [request] = server.requests
    assert request.query == (
        ("q", "bitcoin"),
        ("events_status", "active"),
        ("limit_per_type", "50"),
    )


def test_malformed_market_error_carries_url(
    http: JsonHttp, markets_15m: list[dict[str, Any]]
) -> None:
    bad = dict(markets_15m[0], outcomePrices='["0.5"')
    app = routes({"/gamma/markets/keyset": lambda _: Reply({"markets": [bad]})})
    with serve(app) as srv, pytest.raises(MalformedResponseError) as caught:
        list(GammaClient(http, srv.base + "/gamma").iter_markets())

    assert caught.value.url == srv.base + "/gamma/markets/keyset"
    assert str(caught.value).startswith("""outcomePrices: expected a JSON list, got '["0.5"'""")


# ---------------------------------------------------------------- CLOB


def history_app(step_s: int = 3600) -> Any:
    """Points every ``step_s`` in [startTs, endTs] (both ends included); 400 beyond 15 days."""

    def app(request: Request) -> Reply:
        start, end = int(request.get("startTs") or 0), int(request.get("endTs") or 0)
        if end - start > 1_296_000:
            return Reply({"error": "'startTs' and 'endTs' interval is too long"}, 400)
        first = -(-start // step_s) * step_s
        points = [
            {"t": t, "p": round(0.5 + (t % 7) / 100, 4)} for t in range(first, end + 1, step_s)
        ]
        return Reply({"history": points})

    return app


def test_prices_history_forty_days_three_requests(http: JsonHttp) -> None:
    start = datetime(2026, 1, 1)
    end = start + timedelta(days=40)
    with serve(routes({"/clob/prices-history": history_app()})) as server:
        points = ClobClient(http, server.base + "/clob").prices_history("123", start, end, 5)

    assert len(server.requests) == 3
    spans = [(int(r.get("startTs") or 0), int(r.get("endTs") or 0)) for r in server.requests]
    assert spans[0][0] == 1767225600 and spans[-1][1] == 1767225600 + 40 * 86400
    assert all(0 < b - a <= MAX_HISTORY_SPAN.total_seconds() for a, b in spans)
    assert all(r.get("market") == "123" and r.get("fidelity") == "5" for r in server.requests)
    # Window edges overlap by one point each; the merge keeps one of each.
    assert [p.t for p in points] == list(range(1767225600, 1767225600 + 40 * 86400 + 1, 3600))
    assert all(isinstance(p, PricePoint) for p in points)


def test_prices_history_short_span_one_request(http: JsonHttp) -> None:
    start = datetime(2026, 1, 1)
    with serve(routes({"/clob/prices-history": history_app(60)})) as server:
        points = ClobClient(http, server.base + "/clob").prices_history(
            "123", start, start + timedelta(minutes=15)
        )

    assert len(server.requests) == 1 and len(points) == 16


def test_book_midpoint_market(http: JsonHttp, fixtures_dir: Path) -> None:
    token = "94242206871221370391055736153305071391564432448684801902267396130896523340261"
    condition = "0x8ccc3f4951ff02c1d34b87988752b4444ad17228732780a6cf22afefe8478bb6"
    table = {
        "/clob/book": lambda _: Reply(load(fixtures_dir, "clob_book_btc_5m_up_token.json")),
        "/clob/midpoint": lambda _: Reply(load(fixtures_dir, "clob_midpoint_btc_5m_up_token.json")),
        f"/clob/markets/{condition}": lambda _: Reply(
            load(fixtures_dir, "clob_market_resolved_katana_fdv.json")
        ),
    }
    with serve(routes(table)) as server:
        clob = ClobClient(http, server.base + "/clob")
        book = clob.book(token)
        mid = clob.midpoint(token)
        market = clob.market(condition)

    assert (book.best_bid, book.best_ask, len(book.asks)) == (None, 0.001, 104)
    assert mid == 0.0005
    assert market["closed"] is True and len(market["tokens"]) == 2
    assert [r.get("token_id") for r in server.requests[:2]] == [token, token]


def test_unknown_token_book_is_not_found(http: JsonHttp) -> None:
    def book(_: Request) -> Reply:
        return Reply({"error": "No orderbook exists for the requested token id"}, 404)

    app = routes({"/clob/book": book})
    with serve(app) as server, pytest.raises(NotFoundError, match="No orderbook exists"):
        ClobClient(http, server.base + "/clob").book("1")
    assert len(server.requests) == 1
