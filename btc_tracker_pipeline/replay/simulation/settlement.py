"""How the simulated markets settle on the path (docs/apis.md §3.8).

15-minute and 5-minute up/down markets settle on a "Chainlink" BTC/USD print: the path price times
``1 + CHAINLINK_NOISE_BPS · z`` with ``z`` a standard normal clipped at ±2.5, drawn
per minute. It is a few dollars off the Binance klines, so about 1–2 % of these
markets settle on the side opposite to the klines, always on a move of a few dollars.
Hourly up/down, "above" and barrier markets settle on the klines themselves.
"""

from __future__ import annotations

import numpy as np

from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.keyed_random import hash64, normal_array
from btc_tracker_pipeline.replay.simulation.market_terms import (
    ABOVE,
    REACH,
    UD5,
    UD15,
    UPDOWN,
    SimMarket,
)

# Chainlink BTC/USD vs Binance BTC/USDT at one instant: 1 bp (~$9 at $85k) per print,
# clipped at 2.5 bp, so a settled side differs from the klines only on a move under 5 bp.
CHAINLINK_NOISE_BPS = 1.0
CHAINLINK_NOISE_CLIP = 2.5


class Settlement:
    """The Chainlink feed and the winning outcome of each market.

    Args:
        seed: the world's ``seed`` (the Chainlink noise is drawn from it).
        path: the world's BTC path.
        origin_min: minutes from the Unix epoch to the path start.
    """

    def __init__(self, seed: int, path: BtcPath, origin_min: int) -> None:
        self._key = hash64(seed, "chainlink")
        self._path = path
        self._origin_min = origin_min

    def chainlink(self, minutes: np.ndarray) -> np.ndarray:
        """The simulated Chainlink BTC/USD print at the start of each path minute."""
        z = normal_array(self._key, minutes + self._origin_min, 20)
        z = np.clip(z, -CHAINLINK_NOISE_CLIP, CHAINLINK_NOISE_CLIP)
        return np.round(self._path.p[minutes] * (1.0 + CHAINLINK_NOISE_BPS * 1e-4 * z), 2)

    def updown_up(self, fam: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Whether each up/down window settled Up: end >= start on its settlement feed,
        the Chainlink print for 5- and 15-minute windows, the Binance path for hourly ones."""
        p = self._path.p
        binance = p[end] >= p[start]
        chainlink = (fam == UD15) | (fam == UD5)
        if not chainlink.any():
            return binance
        cl_up = self.chainlink(end[chainlink]) >= self.chainlink(start[chainlink])
        binance = binance.copy()
        binance[chainlink] = cl_up
        return binance

    def winner(self, market: SimMarket) -> int:
        """Index of the winning outcome by the market's rule on the simulated path."""
        p, k = self._path.p, market.strike
        if market.family in UPDOWN:
            fam, start, end = (
                np.array([v]) for v in (market.family, market.start_min, market.end_min)
            )
            won = bool(self.updown_up(fam, start, end)[0])
        elif market.family == ABOVE:
            won = p[market.end_min + 1] > k
        elif market.family == REACH:
            won = self._path.high[market.start_min : market.end_min].max() >= k
        else:
            won = self._path.low[market.start_min : market.end_min].min() <= k
        return 0 if won else 1
