"""The simulated world's Gamma answers: every listed market and event in the real
``/markets`` and ``/events`` shapes, as of the current minute.

A market's Gamma numbers come from its quotes at the current minute (or the last
minute before it closed): prices, best bid and ask, spread, last trade, one-hour and
one-day changes; its volume grows as life^1.3 from listing to endDate. A closed
market shows its settled prices; an up/down event carries ``priceToBeat`` once its
window opened and ``finalPrice`` once it closed. Bodies are built once a minute,
and a closed event's bodies are built once and kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.shapes import EventState, MarketState
from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.keyed_random import unit
from btc_tracker_pipeline.replay.simulation.market_catalogue import MarketCatalogue
from btc_tracker_pipeline.replay.simulation.market_terms import UPDOWN, SimEvent, SimMarket
from btc_tracker_pipeline.replay.simulation.quotes import TICKS, Quoter
from btc_tracker_pipeline.replay.simulation.settlement import Settlement
from btc_tracker_pipeline.replay.simulation.timeline import Timeline

Body = dict[str, Any]


def traded_volume(market: SimMarket, minute: int) -> float:
    """Cumulative traded volume, growing as life^1.3 from listing to endDate."""
    life = max(market.end_min - market.listed_min, 1)
    frac = min(max((minute - market.listed_min) / life, 0.0), 1.0)
    return market.volume_total * frac**1.3


class GammaAnswers:
    """Gamma market and event bodies of one world.

    Args:
        timeline: the world's minutes.
        path: the world's BTC path.
        catalogue: the world's events.
        quoter: the world's quotes.
        settlement: who won each closed market.
    """

    def __init__(
        self,
        timeline: Timeline,
        path: BtcPath,
        catalogue: MarketCatalogue,
        quoter: Quoter,
        settlement: Settlement,
    ) -> None:
        self._timeline = timeline
        self._path = path
        self._catalogue = catalogue
        self._quoter = quoter
        self._settlement = settlement
        self._closed_cache: dict[str, tuple[list[Body], Body]] = {}
        self._snapshot: tuple[int, list[Body], list[Body]] | None = None

    def _market_state(
        self, market: SimMarket, ref: int, now_min: int, q: dict[str, np.ndarray], row: int
    ) -> MarketState:
        minutes = (ref, ref - 60, ref - 1440, ref - 10080)
        volume = [traded_volume(market, minute) for minute in minutes]
        mid = q["mid"][row].tolist()
        bid, ask = int(q["bid"][row, 0]), int(q["ask"][row, 0])
        closed = now_min >= market.closed_min
        changes = [mid[0] - mid[i] if minutes[i] >= market.listed_min else None for i in (1, 2)]
        common = {
            "volume": volume[0],
            "volume_24hr": volume[0] - volume[2],
            "volume_1wk": volume[0] - volume[3],
            "best_bid": bid / TICKS if bid > 0 else None,
            "best_ask": ask / TICKS,
            "last_trade": float(q["last"][row, 0]),
            "spread": (ask - bid) / TICKS,
            "competitive": market.competitive,
            "one_hour_change": changes[0],
            "one_day_change": changes[1],
        }
        if closed:
            winner = self._settlement.winner(market)
            return MarketState(
                updated_at=market.closed_at,
                outcome_prices=(1.0, 0.0) if winner == 0 else (0.0, 1.0),
                liquidity=None,
                closed=True,
                accepting_orders=False,
                closed_time=market.closed_at,
                uma_status="resolved" if market.uma_present else None,
                uma_statuses=() if market.family in UPDOWN else ("proposed",),
                **common,
            )
        now_dt = self._timeline.at(now_min)
        lag = timedelta(microseconds=int(unit(market.key_hash, now_min, 7) * 50_000_000))
        liquidity = market.liquidity_base * (0.8 + 0.4 * unit(market.key_hash, ref // 60, 8))
        return MarketState(
            updated_at=max(now_dt - lag, market.static.start_date),
            outcome_prices=(mid[0], round(1.0 - mid[0], 6)),
            liquidity=liquidity,
            closed=False,
            accepting_orders=now_min < market.end_min,
            **common,
        )

    def _event_state(
        self, event: SimEvent, states: Sequence[MarketState], now_min: int
    ) -> EventState:
        metadata = None
        if event.family in UPDOWN:
            market = event.markets[0]
            if now_min >= market.start_min:
                metadata = {"priceToBeat": float(self._path.p[market.start_min])}
                if now_min >= market.closed_min:
                    metadata["finalPrice"] = float(self._path.p[market.end_min])
        return EventState(
            updated_at=max(s.updated_at for s in states),
            closed=now_min >= event.closed_min,
            volume=sum(s.volume for s in states),
            volume_24hr=sum(s.volume_24hr for s in states),
            liquidity=sum(s.liquidity or 0.0 for s in states),
            competitive=round(0.8 + 0.2 * unit(event.key_hash, 0, 9), 12),
            metadata=metadata,
        )

    def _bodies(self, events: Sequence[SimEvent], now_min: int) -> list[tuple[list[Body], Body]]:
        """(markets with ``events``, event with ``markets``) for each event at ``now_min``."""
        markets = [mk for e in events for mk in e.markets]
        if not markets:
            return []
        refs = np.array([min(now_min, mk.closed_min - 1) for mk in markets], dtype=np.int64)
        minutes = np.maximum(refs[:, None] - np.array([0, 60, 1440]), 0)
        minutes = np.maximum(minutes, np.array([mk.listed_min for mk in markets])[:, None])
        quotes = self._quoter.quotes(markets, minutes)
        out = []
        row = 0
        for event in events:
            states = []
            for market in event.markets:
                states.append(self._market_state(market, int(refs[row]), now_min, quotes, row))
                row += 1
            event_state = self._event_state(event, states, now_min)
            embedded = [shapes.gamma_event(event.static, event_state)]
            parts = [
                shapes.gamma_market_parts(mk.static, st)
                for mk, st in zip(event.markets, states, strict=True)
            ]
            with_events = [head | {"events": embedded} | tail for head, tail in parts]
            nested = [head | tail for head, tail in parts]
            out.append((with_events, shapes.gamma_event(event.static, event_state, nested)))
        return out

    def current(self) -> tuple[list[Body], list[Body]]:
        """(every listed market, every listed event) at the current minute. The bodies
        are shared between calls: treat them as read-only."""
        now_min = self._timeline.now_min()
        if self._snapshot is not None and self._snapshot[0] == now_min:
            return self._snapshot[1], self._snapshot[2]
        self._path.ensure(now_min + 2)
        self._catalogue.ensure(now_min)
        visible = self._catalogue.listed(now_min)
        fresh = [
            e
            for e in visible
            if not (now_min >= e.closed_min and e.static.id in self._closed_cache)
        ]
        built = dict(zip((e.static.id for e in fresh), self._bodies(fresh, now_min), strict=True))
        markets: list[Body] = []
        events: list[Body] = []
        for event in visible:
            body = self._closed_cache.get(event.static.id) or built[event.static.id]
            if now_min >= event.closed_min:
                self._closed_cache[event.static.id] = body
            markets.extend(body[0])
            events.append(body[1])
        self._snapshot = (now_min, markets, events)
        return markets, events
