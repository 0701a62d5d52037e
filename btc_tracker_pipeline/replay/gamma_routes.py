"""Gamma under ``/gamma``: market and event lists, keyset pages, single lookups,
search and tags (docs/apis.md §1).

The list semantics (filters, ordering, paging, validation) are in ``gamma_filters``;
these routes fetch the world's markets or events and hand them over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from btc_tracker_pipeline.replay import gamma_filters as gf
from btc_tracker_pipeline.replay.routing import (
    HttpError,
    Params,
    Response,
    Route,
    json_response,
    route,
)

if TYPE_CHECKING:
    from btc_tracker_pipeline.replay.server import ReplayServer


def status(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/status``: a plain-text ``OK``."""
    return Response(200, b"OK", "text/plain; charset=utf-8")


def markets(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/markets``: filtered, ordered, offset-paged markets."""
    return json_response(200, gf.list_markets(server.query_world("gamma_markets"), params))


def markets_keyset(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/markets/keyset``: one keyset page of markets."""
    return json_response(200, gf.keyset_markets(server.query_world("gamma_markets"), params))


def _lookup(server: ReplayServer, kind: str, field_name: str, value: str) -> Response:
    items = server.query_world("gamma_markets" if kind == "market" else "gamma_events")
    # Single lookups return closed objects too (docs/apis.md §1.4).
    found = gf.find_one(items, field_name, value)
    if found is None:
        raise HttpError(404, {"type": "not found error", "error": f"{kind} not found"})
    return json_response(200, found)


def market_by_id(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/markets/{id}``: one market, closed or not; 404 if unknown."""
    return _lookup(server, "market", "id", args["id"])


def market_by_slug(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/markets/slug/{slug}``: one market, closed or not; 404 if unknown."""
    return _lookup(server, "market", "slug", args["slug"])


def events(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/events``: filtered, ordered, offset-paged events with their markets."""
    return json_response(200, gf.list_events(server.query_world("gamma_events"), params))


def events_keyset(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/events/keyset``: one keyset page of events."""
    return json_response(200, gf.keyset_events(server.query_world("gamma_events"), params))


def event_by_id(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/events/{id}``: one event, closed or not; 404 if unknown."""
    return _lookup(server, "event", "id", args["id"])


def event_by_slug(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/events/slug/{slug}``: one event, closed or not; 404 if unknown."""
    return _lookup(server, "event", "slug", args["slug"])


def public_search(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/public-search``: events whose title or a market's question holds ``q``."""
    return json_response(200, gf.public_search(server.query_world("gamma_events"), params))


def tags(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/gamma/tags``: the distinct tags of the world's events."""
    return json_response(200, gf.list_tags(server.query_world("gamma_events"), params))


# Matched in order: the fixed paths before the ``{id}`` and ``{slug}`` ones.
ROUTES: tuple[Route, ...] = (
    route("/gamma/status", status),
    route("/gamma/markets", markets),
    route("/gamma/markets/keyset", markets_keyset),
    route("/gamma/markets/slug/{slug}", market_by_slug),
    route("/gamma/markets/{id}", market_by_id),
    route("/gamma/events", events),
    route("/gamma/events/keyset", events_keyset),
    route("/gamma/events/slug/{slug}", event_by_slug),
    route("/gamma/events/{id}", event_by_id),
    route("/gamma/public-search", public_search),
    route("/gamma/tags", tags),
)
