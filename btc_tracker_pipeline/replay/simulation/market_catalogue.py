"""Which events a simulated world has listed, and finding their markets.

Each family lists on its own schedule: up/down windows ``updown_lead`` ahead (24 h by
default; the 5-minute ones, every 5 minutes aligned to the epoch, only with
``updown_5m``), daily "above" ladders 48 h before 12:00 ET, weekly barriers 48 h before
Monday 00:00 ET and monthly ones 3 days before the 1st, 00:00 ET, each within a
minute after that. An event that would have been listed before the path starts is
listed at the path start. Events are built as the clock reaches their listing, and
kept.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.et_calendar import (
    ET,
    month_bounds,
    next_month,
    to_et,
    to_utc,
    week_bounds,
)
from btc_tracker_pipeline.replay.simulation.event_builders import EventBuilder
from btc_tracker_pipeline.replay.simulation.keyed_random import hash64, unit
from btc_tracker_pipeline.replay.simulation.market_factory import MarketFactory
from btc_tracker_pipeline.replay.simulation.market_terms import (
    ABOVE,
    MONTH,
    REACH,
    UD1H,
    UD5,
    UD15,
    UPDOWN,
    UPDOWN_SECONDS,
    SimEvent,
    SimMarket,
)
from btc_tracker_pipeline.replay.simulation.timeline import Timeline

# Up/down event keys (the keys every identifier and draw of an event is hashed from).
UPDOWN_KEYS = {UD5: "5m", UD15: "15m", UD1H: "1h"}


class MarketCatalogue:
    """The events listed so far, oldest listing first, and their markets by market id,
    condition id and token id.

    Args:
        seed: the world's ``seed``.
        timeline: the world's minutes.
        path: the world's BTC path (strikes are set from the spot at listing).
        strikes_per_ladder: markets per "above" ladder and per barrier event.
        updown_lead: how long before its window an up/down market is listed.
        updown_5m: whether the 5-minute up/down family is listed at all.
    """

    def __init__(
        self,
        seed: int,
        timeline: Timeline,
        path: BtcPath,
        strikes_per_ladder: int,
        updown_lead: timedelta,
        updown_5m: bool = False,
    ) -> None:
        self._seed = seed
        self._timeline = timeline
        self._updown_lead = updown_lead
        self._builder = EventBuilder(MarketFactory(seed, timeline, path), strikes_per_ladder)
        self.events: list[SimEvent] = []
        self._event_listed: list[int] = []
        self.by_token: dict[str, tuple[SimMarket, int]] = {}
        self.by_condition: dict[str, SimMarket] = {}
        self.by_id: dict[str, SimMarket] = {}
        # The 5-minute family comes last: the other families' events are built as before.
        self._families = (UD15, UD1H, ABOVE, REACH, MONTH) + ((UD5,) if updown_5m else ())
        self._cursors = self._initial_cursors()

    def listed(self, now_min: int) -> list[SimEvent]:
        """The events listed at or before ``now_min`` (call ``ensure`` first)."""
        return self.events[: bisect.bisect_right(self._event_listed, now_min)]

    def _initial_cursors(self) -> dict[int, Any]:
        origin = self._timeline.start
        t0 = self._timeline.origin_s
        first_day = origin.date() - timedelta(days=1)
        while to_utc(datetime(first_day.year, first_day.month, first_day.day, 12, tzinfo=ET)) <= (
            origin + timedelta(hours=1)
        ):
            first_day += timedelta(days=1)
        monday = to_et(origin).date()
        monday -= timedelta(days=monday.weekday())
        while week_bounds(monday)[1] <= origin + timedelta(days=1):
            monday += timedelta(days=7)
        month = to_et(origin).date().replace(day=1)
        while month_bounds(month)[1] <= origin + timedelta(days=1):
            month = next_month(month)
        return {
            UD5: -(-t0 // 300) * 300,
            UD15: -(-t0 // 900) * 900,
            UD1H: -(-t0 // 3600) * 3600,
            ABOVE: first_day,
            REACH: monday,
            MONTH: month,
        }

    def _listing(self, family: int, cursor: Any) -> tuple[str, datetime]:
        """Key and listing time of the next event of a family (cheap, no path needed)."""
        if family in UPDOWN:
            key = f"{UPDOWN_KEYS[family]}:{cursor}"
            natural = shapes.from_epoch_s(cursor) - self._updown_lead
        elif family == ABOVE:
            key = f"above:{cursor.isoformat()}"
            noon = datetime(cursor.year, cursor.month, cursor.day, 12, tzinfo=ET)
            natural = to_utc(noon) - timedelta(days=2)
        elif family == REACH:
            key = f"hit:{cursor.isoformat()}"
            natural = week_bounds(cursor)[0] - timedelta(days=2)
        else:
            key = f"month:{cursor.isoformat()}"
            natural = month_bounds(cursor)[0] - timedelta(days=3)
        key_hash = hash64(self._seed, key, "hash")
        start = self._timeline.start
        if natural < start:
            return key, start
        jitter = timedelta(microseconds=int(unit(key_hash, 0, 1) * 59_000_000))
        return key, natural + jitter

    def ensure(self, now_min: int) -> None:
        """Build every event listed at or before ``now_min`` (incrementally)."""
        limit = self._timeline.at(now_min)
        added = False
        for family in self._families:
            while True:
                cursor = self._cursors[family]
                key, listed = self._listing(family, cursor)
                if listed > limit:
                    break
                self._add_event(self._builder.build(family, cursor, key, listed))
                self._cursors[family] = self._advance(family, cursor)
                added = True
        if added:
            self.events.sort(key=lambda e: (e.listed_min, e.static.start_date, e.static.id))
            self._event_listed = [e.listed_min for e in self.events]

    @staticmethod
    def _advance(family: int, cursor: Any) -> Any:
        if family in UPDOWN:
            return cursor + UPDOWN_SECONDS[family]
        return {
            ABOVE: lambda c: c + timedelta(days=1),
            REACH: lambda c: c + timedelta(days=7),
            MONTH: next_month,
        }[family](cursor)

    def _add_event(self, event: SimEvent) -> None:
        self.events.append(event)
        for market in event.markets:
            self.by_id[market.static.id] = market
            self.by_condition[market.static.condition_id] = market
            for side, token in enumerate(market.static.token_ids):
                self.by_token[token] = (market, side)
