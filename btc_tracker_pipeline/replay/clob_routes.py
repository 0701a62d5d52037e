"""CLOB under ``/clob``: server time, prices-history, book, midpoint and markets
(docs/apis.md §2), with the real API's parameter rules and error bodies."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from btc_tracker_pipeline.replay.routing import (
    HttpError,
    Params,
    Response,
    Route,
    json_response,
    param,
    route,
)
from btc_tracker_pipeline.replay.world import UnknownTokenError

if TYPE_CHECKING:
    from btc_tracker_pipeline.replay.server import ReplayServer

# ccxt's maxPricesHistoryWindow; longer explicit spans → 400 (docs/apis.md §2.1).
MAX_PRICES_HISTORY_SPAN_S = 1_296_000
_HISTORY_INTERVALS_S: dict[str, int | None] = {
    "1h": 3_600,
    "6h": 6 * 3_600,
    "1d": 86_400,
    "1w": 7 * 86_400,
    "1m": 30 * 86_400,  # one month, not one minute (docs/apis.md §2.1)
    "max": None,
    "all": None,
}
_HISTORY_MIN_FIDELITY = {"1m": 10, "1w": 5}  # docs/apis.md §2.1


def _int_param(params: Params, name: str) -> int | None:
    raw = param(params, name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise HttpError(400, {"error": f"invalid '{name}'"}) from None


def _decimal_str(value: Decimal) -> str:
    return format(value.normalize(), "f")


def prices_history(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/clob/prices-history``: a token's price points over ``interval`` or
    ``startTs``/``endTs``, one every ``fidelity`` minutes (empty for an unknown token)."""
    market = param(params, "market")
    if not market:
        raise HttpError(400, {"error": "'market' is required"})
    fidelity = _int_param(params, "fidelity")
    fidelity = 1 if fidelity is None else fidelity  # minutes, default 1 (§2.1)
    if fidelity < 1:
        raise HttpError(400, {"error": "invalid 'fidelity'"})
    start_ts = _int_param(params, "startTs")
    end_ts = _int_param(params, "endTs")
    interval = param(params, "interval")
    now_s = server.world_now_s()
    if interval:
        if start_ts is not None or end_ts is not None:
            raise HttpError(
                400, {"error": "'interval' is mutually exclusive with 'startTs'/'endTs'"}
            )
        if interval not in _HISTORY_INTERVALS_S:
            raise HttpError(400, {"error": f"invalid 'interval': {interval}"})
        minimum = _HISTORY_MIN_FIDELITY.get(interval)
        if minimum is not None and fidelity < minimum:
            raise HttpError(
                400, {"error": f"minimum 'fidelity' for '{interval}' range is {minimum}"}
            )
        span = _HISTORY_INTERVALS_S[interval]
        start, end = (0 if span is None else now_s - span), now_s
    elif start_ts is None and end_ts is None:
        raise HttpError(400, {"error": "'interval' or 'startTs'/'endTs' is required"})
    else:
        if (
            start_ts is not None
            and end_ts is not None
            and end_ts - start_ts > MAX_PRICES_HISTORY_SPAN_S
        ):
            # docs/apis.md §2.1: explicit spans over 15 days are refused.
            raise HttpError(400, {"error": "'startTs' and 'endTs' interval is too long"})
        # startTs alone is not capped (§2.1).
        start = 0 if start_ts is None else start_ts
        end = now_s if end_ts is None else end_ts
    if end < start:
        return json_response(200, {"history": []})
    try:
        history = server.query_world("price_history", market, start, end, fidelity)
    except UnknownTokenError:
        # An unknown token is not an error: the history is just empty (§2.1).
        history = []
    return json_response(200, {"history": history})


def server_time(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/clob/time``: the world's current time in epoch seconds."""
    return json_response(200, server.world_now_s())


def _book_for(server: ReplayServer, params: Params) -> dict[str, Any]:
    token_id = param(params, "token_id")
    if not token_id:
        raise HttpError(400, {"error": "Invalid token id"})
    try:
        book = dict(server.query_world("book", token_id))
    except UnknownTokenError:
        raise HttpError(404, {"error": "No orderbook exists for the requested token id"}) from None
    # Best level LAST: bids ascending, asks descending (docs/apis.md §2.2).
    book["bids"] = sorted(book.get("bids") or [], key=lambda lv: float(lv["price"]))
    book["asks"] = sorted(book.get("asks") or [], key=lambda lv: float(lv["price"]), reverse=True)
    return book


def book(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/clob/book``: a token's order book, best level last on each side."""
    return json_response(200, _book_for(server, params))


def midpoint(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/clob/midpoint``: the middle of a token's best bid and ask."""
    levels = _book_for(server, params)
    try:
        # An empty side counts as 0 (bids) / 1 (asks): fixture mid 0.0005 = (0 + 0.001) / 2.
        best_bid = Decimal(str(levels["bids"][-1]["price"])) if levels["bids"] else Decimal(0)
        best_ask = Decimal(str(levels["asks"][-1]["price"])) if levels["asks"] else Decimal(1)
    except (InvalidOperation, KeyError) as exc:
        raise HttpError(500, {"error": f"bad book level: {exc}"}) from None
    return json_response(200, {"mid": _decimal_str((best_bid + best_ask) / 2)})


def market(server: ReplayServer, params: Params, args: dict[str, str]) -> Response:
    """``/clob/markets/{condition_id}``: a market with its tokens; 404 if unknown."""
    try:
        found = server.query_world("clob_market", args["condition_id"])
    except KeyError:
        raise HttpError(404, {"error": "market not found"}) from None
    return json_response(200, found)


ROUTES: tuple[Route, ...] = (
    route("/clob/time", server_time),
    route("/clob/prices-history", prices_history),
    route("/clob/book", book),
    route("/clob/midpoint", midpoint),
    route("/clob/markets/{condition_id}", market),
)
