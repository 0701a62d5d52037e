"""JsonHttp against a real loopback server: retries, 429, timeouts, typed errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from btc_tracker_pipeline.sources.errors import (
    ClientError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from btc_tracker_pipeline.sources.http import (
    HttpSettings,
    JsonHttp,
    encode_params,
    make_client,
    parse_retry_after,
)
from btc_tracker_pipeline_tests.sources.loopback import App, Reply, Request, serve

pytestmark = pytest.mark.unit


class Sleeps(list[float]):
    """Records the waits tenacity asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fast_settings(**overrides: float) -> HttpSettings:
    return HttpSettings(timeout_s=2.0, max_attempts=4, backoff_initial_s=0.01, **overrides)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(fast_settings()) as c:
        yield c


def sequence(*replies: Reply) -> App:
    """An app answering with ``replies`` in order, repeating the last one."""
    lock = threading.Lock()
    queue = list(replies)

    def app(_: Request) -> Reply:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return app


def test_success_and_user_agent(client: httpx.Client, sleeps: Sleeps) -> None:
    with serve(sequence(Reply({"ok": True}))) as server:
        http = JsonHttp(client, fast_settings(), sleep=sleeps)

        assert http.get_json(f"{server.base}/x", {"a": 1}) == {"ok": True}

    [request] = server.requests
    assert request.headers["User-Agent"].startswith("btc-tracker/")
    assert request.query == (("a", "1"),)
    assert (http.requests, http.retries, sleeps) == (1, 0, [])


def test_429_waits_retry_after_then_succeeds(client: httpx.Client, sleeps: Sleeps) -> None:
    app = sequence(Reply({"error": "slow down"}, 429, {"Retry-After": "1"}), Reply([1, 2]))
    with serve(app) as server:
        http = JsonHttp(client, fast_settings(), sleep=sleeps)

        assert http.get_json(f"{server.base}/x") == [1, 2]

    assert len(server.requests) == 2
    assert sleeps == [pytest.approx(1.0)]
    assert (http.requests, http.retries) == (2, 1)


def test_retry_after_is_capped(client: httpx.Client, sleeps: Sleeps) -> None:
    app = sequence(Reply({}, 429, {"Retry-After": "3600"}), Reply({}))
    with serve(app) as server:
        JsonHttp(client, fast_settings(max_retry_after_s=7.0), sleep=sleeps).get_json(server.base)

    assert sleeps == [7.0]


def test_429_every_time_raises_rate_limited(client: httpx.Client, sleeps: Sleeps) -> None:
    with serve(sequence(Reply({}, 429, {"Retry-After": "2"}))) as server:
        http = JsonHttp(client, fast_settings(), sleep=sleeps)
        with pytest.raises(RateLimitedError) as caught:
            http.get_json(f"{server.base}/x")

    assert caught.value.retry_after_s == 2.0
    assert caught.value.url == f"{server.base}/x"
    assert len(server.requests) == 4 and sleeps == [2.0, 2.0, 2.0]


def test_500_until_attempts_spent(client: httpx.Client, sleeps: Sleeps) -> None:
    with serve(sequence(Reply({"error": "boom"}, 500))) as server:
        http = JsonHttp(client, fast_settings(), sleep=sleeps)
        with pytest.raises(ServerError) as caught:
            http.get_json(f"{server.base}/x")

    assert caught.value.status == 500
    assert "boom" in str(caught.value)
    assert len(server.requests) == 4
    assert (http.requests, http.retries) == (4, 3)
    # Exponential backoff with jitter: 0.01, 0.02, 0.04 plus up to 0.01 each.
    for wait, base in zip(sleeps, [0.01, 0.02, 0.04], strict=True):
        assert base <= wait <= base + 0.01 + 1e-9


def test_server_recovers_after_503(client: httpx.Client, sleeps: Sleeps) -> None:
    with serve(sequence(Reply({}, 503), Reply({}, 502), Reply({"n": 3}))) as server:
        assert JsonHttp(client, fast_settings(), sleep=sleeps).get_json(server.base) == {"n": 3}

    assert len(server.requests) == 3 and len(sleeps) == 2


