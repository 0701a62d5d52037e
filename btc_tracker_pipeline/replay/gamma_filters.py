"""Gamma list semantics as pure functions: filters, ordering, offset and keyset paging.

Every function takes the world's objects plus the parsed query string
(``{name: [values…]}``, as from ``urllib.parse.parse_qs``) and returns the body the
real Gamma API would send. Invalid queries raise :class:`GammaValidationError`,
which the server turns into HTTP 422 ``{"type":"validation error","error":…}``.

Keyset cursors are opaque URL-safe base64 of the last item's sort key, its id and
the order they were built for. Paging is stable: the next page holds the items
that sort strictly after that position, whatever was added or removed meanwhile.
As on the real API the caller must re-send every filter with ``after_cursor``
(docs/apis.md §1.3); the server validates nothing about that and simply applies
the filters it is given. Only the ``order``/``ascending`` a cursor was built with
are checked, because the stored sort key means nothing under another order.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

Params = Mapping[str, Sequence[str]]
Item = dict[str, Any]

MARKETS_LIMIT_CAP = 100
EVENTS_LIMIT_CAP = 100
EVENTS_KEYSET_LIMIT_CAP = 500
TAGS_LIMIT_CAP = 100
MAX_OFFSET = 2000
SEARCH_DEFAULT_LIMIT = 10

OFFSET_TOO_LARGE = "offset too large, use /markets/keyset for deeper pagination"


class GammaValidationError(ValueError):
    """A query the real Gamma API rejects with HTTP 422 (docs/apis.md §1.11)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        """The 422 JSON body in Gamma's shape."""
        return {"type": "validation error", "error": self.message}


# --- value parsing ---------------------------------------------------------------------


@lru_cache(maxsize=65536)
def parse_timestamp(text: str) -> float | None:
    """Epoch seconds of an ISO-8601 / Postgres-style timestamp (naive = UTC), or None."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _number(value: Any) -> float | None:
    # volume/liquidity are strings, volumeNum & co. numbers (docs/apis.md §1.6).
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            return None
        return None if result != result else result
    return None


def _date(value: Any) -> float | None:
    return parse_timestamp(value) if isinstance(value, str) and value else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def decode_list(value: Any) -> list[Any]:
    """A JSON-encoded string list (``"[\\"a\\", \\"b\\"]"``) or a real list, leniently."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value:
        try:
            decoded = json.loads(value)
        except ValueError:
            return []
        return decoded if isinstance(decoded, list) else []
    return []


def _values(params: Params, name: str) -> list[str]:
    return list(params.get(name, ()))


