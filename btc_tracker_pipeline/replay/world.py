"""What the replay server serves: the contract between a world and the HTTP layer.

A world answers in the real APIs' JSON shapes (docs/apis.md). The server does the
routing, filtering, keyset paging, limits, faults and stats; a world only knows
its data. Two worlds exist: ``simulated.SimulatedWorld`` (deterministic for a
seed) and ``recorded.RecordedWorld`` (a data directory of recorded history).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class UnknownTokenError(KeyError):
    """A CLOB token id the world does not know."""


class World(Protocol):
    """Data behind the replay server. Every datetime is naive UTC."""

    def now(self) -> datetime:
        """The world's current minute: nothing after it is visible."""
        ...

    def identity(self) -> str:
        """A stable name of the data served: two worlds with the same identity answer
        alike for every instant both have seen (the clock is not part of it). The server
        sends it on every answer, so caches of one world are never read for another."""
        ...

    def gamma_markets(self) -> list[dict[str, Any]]:
        """Every market created at or before ``now()``, in the real Gamma market
        shape as of ``now()`` (JSON-encoded string fields, string ids, mixed
        number types, absent rather than null fields), each with an ``events``
        list holding its event (without that event's ``markets``)."""
        ...

    def gamma_events(self) -> list[dict[str, Any]]:
        """Every event created at or before ``now()``, with nested ``markets``
        (market objects without their own ``events`` key)."""
        ...

    def price_history(
        self, token_id: str, start_ts: int, end_ts: int, fidelity_min: int
    ) -> list[dict[str, Any]]:
        """CLOB prices-history points ``{"t": int, "p": float}`` in
        [start_ts, end_ts], none after ``now()``; raises UnknownTokenError."""
        ...

    def book(self, token_id: str) -> dict[str, Any]:
        """CLOB ``/book`` body for the token as of ``now()``; raises UnknownTokenError."""
        ...

    def clob_market(self, condition_id: str) -> dict[str, Any]:
        """CLOB ``/markets/{condition_id}`` body (tokens with ``winner``); KeyError if unknown."""
        ...

    def klines(
        self, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        """Binance 12-element kline rows, oldest first, open time in
        [start_ms, end_ms], at most ``limit`` rows, none opening after ``now()``.
        Without ``start_ms`` the newest ``limit`` rows up to ``end_ms``/now.
        Raises ValueError for an interval it cannot serve."""
        ...

    def ticker_24h(self) -> dict[str, Any]:
        """Binance ``/api/v3/ticker/24hr?symbol=BTCUSDT`` body as of ``now()``."""
        ...