def test_timeout_is_retried_then_transport_error(sleeps: Sleeps) -> None:
    settings = HttpSettings(timeout_s=0.1, max_attempts=2, backoff_initial_s=0.01)
    with serve(sequence(Reply({}, delay_s=0.5))) as server, make_client(settings) as client:
        http = JsonHttp(client, settings, sleep=sleeps)
        with pytest.raises(TransportError, match="timed out"):
            http.get_json(f"{server.base}/slow")

    assert len(server.requests) == 2
    assert http.retries == 1


def test_connection_refused_is_transport_error(client: httpx.Client, sleeps: Sleeps) -> None:
    with serve(sequence(Reply({}))) as server:
        dead = server.base  # nothing listens here once the block exits
    with pytest.raises(TransportError):
        JsonHttp(client, fast_settings(), sleep=sleeps).get_json(dead)
    assert len(sleeps) == 3


def test_404_not_retried(client: httpx.Client, sleeps: Sleeps) -> None:
    app = sequence(Reply({"error": "not found"}, 404))
    with serve(app) as server, pytest.raises(NotFoundError):
        JsonHttp(client, fast_settings(), sleep=sleeps).get_json(f"{server.base}/m/1")

    assert len(server.requests) == 1 and sleeps == []


def test_other_4xx_is_client_error_not_retried(client: httpx.Client, sleeps: Sleeps) -> None:
    body = {"type": "validation error", "error": "order fields are not valid"}
    with serve(sequence(Reply(body, 422))) as server, pytest.raises(ClientError) as caught:
        JsonHttp(client, fast_settings(), sleep=sleeps).get_json(server.base)

    assert caught.value.status == 422
    assert "order fields are not valid" in caught.value.body
    assert len(server.requests) == 1 and sleeps == []


def test_non_json_body_retried(client: httpx.Client, sleeps: Sleeps) -> None:
    with serve(sequence(Reply(b'{"markets": [tru'), Reply({"markets": []}))) as server:
        assert JsonHttp(client, fast_settings(), sleep=sleeps).get_json(server.base) == {
            "markets": []
        }

    assert len(server.requests) == 2


def test_non_json_body_every_time(client: httpx.Client, sleeps: Sleeps) -> None:
    app = sequence(Reply(b"<html>cloudflare</html>"))
    with serve(app) as server, pytest.raises(MalformedResponseError, match=r"not JSON.*cloudflare"):
        JsonHttp(client, fast_settings(), sleep=sleeps).get_json(server.base)

    assert len(server.requests) == 4


def test_shared_between_threads(client: httpx.Client, sleeps: Sleeps) -> None:
    def app(request: Request) -> Reply:
        return Reply({"i": int(request.get("i") or -1)})

    with serve(app) as server:
        http = JsonHttp(client, fast_settings(), sleep=sleeps)
        results: list[int] = []
        lock = threading.Lock()

        def worker(k: int) -> None:
            for j in range(10):
                value = http.get_json(server.base, {"i": k * 100 + j})["i"]
                with lock:
                    results.append(value)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert sorted(results) == sorted(k * 100 + j for k in range(16) for j in range(10))
    assert http.requests == 160 and len(server.requests) == 160


def test_close_closes_the_client(sleeps: Sleeps) -> None:
    with JsonHttp(make_client(fast_settings()), fast_settings(), sleep=sleeps) as http:
        assert not http.client.is_closed

    assert http.client.is_closed


def test_encode_params() -> None:
    params = {
        "closed": True,
        "active": False,
        "tag_id": 235,
        "end_date_min": datetime(2026, 3, 1),
        "id": ["1", 2],
        "skipped": None,
        "slug": "a b",
    }

    assert encode_params(params) == [
        ("closed", "true"),
        ("active", "false"),
        ("tag_id", "235"),
        ("end_date_min", "2026-03-01T00:00:00Z"),
        ("id", "1"),
        ("id", "2"),
        ("slug", "a b"),
    ]
    assert encode_params([("id", "1"), ("id", "2")]) == [("id", "1"), ("id", "2")]


def test_parse_retry_after() -> None:
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
