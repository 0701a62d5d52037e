"""Market and event records from their descriptions: the identifiers, listing and
closing minutes, sizes and Gamma fields every simulated market gets alike.

Identifiers are stable for a world whatever its clock: token ids, conditionId and
questionID are SHA-256 of ``(seed, market key, role)`` (tokens as ~77-digit decimals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from btc_tracker_pipeline.replay.shapes import EventStatic, MarketStatic
from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.keyed_random import digest, hash64, unit
from btc_tracker_pipeline.replay.simulation.market_terms import (
    DIP,
    REACH,
    UPDOWN,
    SimEvent,
    SimMarket,
)
from btc_tracker_pipeline.replay.simulation.market_wording import SERIES, TAG_IDS
from btc_tracker_pipeline.replay.simulation.timeline import Timeline


class MarketFactory:
    """Makes the records of one world's markets and events.

    Args:
        seed: the world's ``seed`` (identifiers and sizes are drawn from it).
        timeline: the world's minutes.
        path: the world's BTC path (grown to cover each market's life).
    """

    def __init__(self, seed: int, timeline: Timeline, path: BtcPath) -> None:
        self.seed = seed
        self.timeline = timeline
        self.path = path

    def key_hash(self, key: str) -> int:
        """The key of a market's (or an event's) own random draws."""
        return hash64(self.seed, key, "hash")

    def shape(self, key: str, salt: int) -> float:
        """A uniform draw choosing which real shape a market takes (one per ``salt``)."""
        return unit(hash64(self.seed, key, "shape"), 0, salt)

    def _identity(self, key: str) -> dict[str, Any]:
        tokens = tuple(
            str(int.from_bytes(digest(self.seed, key, "token", i), "big")) for i in (0, 1)
        )
        return {
            "condition_id": "0x" + digest(self.seed, key, "condition").hex(),
            "question_id": "0x" + digest(self.seed, key, "question").hex(),
            "token_ids": tokens,
        }

    def closing(self, key: str, end: datetime, delay: timedelta) -> datetime:
        """closedTime: ``delay`` after ``end`` and up to 30 s more."""
        return end + delay + timedelta(seconds=int(unit(self.key_hash(key), 0, 5) * 30))

    def market(
        self,
        *,
        family: int,
        key: str,
        event_key: str,
        market_id: str,
        question: str,
        slug: str,
        description: str,
        source: str,
        outcomes: tuple[str, str],
        listed: datetime,
        start: datetime,
        end: datetime,
        closed_at: datetime,
        strike: float = math.nan,
        group_title: str | None = None,
        threshold: int = 0,
        volume_scale: float = 20_000.0,
        title_only: bool = False,
        neg_risk_market_id: str | None = None,
        crypto_config: dict[str, Any] | None = None,
    ) -> SimMarket:
        """The record of one market; ``title_only`` drops its ``eventStartTime``."""
        key_hash = self.key_hash(key)
        timeline = self.timeline
        self.path.ensure(timeline.ceil(end) + 3)
        static = MarketStatic(
            id=market_id,
            question=question,
            slug=slug,
            resolution_source=source,
            description=description,
            outcomes=outcomes,
            start_date=listed,
            created_at=listed - timedelta(seconds=70),
            accepting_orders_at=listed - timedelta(seconds=67),
            end_date=end,
            event_start=start if family in UPDOWN and not title_only else None,
            group_item_title=group_title,
            group_item_threshold=str(threshold),
            automatically_resolved=family in UPDOWN,
            neg_risk_market_id=neg_risk_market_id,
            crypto_config=crypto_config,
            **self._identity(key),
        )
        # log-uniform-ish sizes: scale * exp(+-1.2)
        volume = volume_scale * math.exp(2.4 * (unit(key_hash, 0, 2) - 0.5))
        liquidity = 0.4 * volume_scale * math.exp(2.0 * (unit(key_hash, 0, 3) - 0.5))
        return SimMarket(
            static=static,
            family=family,
            event_key=event_key,
            key_hash=key_hash,
            listed_min=timeline.ceil(listed),
            start_min=max(0, timeline.floor(start)),
            end_min=timeline.floor(end),
            closed_at=closed_at,
            closed_min=timeline.ceil(closed_at),
            strike=strike,
            volume_total=volume,
            liquidity_base=liquidity,
            uma_present=unit(key_hash, 0, 4) < 0.85,
            competitive=round(0.8 + 0.2 * unit(key_hash, 0, 6), 12),
        )

    def event(
        self,
        *,
        family: int,
        key: str,
        event_id: str,
        slug: str,
        title: str,
        description: str,
        source: str,
        listed: datetime,
        end: datetime,
        markets: Sequence[SimMarket],
        start_time: datetime | None = None,
        neg_risk: bool = False,
    ) -> SimEvent:
        """The record of one event holding ``markets`` (listed with the first)."""
        series_family = REACH if family == DIP else family
        series = SERIES[series_family]
        static = EventStatic(
            id=event_id,
            slug=slug,
            title=title,
            description=description,
            resolution_source=source,
            start_date=listed,
            created_at=listed - timedelta(seconds=70),
            end_date=end,
            tag_ids=TAG_IDS[series_family],
            series=series,
            series_slug=series["slug"],
            start_time=start_time,
            show_market_images=family in UPDOWN,
            neg_risk=neg_risk,
        )
        return SimEvent(
            static=static,
            family=family,
            key_hash=hash64(self.seed, key, "event"),
            listed_min=markets[0].listed_min,
            # barriers close on their own touch: the event closes with its last market
            closed_min=max(mk.closed_min for mk in markets),
            markets=tuple(markets),
        )
