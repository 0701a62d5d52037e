"""The simulated world's CLOB answers: prices-history, order books and markets.

Prices-history has one point a minute, or with ``sparse_history_step`` one point per
step for reach/dip markets (thin, long-lived barrier markets: real exports of monthly
barrier histories are hourly), from listing to closedTime. A book has up to 6 levels a
side around the quote while the market trades, and no book exists once it closed.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.shapes import epoch_s
from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.keyed_random import unit, unit_array
from btc_tracker_pipeline.replay.simulation.market_catalogue import MarketCatalogue
from btc_tracker_pipeline.replay.simulation.market_terms import DIP, REACH, SimMarket
from btc_tracker_pipeline.replay.simulation.quotes import TICKS, Quoter
from btc_tracker_pipeline.replay.simulation.settlement import Settlement
from btc_tracker_pipeline.replay.simulation.timeline import Timeline
from btc_tracker_pipeline.replay.world import UnknownTokenError

BOOK_LEVELS = 6


class ClobAnswers:
    """CLOB bodies of one world.

    Args:
        timeline: the world's minutes.
        path: the world's BTC path.
        catalogue: the world's events.
        quoter: the world's quotes.
        settlement: who won each closed market.
        sparse_history_step: one prices-history point per this step for reach/dip
            markets (None: one a minute).
    """

    def __init__(
        self,
        timeline: Timeline,
        path: BtcPath,
        catalogue: MarketCatalogue,
        quoter: Quoter,
        settlement: Settlement,
        sparse_history_step: timedelta | None,
    ) -> None:
        self._timeline = timeline
        self._path = path
        self._catalogue = catalogue
        self._quoter = quoter
        self._settlement = settlement
        self._sparse_history_step = sparse_history_step

    def _visible_token(self, token_id: str) -> tuple[SimMarket, int, int]:
        now_min = self._timeline.now_min()
        self._path.ensure(now_min + 2)
        self._catalogue.ensure(now_min)
        found = self._catalogue.by_token.get(str(token_id))
        if found is None or found[0].listed_min > now_min:
            raise UnknownTokenError(token_id)
        return found[0], found[1], now_min

    def _history_step(self, market: SimMarket) -> int:
        """Minutes between prices-history points of ``market`` (1 unless sparse)."""
        if self._sparse_history_step is None or market.family not in (REACH, DIP):
            return 1
        return int(self._sparse_history_step / timedelta(minutes=1))

    def price_history(
        self, token_id: str, start_ts: int, end_ts: int, fidelity_min: int
    ) -> list[dict[str, Any]]:
        """Prices-history points of a token (see ``SimulatedWorld.price_history``)."""
        market, side, now_min = self._visible_token(token_id)
        fidelity = max(1, int(fidelity_min), self._history_step(market))
        origin_s = self._timeline.origin_s
        origin_min = origin_s // 60
        lo = max(int(start_ts), math.ceil(epoch_s(market.static.start_date)))
        hi = min(int(end_ts), origin_s + now_min * 60)
        if now_min >= market.closed_min:
            hi = min(hi, int(epoch_s(market.closed_at)))
        first_min = max(lo // 60, origin_min + market.listed_min)
        first = -(-first_min // fidelity) * fidelity
        grid = np.arange(first, hi // 60 + 1, fidelity, dtype=np.int64)
        grid = grid[grid - origin_min >= market.listed_min]
        if len(grid) == 0:
            return []
        keys = np.full(len(grid), market.key_hash, dtype=np.uint64)
        t = grid * 60 + (unit_array(keys, grid, 14) * 5).astype(np.int64)
        keep = (t >= lo) & (t <= hi)
        grid, t = grid[keep], t[keep]
        if len(grid) == 0:
            return []
        mid = self._quoter.quotes([market], (grid - origin_min)[None, :])["mid"][0]
        prices = mid if side == 0 else 1.0 - mid
        return [
            {"t": int(ts), "p": round(float(pr), 4)}
            for ts, pr in zip(t.tolist(), prices.tolist(), strict=True)
        ]

    def book(self, token_id: str) -> dict[str, Any]:
        """The ``/book`` body of a token (see ``SimulatedWorld.book``)."""
        market, side, now_min = self._visible_token(token_id)
        if now_min >= market.closed_min:
            raise UnknownTokenError(f"No orderbook exists for the requested token id {token_id}")
        q = self._quoter.quotes([market], np.array([[now_min]]))
        bid, ask, last = int(q["bid"][0, 0]), int(q["ask"][0, 0]), float(q["last"][0, 0])
        if side == 1:
            bid, ask, last = TICKS - ask, TICKS - bid, 1.0 - last
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        origin_s = self._timeline.origin_s
        if now_min < market.end_min:
            absolute = origin_s // 60 + now_min
            for level in range(BOOK_LEVELS):
                for ticks, levels, salt in ((bid - level, bids, 20), (ask + level, asks, 40)):
                    if 0 < ticks < TICKS:
                        u = unit(market.key_hash, absolute, salt + 2 * level + side)
                        levels.append((ticks / TICKS, round(5 + 4000 * u**3, 2)))
        return shapes.clob_book(
            market.static.condition_id,
            market.static.token_ids[side],
            (origin_s + now_min * 60) * 1000,
            bids,
            asks,
            market.static.tick,
            last,
        )

    def market(self, condition_id: str) -> dict[str, Any]:
        """The ``/markets/{condition_id}`` body (see ``SimulatedWorld.clob_market``)."""
        now_min = self._timeline.now_min()
        self._path.ensure(now_min + 2)
        self._catalogue.ensure(now_min)
        market = self._catalogue.by_condition.get(condition_id)
        if market is None or market.listed_min > now_min:
            raise KeyError(condition_id)
        closed = now_min >= market.closed_min
        if closed:
            winner = self._settlement.winner(market)
            prices = [1.0 if i == winner else 0.0 for i in (0, 1)]
            winners = [i == winner for i in (0, 1)]
        else:
            mid = float(self._quoter.quotes([market], np.array([[now_min]]))["mid"][0, 0])
            prices, winners = [mid, round(1.0 - mid, 6)], [False, False]
        return shapes.clob_market_body(
            market.static,
            closed=closed,
            accepting_orders=now_min < market.end_min,
            prices=prices,
            winners=winners,
        )
