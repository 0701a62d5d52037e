"""The simulated BTC/USDT path: 1-minute candles from 00:00 UTC of the first day.

A driftless geometric Brownian motion (annual volatility ``sigma_annual``) with rare
jumps, starting at $85,000. It grows lazily forward one day at a time and each day
depends only on ``seed`` and the day's index, so growing the path never changes the
candles already made. Candle ``i`` opens at ``p[i]`` and closes at ``p[i+1]``.
"""

from __future__ import annotations

import math

import numpy as np

MINUTES_PER_YEAR = 525_600
CHUNK_MINUTES = 1440
START_PRICE = 85_000.0
JUMP_PROB_PER_MINUTE = 1.0 / (3 * 1440)  # about one jump every three days
JUMP_SIGMA = 0.012


class BtcPath:
    """1-minute BTC candles from the origin, grown in one-day chunks on demand.

    ``p[i]`` is the price at the start of minute ``i`` (candle ``i`` opens at ``p[i]``
    and closes at ``p[i+1]``); high/low/volume/trades/taker are per candle.
    """

    def __init__(self, seed: int, sigma_annual: float) -> None:
        self._seed = seed
        self._sigma_minute = sigma_annual / math.sqrt(MINUTES_PER_YEAR)
        self._log = math.log(START_PRICE)
        self._last_close = START_PRICE
        self._chunks = 0
        self.p = np.array([START_PRICE])
        self.high = np.empty(0)
        self.low = np.empty(0)
        self.volume = np.empty(0)
        self.trades = np.empty(0)
        self.taker = np.empty(0)
        self.trades_cum = np.zeros(1)

    def __len__(self) -> int:
        return len(self.high)

    def ensure(self, n_candles: int) -> None:
        """Make candles ``[0, n_candles)`` (and ``p`` up to index ``n_candles``) exist."""
        if n_candles <= len(self.high):
            return
        parts = [self._chunk() for _ in range(-(-(n_candles - len(self.high)) // CHUNK_MINUTES))]
        self.p = np.concatenate([self.p, *(part[0] for part in parts)])
        self.high, self.low, self.volume, self.trades, self.taker = (
            np.concatenate([old, *(part[i] for part in parts)])
            for i, old in enumerate(
                (self.high, self.low, self.volume, self.trades, self.taker), start=1
            )
        )
        self.trades_cum = np.r_[0.0, np.cumsum(self.trades)]

    def _chunk(self) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(np.random.SeedSequence([self._seed, self._chunks, 0xB7C]))
        self._chunks += 1
        s = self._sigma_minute
        jumps = (rng.random(CHUNK_MINUTES) < JUMP_PROB_PER_MINUTE) * rng.normal(
            0.0, JUMP_SIGMA, CHUNK_MINUTES
        )
        # GBM in log space with zero drift in price: E[dlog S] = -sigma^2/2 dt.
        step = -0.5 * s * s + s * rng.standard_normal(CHUNK_MINUTES) + jumps
        logs = self._log + np.cumsum(step)
        self._log = float(logs[-1])
        close = np.round(np.exp(logs), 2)
        open_ = np.r_[self._last_close, close[:-1]]
        self._last_close = float(close[-1])
        wick = np.abs(rng.standard_normal((2, CHUNK_MINUTES))) * s * 0.6
        high = np.round(np.maximum(open_, close) * np.exp(wick[0]), 2)
        low = np.round(np.minimum(open_, close) * np.exp(-wick[1]), 2)
        volume = np.round(
            6.0 * rng.lognormal(0.0, 0.45, CHUNK_MINUTES) * (1.0 + 400.0 * np.abs(step)), 5
        )
        trades = np.maximum(1.0, np.round(volume * rng.uniform(30.0, 50.0, CHUNK_MINUTES)))
        buy_share = 0.5 + 0.15 * np.sign(close - open_) + rng.normal(0.0, 0.08, CHUNK_MINUTES)
        taker = np.round(volume * np.clip(buy_share, 0.05, 0.95), 5)
        return close, high, low, volume, trades, taker
