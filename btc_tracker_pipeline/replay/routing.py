"""What a replay route is and what it answers with.

A route is a GET path template (``/gamma/markets/{id}``) and a handler that takes the
server, the parsed query string and the path arguments, and returns a
:class:`Response` or raises :class:`HttpError`. The routes of each API live in
``gamma_routes``, ``clob_routes`` and ``binance_routes``; ``server`` matches them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from btc_tracker_pipeline.replay.server import ReplayServer

Params = dict[str, list[str]]


@dataclass
class Response:
    """One HTTP answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A compact-JSON response (the real APIs send compact JSON)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, "application/json", headers or {})


class HttpError(Exception):
    """Raised by a route to answer with ``status`` and a JSON ``payload``."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status, payload)
        self.status = status
        self.payload = payload


def param(params: Params, name: str) -> str | None:
    """The last value of query parameter ``name``, None if it was not sent."""
    values = params.get(name)
    return values[-1] if values else None


Handler = Callable[["ReplayServer", Params, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    """A GET route: its stats template, its matcher and its handler."""

    template: str
    pattern: re.Pattern[str]
    handler: Handler


def route(template: str, handler: Handler) -> Route:
    """The route answering ``template``, whose ``{name}`` parts match one path segment
    each and reach the handler as path arguments."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Route(template, re.compile(f"^{regex}$"), handler)