def _single(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def parse_bool(params: Params, name: str) -> bool | None:
    """The boolean query parameter ``name`` or None when absent; 422 when malformed."""
    raw = _single(params, name)
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise GammaValidationError(f"invalid boolean value for '{name}'")


def parse_int(params: Params, name: str, default: int | None = None) -> int | None:
    """The integer query parameter ``name`` (``default`` when absent); 422 when malformed."""
    raw = _single(params, name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise GammaValidationError(f"invalid integer value for '{name}'") from None


def _float_param(params: Params, name: str) -> float | None:
    raw = _single(params, name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise GammaValidationError(f"invalid number value for '{name}'") from None


def _date_param(params: Params, name: str) -> float | None:
    raw = _single(params, name)
    if raw is None or raw == "":
        return None
    parsed = parse_timestamp(raw)
    if parsed is None:
        raise GammaValidationError(f"invalid date value for '{name}'")
    return parsed


def _ids(params: Params, name: str) -> set[str] | None:
    values = _values(params, name)
    if not values:
        return None
    out: set[str] = set()
    for value in values:
        try:
            out.add(str(int(value)))
        except ValueError:
            raise GammaValidationError(f"invalid integer value for '{name}'") from None
    return out


def _limit(params: Params, cap: int) -> int:
    # `limit` is silently clamped to the cap (docs/apis.md §1.2, §1.3); absent or 0 = the cap.
    limit = parse_int(params, "limit", cap) or cap
    if limit < 0:
        raise GammaValidationError("invalid limit")
    return min(limit, cap)


# --- object accessors ------------------------------------------------------------------


def _tags_of_event(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tags = event.get("tags")
    return [t for t in tags if isinstance(t, Mapping)] if isinstance(tags, list) else []


def market_tag_ids(market: Mapping[str, Any]) -> set[str]:
    """Tag ids of a market: its own ``tags`` (if any) and those of its ``events``."""
    ids = {str(t.get("id")) for t in _tags_of_event(market)}
    events = market.get("events")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, Mapping):
                ids.update(str(t.get("id")) for t in _tags_of_event(event))
    return ids


def _series_of_event(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    series = event.get("series")
    return [s for s in series if isinstance(s, Mapping)] if isinstance(series, list) else []


def _token_ids(market: Mapping[str, Any]) -> set[str]:
    return {str(t) for t in decode_list(market.get("clobTokenIds"))}


# --- filters ---------------------------------------------------------------------------

Predicate = Callable[[Mapping[str, Any]], bool]


def _common_predicates(params: Params) -> list[Predicate]:
    preds: list[Predicate] = []
    # `closed` defaults to false when omitted, also with id=/slug= (docs/apis.md §0, §1.2).
    closed = parse_bool(params, "closed")
    closed = False if closed is None else closed
    preds.append(lambda o: bool(o.get("closed", False)) is closed)
    for name in ("active", "archived"):
        wanted = parse_bool(params, name)
        if wanted is not None:
            preds.append(lambda o, n=name, w=wanted: bool(o.get(n, False)) is w)
    ids = _ids(params, "id")
    if ids is not None:
        preds.append(lambda o: str(o.get("id")) in ids)
    slugs = set(_values(params, "slug"))
    if slugs:
        preds.append(lambda o: o.get("slug") in slugs)
    for name, field, bound in (
        ("start_date_min", "startDate", "min"),
        ("start_date_max", "startDate", "max"),
        ("end_date_min", "endDate", "min"),
        ("end_date_max", "endDate", "max"),
    ):
        limit = _date_param(params, name)
        if limit is not None:
            preds.append(_bound(field, _date, limit, bound))
    return preds


def _bound(
    field: str, getter: Callable[[Any], float | None], limit: float, bound: str
) -> Predicate:
    def pred(obj: Mapping[str, Any]) -> bool:
        value = getter(obj.get(field))
        if value is None:
            return False
        return value >= limit if bound == "min" else value <= limit

    return pred


def _numeric_bounds(params: Params, spec: Iterable[tuple[str, str]]) -> list[Predicate]:
    preds: list[Predicate] = []
    for prefix, field in spec:
        for bound in ("min", "max"):
            limit = _float_param(params, f"{prefix}_{bound}")
            if limit is not None:
                preds.append(_bound(field, _number, limit, bound))
    return preds


def market_predicates(params: Params) -> list[Predicate]:
    """Predicates for the ``/markets`` filters present in ``params`` (docs/apis.md §1.2)."""
    preds = _common_predicates(params)
    tokens = _values(params, "clob_token_ids")
    if tokens:
        # Repeat the param; comma-joined or non-token values are rejected (§1.2).
        if any(not t.isdigit() for t in tokens):
            raise GammaValidationError("invalid clob token ids")
        wanted_tokens = set(tokens)
        preds.append(lambda m: not wanted_tokens.isdisjoint(_token_ids(m)))
    conditions = set(_values(params, "condition_ids"))
    if conditions:
        preds.append(lambda m: m.get("conditionId") in conditions)
    tag_ids = _ids(params, "tag_id")
    if tag_ids is not None:
        preds.append(lambda m: not tag_ids.isdisjoint(market_tag_ids(m)))
    uma = set(_values(params, "uma_resolution_status"))
    if uma:
        preds.append(lambda m: m.get("umaResolutionStatus") in uma)
    preds += _numeric_bounds(
        params, (("volume_num", "volumeNum"), ("liquidity_num", "liquidityNum"))
    )
    return preds


def event_predicates(params: Params) -> list[Predicate]:
    """Predicates for the ``/events`` filters present in ``params`` (docs/apis.md §1.5)."""
    preds = _common_predicates(params)
    tag_ids = _ids(params, "tag_id")
    if tag_ids is not None:
        preds.append(lambda e: any(str(t.get("id")) in tag_ids for t in _tags_of_event(e)))
    excluded = _ids(params, "exclude_tag_id")
    if excluded is not None:
        preds.append(lambda e: not any(str(t.get("id")) in excluded for t in _tags_of_event(e)))
    tag_slug = _single(params, "tag_slug")
    if tag_slug:
        preds.append(lambda e: any(t.get("slug") == tag_slug for t in _tags_of_event(e)))
    series_ids = _ids(params, "series_id")
    if series_ids is not None:
        preds.append(lambda e: any(str(s.get("id")) in series_ids for s in _series_of_event(e)))
    series_slugs = set(_values(params, "series_slug"))
    if series_slugs:
        preds.append(
            lambda e: (
                e.get("seriesSlug") in series_slugs
                or any(s.get("slug") in series_slugs for s in _series_of_event(e))
            )
        )
    title = _single(params, "title_search")
    if title:
        needle = title.lower()
        preds.append(lambda e: needle in str(e.get("title", "")).lower())
    preds += _numeric_bounds(params, (("volume", "volume"), ("liquidity", "liquidity")))
    return preds


def apply(items: Iterable[Item], predicates: Sequence[Predicate]) -> list[Item]:
    """Items passing every predicate, in input order."""
    return [item for item in items if all(p(item) for p in predicates)]


# --- ordering --------------------------------------------------------------------------

_NUMERIC = "number"
_DATE = "date"
_TEXT = "text"

_SHARED_FIELDS: dict[str, str] = {
    "id": _NUMERIC,
    "slug": _TEXT,
    "startDate": _DATE,
    "endDate": _DATE,
    "createdAt": _DATE,
    "updatedAt": _DATE,
    "closedTime": _DATE,
    "volume": _NUMERIC,
    "volume24hr": _NUMERIC,
    "volume1wk": _NUMERIC,
    "volume1mo": _NUMERIC,
    "volume1yr": _NUMERIC,
    "liquidity": _NUMERIC,
    "liquidityClob": _NUMERIC,
    "competitive": _NUMERIC,
}
MARKET_ORDER_FIELDS: dict[str, str] = {
    **_SHARED_FIELDS,
    "question": _TEXT,
    "eventStartTime": _DATE,
    "acceptingOrdersTimestamp": _DATE,
    "startDateIso": _DATE,
    "endDateIso": _DATE,
    "volumeNum": _NUMERIC,
    "volumeClob": _NUMERIC,
    "volume24hrClob": _NUMERIC,
    "volume1wkClob": _NUMERIC,
    "volume1moClob": _NUMERIC,
    "volume1yrClob": _NUMERIC,
    "liquidityNum": _NUMERIC,
    "bestBid": _NUMERIC,
    "bestAsk": _NUMERIC,
    "spread": _NUMERIC,
    "lastTradePrice": _NUMERIC,
    "oneHourPriceChange": _NUMERIC,
    "oneDayPriceChange": _NUMERIC,
    "oneWeekPriceChange": _NUMERIC,
    "oneMonthPriceChange": _NUMERIC,
}
EVENT_ORDER_FIELDS: dict[str, str] = {
    **_SHARED_FIELDS,
    "title": _TEXT,
    "ticker": _TEXT,
    "creationDate": _DATE,
    "startTime": _DATE,
    "openInterest": _NUMERIC,
    "commentCount": _NUMERIC,
}

_GETTERS: dict[str, Callable[[Any], Any]] = {_NUMERIC: _number, _DATE: _date, _TEXT: _string}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def parse_order(params: Params, fields: Mapping[str, str]) -> list[tuple[str, bool]]:
    """``order`` (comma-separated camelCase fields) + ``ascending`` as (field, ascending)."""
    raw = ",".join(_values(params, "order"))
    ascending = parse_bool(params, "ascending")
    ascending = True if ascending is None else ascending
    out: list[tuple[str, bool]] = []
    for name in (part.strip() for part in raw.split(",")):
        if not name:
            continue
        if name in fields:
            out.append((name, ascending))
        elif "_" in name and _camel(name) in fields:
            # snake_case names are silently ignored, not rejected (docs/apis.md §1.2).
            continue
        else:
            raise GammaValidationError("order fields are not valid")
    return out


class _Reversed:
    """Wraps a string so that it sorts in reverse (descending text order)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _raw_key(
    item: Mapping[str, Any], order: Sequence[tuple[str, bool]], fields: Mapping[str, str]
) -> list[Any]:
    return [_GETTERS[fields[name]](item.get(name)) for name, _ in order]


def _sort_key(raw: Sequence[Any], item_id: str, order: Sequence[tuple[str, bool]]) -> tuple:
    parts: list[tuple] = []
    for value, (_, ascending) in zip(raw, order, strict=True):
        if value is None:
            parts.append((1, 0))  # missing values sort last in both directions
        elif ascending:
            parts.append((0, value))
        elif isinstance(value, str):
            parts.append((0, _Reversed(value)))
        else:
            parts.append((0, -value))
    parts.append((0, int(item_id), "") if item_id.isdigit() else (1, 0, item_id))
    return tuple(parts)


def _order_signature(order: Sequence[tuple[str, bool]]) -> str:
    return ",".join(f"{name}:{'asc' if asc else 'desc'}" for name, asc in order)


def sort_items(
    items: Sequence[Item], order: Sequence[tuple[str, bool]], fields: Mapping[str, str]
) -> tuple[list[Item], list[tuple]]:
    """Items sorted by ``order`` then by numeric id (the default order), with their keys."""
    keyed = [(_sort_key(_raw_key(i, order, fields), str(i.get("id", "")), order), i) for i in items]
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed], [key for key, _ in keyed]


def encode_cursor(
    item: Mapping[str, Any], order: Sequence[tuple[str, bool]], fields: Mapping[str, str]
) -> str:
    """Opaque keyset cursor for the position just after ``item``."""
    payload = {
        "o": _order_signature(order),
        "k": _raw_key(item, order, fields),
        "id": str(item.get("id", "")),
    }
    text = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str, order: Sequence[tuple[str, bool]], fields: Mapping[str, str]
) -> tuple:
    """The sort key stored in ``cursor``; 422 when garbled or built for another order."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        raw, item_id, signature = payload["k"], payload["id"], payload["o"]
        if not isinstance(raw, list) or not isinstance(item_id, str):
            raise TypeError
        if signature != _order_signature(order):
            raise GammaValidationError("cursor does not match the requested order")
        for value, (name, _) in zip(raw, order, strict=True):
            expected = str if fields[name] == _TEXT else int | float
            if value is not None and (isinstance(value, bool) or not isinstance(value, expected)):
                raise TypeError
        return _sort_key(raw, item_id, order)
    except GammaValidationError:
        raise
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise GammaValidationError("invalid cursor") from None


# --- list endpoints --------------------------------------------------------------------


def _offset_page(
    items: Sequence[Item], params: Params, fields: Mapping[str, str], cap: int
) -> list[Item]:
    limit = _limit(params, cap)
    offset = parse_int(params, "offset", 0)
    assert offset is not None
    if offset < 0:
        raise GammaValidationError("invalid offset")
    if offset > MAX_OFFSET:
        # Deep offsets are refused (docs/apis.md §0, §1.2).
        raise GammaValidationError(OFFSET_TOO_LARGE)
    ordered, _ = sort_items(items, parse_order(params, fields), fields)
    return ordered[offset : offset + limit]


def _keyset_page(
    items: Sequence[Item], params: Params, fields: Mapping[str, str], cap: int, key: str
) -> dict[str, Any]:
    if "offset" in params:
        # "The `offset` parameter is explicitly rejected" (docs/apis.md §1.3).
        raise GammaValidationError("offset is not supported, use after_cursor")
    limit = _limit(params, cap)
    order = parse_order(params, fields)
    ordered, keys = sort_items(items, order, fields)
    # Only `after_cursor` is honoured; `cursor=` is silently ignored (docs/apis.md §1.3).
    cursor = _single(params, "after_cursor")
    start = bisect_right(keys, decode_cursor(cursor, order, fields)) if cursor else 0
    page = ordered[start : start + limit]
    body: dict[str, Any] = {key: page}
    if page and start + limit < len(ordered):
        # `next_cursor` is absent on the last page (docs/apis.md §1.3).
        body["next_cursor"] = encode_cursor(page[-1], order, fields)
    return body


def list_markets(markets: Iterable[Item], params: Params) -> list[Item]:
    """``GET /markets``: bare array, limit clamped to 100, offset ≤ 2000."""
    found = apply(markets, market_predicates(params))
    return _offset_page(found, params, MARKET_ORDER_FIELDS, MARKETS_LIMIT_CAP)


def keyset_markets(markets: Iterable[Item], params: Params) -> dict[str, Any]:
    """``GET /markets/keyset``: ``{"markets": [...], "next_cursor"?: str}``, limit ≤ 100."""
    found = apply(markets, market_predicates(params))
    return _keyset_page(found, params, MARKET_ORDER_FIELDS, MARKETS_LIMIT_CAP, "markets")


def list_events(events: Iterable[Item], params: Params) -> list[Item]:
    """``GET /events``: bare array, capped at 100 per response (docs/apis.md §1.5)."""
    found = apply(events, event_predicates(params))
    return _offset_page(found, params, EVENT_ORDER_FIELDS, EVENTS_LIMIT_CAP)


def keyset_events(events: Iterable[Item], params: Params) -> dict[str, Any]:
    """``GET /events/keyset``: ``{"events": [...], "next_cursor"?: str}``, limit ≤ 500."""
    found = apply(events, event_predicates(params))
    return _keyset_page(found, params, EVENT_ORDER_FIELDS, EVENTS_KEYSET_LIMIT_CAP, "events")


_SEARCH_SORT = {
    "volume": "volume",
    "volume_24hr": "volume24hr",
    "liquidity": "liquidity",
    "competitive": "competitive",
    "closed_time": "closedTime",
    "start_date": "startDate",
    "end_date": "endDate",
}


def public_search(events: Iterable[Item], params: Params) -> dict[str, Any]:
    """``GET /public-search`` (docs/apis.md §1.9): events whose title or a market's
    question contains ``q`` (case-insensitive), ``events_status``, ``sort``,
    ``limit_per_type`` and 1-based ``page``. Tags and profiles are always empty."""
    q = (_single(params, "q") or "").strip()
    if not q:
        raise GammaValidationError("q is required")
    needle = q.lower()
    status = (_single(params, "events_status") or "").lower()
    if status not in ("", "all", "active", "closed"):
        raise GammaValidationError("invalid events_status")
    limit = parse_int(params, "limit_per_type", SEARCH_DEFAULT_LIMIT)
    page_no = parse_int(params, "page", 1)
    assert limit is not None and page_no is not None
    if limit < 1 or page_no < 1:
        raise GammaValidationError("invalid pagination")

    def matches(event: Mapping[str, Any]) -> bool:
        if status == "active" and bool(event.get("closed", False)):
            return False
        if status == "closed" and not bool(event.get("closed", False)):
            return False
        if needle in str(event.get("title", "")).lower():
            return True
        markets = event.get("markets")
        return isinstance(markets, list) and any(
            needle in str(m.get("question", "")).lower() for m in markets if isinstance(m, Mapping)
        )

    found = [e for e in events if matches(e)]
    sort = _single(params, "sort")
    order: list[tuple[str, bool]] = []
    if sort:
        if sort not in _SEARCH_SORT:
            raise GammaValidationError("invalid sort")
        ascending = parse_bool(params, "ascending")
        order = [(_SEARCH_SORT[sort], bool(ascending))]  # search sorts descending by default
    ordered, _ = sort_items(found, order, EVENT_ORDER_FIELDS)
    start = (page_no - 1) * limit
    return {
        "events": ordered[start : start + limit],
        "tags": [],
        "profiles": [],
        "pagination": {"hasMore": start + limit < len(ordered), "totalResults": len(ordered)},
    }


def list_tags(events: Iterable[Item], params: Params) -> list[dict[str, Any]]:
    """``GET /tags``: the distinct tags of the given events, by numeric id (cap 100)."""
    seen: dict[str, dict[str, Any]] = {}
    for event in events:
        for tag in _tags_of_event(event):
            seen.setdefault(str(tag.get("id")), dict(tag))
    limit = _limit(params, TAGS_LIMIT_CAP)
    offset = parse_int(params, "offset", 0)
    assert offset is not None
    if offset < 0:
        raise GammaValidationError("invalid offset")
    ordered, _ = sort_items(list(seen.values()), [], EVENT_ORDER_FIELDS)
    return ordered[offset : offset + limit]


_DIGITS = re.compile(r"^\d+$")


def find_one(items: Iterable[Item], field: str, value: str) -> Item | None:
    """The first item whose ``field`` equals ``value`` (string comparison), or None."""
    if field == "id" and not _DIGITS.match(value):
        raise GammaValidationError("invalid id")
    for item in items:
        if str(item.get(field)) == value:
            return item
    return None
