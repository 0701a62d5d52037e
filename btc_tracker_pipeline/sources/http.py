"""JSON over HTTP with timeouts, retries and 429 handling (httpx + tenacity)."""

from __future__ import annotations

import logging
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx
import pydantic
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from btc_tracker_pipeline.sources.errors import (
    ClientError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    excerpt,
)

logger = logging.getLogger(__name__)

Params = Mapping[str, Any] | Iterable[tuple[str, Any]] | None

# Errors worth another attempt: throttling, server trouble, network trouble and
# bodies that are not JSON (truncated responses behind a proxy).
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    RateLimitedError,
    ServerError,
    TransportError,
    MalformedResponseError,
)

MAX_CONCURRENT_REQUESTS = 16

# A replay server names the world it serves in this header on every answer; the real
# APIs do not send it.
WORLD_HEADER = "X-Replay-World"


class HttpSettings(pydantic.BaseModel):
    """Timeouts and retry policy shared by the HTTP clients."""

    timeout_s: float = 10.0
    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 60.0


def user_agent() -> str:
    """``btc-tracker/<installed package version>``."""
    try:
        return f"btc-tracker/{version('btc-tracker-pipeline')}"
    except PackageNotFoundError:
        return "btc-tracker/0+unknown"


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context httpx would build for ``verify=True, trust_env=False`` (certifi's
    CA bundle), built once per process: loading the bundle costs ~60 ms per client."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context(verify=True, trust_env=False)
        return _ssl_context


def make_client(settings: HttpSettings | None = None) -> httpx.Client:
    """One ``httpx.Client`` per run: no proxies from the environment, our timeout,
    a pool sized for ~16 concurrent requests."""
    settings = settings or HttpSettings()
    return httpx.Client(
        verify=shared_ssl_context(),
        timeout=httpx.Timeout(settings.timeout_s),
        limits=httpx.Limits(
            max_connections=MAX_CONCURRENT_REQUESTS,
            max_keepalive_connections=MAX_CONCURRENT_REQUESTS,
        ),
        headers={"User-Agent": user_agent(), "Accept": "application/json"},
        trust_env=False,
        follow_redirects=True,
    )


def format_param(value: Any) -> str:
    """One query value as the APIs expect it: ``true``/``false``, ISO-8601 ``Z``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        spec = "microseconds" if value.microsecond else "seconds"
        return value.isoformat(timespec=spec) + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def encode_params(params: Params) -> list[tuple[str, str]]:
    """Flatten params to ``(name, value)`` pairs; list values become repeated
    params (``id=1&id=2``, docs/apis.md §1.2) and ``None`` values are dropped."""
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        pairs.extend((name, format_param(v)) for v in values if v is not None)
    return pairs


def source_key(base_url: str, world: str | None) -> str:
    """Where data comes from, as the backfill caches key it: the API base URL, and the
    world when the server names one (a replay server)."""
    return f"{base_url} world={world}" if world else base_url


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def raise_for_status(response: httpx.Response) -> None:
    """Raise the typed error for a non-2xx response."""
    status = response.status_code
    if 200 <= status < 300:
        return
    url = str(response.request.url)
    body = excerpt(response.text)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimitedError(f"HTTP 429 rate limited: {body}", url, retry_after_s=retry_after)
    if status == 404:
        raise NotFoundError(f"HTTP 404 not found: {body}", url)
    if status >= 500:
        raise ServerError(f"HTTP {status} server error: {body}", url, status=status)
    raise ClientError(f"HTTP {status} rejected: {body}", url, status=status, body=response.text)


class _Counter:
    """A thread-safe integer counter."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._value += n

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


class RetryPolicy:
    """Tenacity wiring shared by :class:`JsonHttp` and the Binance client:
    exponential backoff with jitter, or ``Retry-After`` on 429 (capped)."""

    def __init__(
        self,
        settings: HttpSettings,
        retry_on: tuple[type[BaseException], ...],
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.retry_on = retry_on
        self.sleep = sleep
        self.on_retry = on_retry
        self._backoff = wait_exponential_jitter(
            initial=settings.backoff_initial_s,
            max=settings.backoff_max_s,
            jitter=settings.backoff_initial_s,
        )

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after_s is not None:
            return min(error.retry_after_s, self.settings.max_retry_after_s)
        return float(self._backoff(state))

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "attempt %d/%d failed (%s); retrying in %.2fs",
            state.attempt_number,
            self.settings.max_attempts,
            error,
            wait,
        )
        if self.on_retry is not None:
            self.on_retry()

    def retrying(self) -> Retrying:
        """A fresh tenacity controller (one per call, so threads never share state)."""
        return Retrying(
            stop=stop_after_attempt(max(1, self.settings.max_attempts)),
            wait=self.wait,
            retry=retry_if_exception_type(self.retry_on),
            sleep=self.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )


class JsonHttp:
    """GET JSON with retries; safe to share between threads.

    ``requests`` counts HTTP attempts, ``retries`` counts attempts after the first.
    """

    def __init__(
        self,
        client: httpx.Client,
        settings: HttpSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.settings = settings or HttpSettings()
        self._requests = _Counter()
        self._retries = _Counter()
        self._policy = RetryPolicy(self.settings, RETRYABLE_ERRORS, sleep, self._retries.add)

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (every attempt counts)."""
        return self._requests.value

    @property
    def retries(self) -> int:
        """Attempts that were retries of a failed one."""
        return self._retries.value

    def close(self) -> None:
        """Close the underlying ``httpx.Client`` (end of run)."""
        self.client.close()

    def __enter__(self) -> JsonHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get_json(self, url: str, params: Params = None) -> Any:
        """GET ``url`` and decode its JSON body, retrying transient failures.

        Raises the typed :mod:`errors` once ``max_attempts`` are spent, or at once
        for 404 and other 4xx answers.
        """
        query = encode_params(params)
        return self._policy.retrying()(self._get_once, url, query)

    def world_at(self, url: str) -> str | None:
        """The world the server at ``url`` says it serves (``WORLD_HEADER``), None from
        one that does not say (the real APIs). One GET of ``url``, retried like any other."""
        response = self._policy.retrying()(self._send, url, [])
        return response.headers.get(WORLD_HEADER)

    def _send(self, url: str, query: list[tuple[str, str]]) -> httpx.Response:
        self._requests.add()
        try:
            response = self.client.get(url, params=query)
        except httpx.TimeoutException as exc:
            raise TransportError(f"timed out: {type(exc).__name__} {exc}", url) from exc
        except httpx.RequestError as exc:
            raise TransportError(f"request failed: {type(exc).__name__} {exc}", url) from exc
        raise_for_status(response)
        return response

    def _get_once(self, url: str, query: list[tuple[str, str]]) -> Any:
        response = self._send(url, query)
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedResponseError(
                f"body is not JSON: {excerpt(response.text)!r}", str(response.request.url)
            ) from exc
