"""Typed errors raised by the API clients in this package.

Every error is an :class:`ApiError` carrying the URL it concerns (``None`` when a
pure parser raised it outside any request; the client fills it in afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_EXCERPT_CHARS = 200


def excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    """Shorten ``text`` to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[:limit] + "…"


def show(value: Any, limit: int = _EXCERPT_CHARS) -> str:
    """``repr`` of an offending value, shortened for an error message."""
    return excerpt(repr(value), limit)


class ApiError(Exception):
    """Base class: a request to an upstream API failed or answered nonsense."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return f"{self.message} [url: {self.url}]" if self.url else self.message


class RateLimitedError(ApiError):
    """HTTP 429 (or Binance 418): the API asked us to slow down."""

    def __init__(self, message: str, url: str | None = None, retry_after_s: float | None = None):
        super().__init__(message, url)
        self.retry_after_s = retry_after_s


class ServerError(ApiError):
    """HTTP 5xx (or an exchange that is unavailable)."""

    def __init__(self, message: str, url: str | None = None, status: int | None = None):
        super().__init__(message, url)
        self.status = status


class ClientError(ApiError):
    """HTTP 4xx other than 404 and 429: our request was rejected; not retried."""

    def __init__(
        self, message: str, url: str | None = None, status: int | None = None, body: str = ""
    ) -> None:
        super().__init__(message, url)
        self.status = status
        self.body = excerpt(body)


class NotFoundError(ApiError):
    """HTTP 404: the market, slug or route does not exist."""


class TransportError(ApiError):
    """No usable HTTP response: timeout, refused or reset connection."""


class MalformedResponseError(ApiError):
    """The body is not JSON, or a field has an unexpected shape.

    The message names the field and shows the offending value.
    """


class CursorLoopError(MalformedResponseError):
    """A keyset ``next_cursor`` repeated: following it would loop forever."""


@contextmanager
def at_url(url: str) -> Iterator[None]:
    """Attach ``url`` to a MalformedResponseError raised by a pure parser inside."""
    try:
        yield
    except MalformedResponseError as exc:
        exc.url = exc.url or url
        raise
