"""Polymarket Gamma API client: market and event discovery (docs/apis.md §1)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from btc_tracker_pipeline.sources.errors import (
    CursorLoopError,
    MalformedResponseError,
    at_url,
    show,
)
from btc_tracker_pipeline.sources.http import JsonHttp
from btc_tracker_pipeline.sources.models import GammaEvent, GammaMarket

T = TypeVar("T")
R = TypeVar("R")

MARKETS_PAGE_LIMIT = 100  # §1.3: /markets/keyset caps limit at 100
EVENTS_PAGE_LIMIT = 100  # §1.3: /events/keyset allows 500; events are ~90 KB each
IDS_PER_REQUEST = 100
# id= requests in flight at once: 4 × 100 ids, far below /markets' 300 per 10 s (§1.1).
IDS_CONCURRENCY = 4

_DIGITS = re.compile(r"[0-9]+")


# --------------------------------------------------------------------------- fields


# Called with the raw market object and its parse error, to skip it instead of failing.
MalformedHandler = Callable[[Any, MalformedResponseError], None]


def malformed(field: str, expected: str, value: Any) -> MalformedResponseError:
    """The error for a field of an unexpected shape: names it, shows the value."""
    return MalformedResponseError(f"{field}: expected {expected}, got {show(value)}")


def parse_number(value: Any, field: str) -> float | None:
    """A number that may arrive as a JSON number or a numeric string; absent → None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise malformed(field, "a number", value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise malformed(field, "a number", value) from None
    else:
        raise malformed(field, "a number", value)
    if not math.isfinite(number):
        raise malformed(field, "a finite number", value)
    return number


def parse_str(value: Any, field: str) -> str | None:
    """A string field; absent → None. Ids sent as numbers are accepted."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise malformed(field, "a string", value)


def parse_bool(value: Any, field: str) -> bool | None:
    """A boolean field; absent → None."""
    if value is None or isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise malformed(field, "a boolean", value)


def parse_id(value: Any, field: str = "id") -> str:
    """A required id: a string or an integer, returned as a string."""
    if value is None or value == "":
        raise malformed(field, "an id", value)
    result = parse_str(value, field)
    assert result is not None
    return result


def utc_from_unix(seconds: float) -> datetime:
    """Naive-UTC datetime from unix seconds."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def parse_timestamp(value: Any, field: str = "timestamp") -> datetime | None:
    """Naive-UTC datetime from Gamma's formats (§1.6): ISO with ``Z`` and any
    number of fractional digits, Postgres style ``2026-03-19 23:20:15+00``
    (``closedTime``), or a date ``2026-03-22``. Absent or empty → None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise malformed(field, "an ISO-8601 timestamp", value) from None
    else:
        raise malformed(field, "an ISO-8601 timestamp", value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_json_list(value: Any, field: str) -> list[Any] | None:
    """A list sent either as a JSON-encoded string (``"[\\"Up\\", \\"Down\\"]"``, §1.6)
    or as a real list; absent → None."""
    if value is None:
        return None
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            raise malformed(field, "a JSON list", value) from None
        if isinstance(decoded, list):
            return decoded
    raise malformed(field, "a JSON list", value)


def _mapping(value: Any, field: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value
    raise malformed(field, "an object", value)


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise malformed(field, "a list", value)


def parse_tag_ids(tags: Any, field: str = "tags") -> tuple[str, ...]:
    """Ids of a list of tag objects (``/tags`` items or an event's ``tags``, §1.10)."""
    result = []
    for i, tag in enumerate(_list(tags, field)):
        item = _mapping(tag, f"{field}[{i}]")
        if item is None:
            raise malformed(f"{field}[{i}]", "a tag object", tag)
        result.append(parse_id(item.get("id"), f"{field}[{i}].id"))
    return tuple(result)


# --------------------------------------------------------------------------- parsers


def _outcome_prices(raw: Mapping[str, Any]) -> tuple[float, ...] | None:
    values = parse_json_list(raw.get("outcomePrices"), "outcomePrices")
    if values is None:
        return None
    prices = []
    for i, v in enumerate(values):
        price = parse_number(v, f"outcomePrices[{i}]")
        if price is None:
            raise malformed(f"outcomePrices[{i}]", "a price", v)
        prices.append(price)
    return tuple(prices)


def _string_list(raw: Mapping[str, Any], field: str) -> tuple[str, ...]:
    values = parse_json_list(raw.get(field), field) or []
    result = []
    for i, v in enumerate(values):
        text = parse_str(v, f"{field}[{i}]")
        if text is None:
            raise malformed(f"{field}[{i}]", "a string", v)
        result.append(text)
    return tuple(result)


def _check_aligned(
    outcomes: tuple[str, ...], prices: tuple[float, ...] | None, tokens: tuple[str, ...]
) -> None:
    # §0: index i of outcomes, outcomePrices and clobTokenIds lines up.
    if prices and outcomes and len(prices) != len(outcomes):
        raise malformed("outcomePrices", f"{len(outcomes)} prices (one per outcome)", prices)
    if tokens and outcomes and len(tokens) != len(outcomes):
        raise malformed("clobTokenIds", f"{len(outcomes)} token ids (one per outcome)", tokens)


def _market_event(raw: Mapping[str, Any], event: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # §1.6: `events` is only present on /markets responses; markets nested in an
    # event (§1.5) get it from the caller.
    events = _list(raw.get("events"), "events")
    if events:
        found = _mapping(events[0], "events[0]")
        if found is not None:
            return found
    return event or {}


def _series_slug(event: Mapping[str, Any], field: str = "event") -> str | None:
    slug = parse_str(event.get("seriesSlug"), f"{field}.seriesSlug")
    if slug:
        return slug
    series = _list(event.get("series"), f"{field}.series")
    if series:
        first = _mapping(series[0], f"{field}.series[0]") or {}
        return parse_str(first.get("slug"), f"{field}.series[0].slug")
    return None


def _event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    metadata = _mapping(event.get("eventMetadata"), "event.eventMetadata") or {}
    event_id = event.get("id")
    return {
        "event_id": None if event_id is None else parse_id(event_id, "event.id"),
        "event_slug": parse_str(event.get("slug"), "event.slug"),
        "event_title": parse_str(event.get("title"), "event.title"),
        "series_slug": _series_slug(event),
        "price_to_beat": parse_number(
            metadata.get("priceToBeat"), "event.eventMetadata.priceToBeat"
        ),
        "tag_ids": parse_tag_ids(event.get("tags"), "event.tags"),
    }


def _first_number(raw: Mapping[str, Any], *fields: str) -> float | None:
    for name in fields:
        number = parse_number(raw.get(name), name)
        if number is not None:
            return number
    return None


def parse_market(raw: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> GammaMarket:
    """Parse one Gamma market object (§1.6). ``event`` is the enclosing event for
    markets nested in ``/events`` answers; otherwise ``raw["events"][0]`` is used."""
    if not isinstance(raw, Mapping):
        raise malformed("market", "an object", raw)
    outcomes = _string_list(raw, "outcomes")
    prices = _outcome_prices(raw)
    tokens = _string_list(raw, "clobTokenIds")
    _check_aligned(outcomes, prices, tokens)
    fees = _mapping(raw.get("feeSchedule"), "feeSchedule") or {}
    crypto = _mapping(raw.get("cryptoMarketConfig"), "cryptoMarketConfig") or {}
    return GammaMarket(
        id=parse_id(raw.get("id")),
        question=parse_str(raw.get("question"), "question") or "",
        slug=parse_str(raw.get("slug"), "slug") or "",
        condition_id=parse_str(raw.get("conditionId"), "conditionId"),
        description=parse_str(raw.get("description"), "description") or "",
        outcomes=outcomes,
        outcome_prices=prices,
        token_ids=tokens,
        start_date=parse_timestamp(raw.get("startDate"), "startDate"),
        end_date=parse_timestamp(raw.get("endDate"), "endDate"),
        event_start_time=parse_timestamp(raw.get("eventStartTime"), "eventStartTime"),
        closed_time=parse_timestamp(raw.get("closedTime"), "closedTime"),
        active=bool(parse_bool(raw.get("active"), "active")),
        closed=bool(parse_bool(raw.get("closed"), "closed")),
        accepting_orders=parse_bool(raw.get("acceptingOrders"), "acceptingOrders"),
        # §1.6: `volume`/`liquidity` are strings, the *Num twins are numbers.
        volume=_first_number(raw, "volumeNum", "volume"),
        liquidity=_first_number(raw, "liquidityNum", "liquidity"),
        volume_24h=parse_number(raw.get("volume24hr"), "volume24hr"),
        best_bid=parse_number(raw.get("bestBid"), "bestBid"),
        best_ask=parse_number(raw.get("bestAsk"), "bestAsk"),
        last_trade_price=parse_number(raw.get("lastTradePrice"), "lastTradePrice"),
        spread=parse_number(raw.get("spread"), "spread"),
        group_item_title=parse_str(raw.get("groupItemTitle"), "groupItemTitle"),
        group_item_threshold=parse_str(raw.get("groupItemThreshold"), "groupItemThreshold"),
        uma_resolution_status=parse_str(raw.get("umaResolutionStatus"), "umaResolutionStatus"),
        fees_enabled=parse_bool(raw.get("feesEnabled"), "feesEnabled"),
        fee_rate=parse_number(fees.get("rate"), "feeSchedule.rate"),
        fee_exponent=parse_number(fees.get("exponent"), "feeSchedule.exponent"),
        tick_size=parse_number(raw.get("orderPriceMinTickSize"), "orderPriceMinTickSize"),
        resolution_source=parse_str(raw.get("resolutionSource"), "resolutionSource"),
        neg_risk=parse_bool(raw.get("negRisk"), "negRisk"),
        # "" on markets that are not neg-risk (fixture gamma_events_list_sample.json).
        neg_risk_market_id=parse_str(raw.get("negRiskMarketID"), "negRiskMarketID") or None,
        twap_enabled=parse_bool(crypto.get("twapEnabled"), "cryptoMarketConfig.twapEnabled"),
        twap_lookback_seconds=parse_number(
            crypto.get("twapLookbackSeconds"), "cryptoMarketConfig.twapLookbackSeconds"
        ),
        **_event_fields(_market_event(raw, event)),
    )


def parse_event(raw: Mapping[str, Any]) -> GammaEvent:
    """Parse one Gamma event with its nested markets (§1.5)."""
    if not isinstance(raw, Mapping):
        raise malformed("event", "an object", raw)
    markets = _list(raw.get("markets"), "markets")
    return GammaEvent(
        id=parse_id(raw.get("id")),
        slug=parse_str(raw.get("slug"), "slug") or "",
        title=parse_str(raw.get("title"), "title") or "",
        series_slug=_series_slug(raw, "event"),
        start_date=parse_timestamp(raw.get("startDate"), "startDate"),
        end_date=parse_timestamp(raw.get("endDate"), "endDate"),
        closed=bool(parse_bool(raw.get("closed"), "closed")),
        markets=tuple(parse_market(m, event=raw) for m in markets),
        tag_ids=parse_tag_ids(raw.get("tags")),
    )


def _check_market_ids(ids: Sequence[str]) -> list[str]:
    as_text = [str(i) for i in ids]
    bad = [i for i in as_text if not _DIGITS.fullmatch(i)]
    if bad:
        raise ValueError(f"Gamma market ids must be decimal digits, got {bad!r}")
    return list(dict.fromkeys(as_text))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _map_in_order(fn: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``[fn(x) for x in items]``, up to ``max_workers`` at a time; the first error
    (in item order) is raised once every call has finished."""
    if len(items) <= 1 or max_workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(fn, items))


# --------------------------------------------------------------------------- client


class GammaClient:
    """Gamma API client (no auth). ``base_url`` like ``https://gamma-api.polymarket.com``
    or a replay server's ``http://127.0.0.1:PORT/gamma``."""

    def __init__(self, http: JsonHttp, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    def iter_markets(
        self, on_malformed: MalformedHandler | None = None, **filters: Any
    ) -> Iterator[GammaMarket]:
        """Every market matching ``filters`` (Gamma query params, e.g. ``closed=True``,
        ``tag_id=235``, ``end_date_min=datetime``, ``id=[...]``), via ``/markets/keyset``.
        Without ``closed=True`` Gamma hides closed markets (§0).

        A market object that does not parse raises MalformedResponseError, unless
        ``on_malformed`` is given: then it is called with the raw object and the error
        and the listing goes on with the next market."""
        url = f"{self.base_url}/markets/keyset"
        for raw in self._keyset(url, "markets", MARKETS_PAGE_LIMIT, filters):
            try:
                with at_url(url):
                    market = parse_market(raw)
            except MalformedResponseError as exc:
                if on_malformed is None:
                    raise
                on_malformed(raw, exc)
                continue
            yield market

    def iter_events(self, **filters: Any) -> Iterator[GammaEvent]:
        """Every event matching ``filters`` with nested markets, via ``/events/keyset``."""
        url = f"{self.base_url}/events/keyset"
        for raw in self._keyset(url, "events", EVENTS_PAGE_LIMIT, filters):
            with at_url(url):
                event = parse_event(raw)
            yield event

    def get_market(self, market_id: str | int) -> GammaMarket:
        """One market by id (closed ones too); NotFoundError if unknown."""
        return self._get_market(f"{self.base_url}/markets/{market_id}")

    def get_market_by_slug(self, slug: str) -> GammaMarket:
        """One market by slug (closed ones too); NotFoundError if unknown."""
        return self._get_market(f"{self.base_url}/markets/slug/{slug}")

    def get_markets_by_ids(
        self,
        ids: Sequence[str],
        on_malformed: MalformedHandler | None = None,
        *,
        max_workers: int = IDS_CONCURRENCY,
    ) -> list[GammaMarket]:
        """Markets for ``ids`` in the order given, open and closed, de-duplicated.
        Ids Gamma does not know are left out. ValueError for non-digit ids.
        ``on_malformed`` as for ``iter_markets`` (called in request order).

        §0: the listing hides closed markets unless ``closed=true``, so open markets are
        asked for first and only the ids still missing with ``closed=true`` (an id found
        open is kept as found). The ≤100-id requests of each pass run ``max_workers``
        at a time on the shared connection pool."""
        wanted = _check_market_ids(ids)
        found: dict[str, GammaMarket] = {}
        for closed in (False, True):
            missing = [i for i in wanted if i not in found]
            pages = _map_in_order(
                lambda chunk, closed=closed: self._markets_with_ids(chunk, closed, on_malformed),
                list(_chunks(missing, IDS_PER_REQUEST)),
                max_workers,
            )
            for markets, bad in pages:
                for raw, exc in bad:
                    assert on_malformed is not None
                    on_malformed(raw, exc)
                for market in markets:
                    found.setdefault(market.id, market)
        return [found[i] for i in wanted if i in found]

    def _markets_with_ids(
        self, ids: Sequence[str], closed: bool, on_malformed: MalformedHandler | None
    ) -> tuple[list[GammaMarket], list[tuple[Any, MalformedResponseError]]]:
        """One ``id=`` listing; malformed objects are collected for the caller to report
        in order (or raise at once when ``on_malformed`` is None)."""
        bad: list[tuple[Any, MalformedResponseError]] = []
        collect = None if on_malformed is None else lambda raw, exc: bad.append((raw, exc))
        return list(self.iter_markets(collect, id=list(ids), closed=closed)), bad

    def search_events(self, q: str, **params: Any) -> list[GammaEvent]:
        """``/public-search`` results: events with their markets nested (§1.9)."""
        url = f"{self.base_url}/public-search"
        body = self.http.get_json(url, {"q": q, **params})
        with at_url(url):
            if not isinstance(body, Mapping):
                raise malformed("public-search", "an object", body)
            return [parse_event(raw) for raw in _list(body.get("events"), "events")]

    def _get_market(self, url: str) -> GammaMarket:
        body = self.http.get_json(url)
        with at_url(url):
            return parse_market(body)

    def _keyset(self, url: str, key: str, limit: int, filters: Mapping[str, Any]) -> Iterator[Any]:
        """Raw items of every keyset page (§1.3): all filters re-sent on every page,
        ``after_cursor=<next_cursor>``, end when ``next_cursor`` is absent/null."""
        params = {"limit": limit, **filters}
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            page_params = params if cursor is None else {**params, "after_cursor": cursor}
            body = self.http.get_json(url, page_params)
            with at_url(url):
                items, cursor = _keyset_page(body, key)
            if cursor is not None and cursor in seen:
                raise CursorLoopError(f"next_cursor repeats: {cursor!r}", url)
            yield from items
            if cursor is None:
                return
            seen.add(cursor)


def _keyset_page(body: Any, key: str) -> tuple[list[Any], str | None]:
    """Items and ``next_cursor`` of one keyset envelope ``{key: [...], "next_cursor": ...}``."""
    if not isinstance(body, Mapping):
        raise malformed(f"{key} page", "an object", body)
    if key not in body:
        raise malformed(key, "a list in the keyset envelope", sorted(body))
    items = body.get(key)
    if not isinstance(items, list):
        raise malformed(key, "a list", items)
    cursor = body.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or cursor == ""):
        raise malformed("next_cursor", "a non-empty string or null", cursor)
    return items, cursor
