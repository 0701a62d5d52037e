"""The simulated markets' quotes: the fair value, ``lag_s`` seconds late, distorted by
``bias`` and ``noise``, then quoted on the 0.01 tick with a 1–5¢ spread.

``lag_s`` makes the price follow its fair value late, as short up/down markets do: the
price at minute m is priced from the fair value at m − lag_s / 60 (for a fractional
minute, blended in logit space between the two whole minutes around it, linearly;
clamped to the path start), while ``fair`` stays the value at m. ``bias`` pulls prices
towards 0.5 in logit space (longshots overpriced); ``noise`` adds a deterministic logit
noise, 0.64 of its variance persistent over a 15-minute bucket and 0.36 per minute.
The three are independent. With all three 0 (the default) the mid is the fair value up
to the tick: bias 0, noise 0 and lag 0 is an efficient market no model can beat.
Spreads are wider near 0.5 and in thin markets (live up/down books average 2–3¢,
mostly wider than 2¢, like recorded ones).
Every quote is a function of (``seed``, market, minute).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay.simulation.fair_value import FairValues
from btc_tracker_pipeline.replay.simulation.keyed_random import unit, unit_array
from btc_tracker_pipeline.replay.simulation.market_terms import SimMarket

P_MIN, P_MAX = 0.005, 0.995
TICKS = 100  # 1 / orderPriceMinTickSize
# Book widths (``spread_ticks``): ticks added at 0.5, in thin markets, and noise amplitude.
SPREAD_CENTER, SPREAD_THIN, SPREAD_NOISE = 1.75, 1.2, 0.8
MAX_SPREAD_TICKS = 5
THIN_SHARE = 0.15  # the markets with the lowest liquidity draws are thin


def spread_ticks(
    price: np.ndarray, thin: np.ndarray, keys: np.ndarray, absolute: np.ndarray
) -> np.ndarray:
    """Book width in ticks, 1–5: rint(1 + 1.9 c + 0.8 thin + 1.5 (u₁ + u₂ − 1)) with
    c = 1 − |2p − 1| (1 at 0.5, 0 at the bounds), ``thin`` 1 for thin markets and u₁, u₂
    uniform per (market, minute); 1 tick within 2¢ of 0 or 1. Near 0.5 in a normal market
    the mean is about 2.9 ticks and 73 % of books are wider than 2 ticks (recorded hourly
    up/down books: 2.7¢ and 71 %)."""
    closeness = 1.0 - np.abs(2.0 * price - 1.0)
    noise = unit_array(keys, absolute, 12) + unit_array(keys, absolute, 15) - 1.0
    raw = 1.0 + SPREAD_CENTER * closeness + SPREAD_THIN * thin + SPREAD_NOISE * noise
    ticks = np.clip(np.rint(raw), 1, MAX_SPREAD_TICKS).astype(np.int64)
    return np.where((price > 0.02) & (price < 0.98), ticks, 1)


class Quoter:
    """Quotes of the simulated markets.

    Args:
        fair_values: the fair probabilities quotes are priced from.
        bias: favourite-longshot distortion, ``logit(p) = (1 - bias) logit(p_fair) + noise``.
        noise: standard deviation of the logit noise (0: none).
        origin_min: minutes from the Unix epoch to the path start.
        lag_s: seconds the price follows its fair value late (0: none).
    """

    def __init__(
        self,
        fair_values: FairValues,
        bias: float,
        noise: float,
        origin_min: int,
        lag_s: float = 0.0,
    ) -> None:
        self._fair_values = fair_values
        self._bias = bias
        self._noise = noise
        self._origin_min = origin_min
        self._lag_min = lag_s / 60.0

    def quotes(self, markets: Sequence[SimMarket], minutes: np.ndarray) -> dict[str, np.ndarray]:
        """Quotes of outcome 0 for ``markets[i]`` at path minutes ``minutes[i, :]``.

        p_fair at m − lag → logit(p) = (1 - bias) logit(p_fair) + noise(seed, market,
        minute) (``noise`` times a unit-variance draw, none when ``noise`` is 0)
        → clip to [0.005, 0.995] → bid/ask on the 0.01 tick around it, ``spread_ticks``
        apart. ``mid`` is (bid + ask) / 2, e.g. 0.555 or 0.005;
        ``bid == 0`` means an empty bid side, ``ask == 100`` an empty ask side.
        Returns arrays of shape ``minutes.shape``: fair (at m, never lagged), mid, bid,
        ask (ticks), last.
        """
        shape = minutes.shape
        k = shape[1]
        m = minutes.reshape(-1).astype(np.int64)

        def per_row(values: list[Any], dtype: Any) -> np.ndarray:
            return np.repeat(np.asarray(values, dtype=dtype), k)

        fam = per_row([mk.family for mk in markets], np.int64)
        start = per_row([mk.start_min for mk in markets], np.int64)
        end = per_row([mk.end_min for mk in markets], np.int64)
        strike = per_row([mk.strike for mk in markets], np.float64)
        keys = per_row([mk.key_hash for mk in markets], np.uint64)
        fair = self._fair_values.of(fam, start, end, strike, m)
        absolute = m + self._origin_min
        noise: np.ndarray | float = 0.0
        if self._noise > 0.0:
            # Unit variance: 12 · (0.6² + 0.8²) · Var(U - 0.5) = 1; the 15-minute part
            # carries 0.64 of it.
            noise = (
                self._noise
                * math.sqrt(12.0)
                * (
                    0.6 * (unit_array(keys, absolute, 10) - 0.5)
                    + 0.8 * (unit_array(keys, absolute // 15, 11) - 0.5)
                )
            )
        if self._lag_min > 0.0:
            priced = self._lagged_logit(fam, start, end, strike, m)
        else:
            clipped = np.clip(fair, 1e-6, 1.0 - 1e-6)
            priced = np.log(clipped / (1.0 - clipped))
        logit = (1.0 - self._bias) * priced + noise
        price = np.clip(1.0 / (1.0 + np.exp(-logit)), P_MIN, P_MAX)
        thin = per_row([unit(mk.key_hash, 0, 3) < THIN_SHARE for mk in markets], np.float64)
        spread = spread_ticks(price, thin, keys, absolute)
        bid = np.clip(np.rint(price * TICKS - spread / 2.0), 0, TICKS - spread).astype(np.int64)
        ask = bid + spread
        at_bid = ((unit_array(keys, absolute, 13) < 0.5) & (bid > 0)) | (ask >= TICKS)
        last = np.where(at_bid, bid, ask) / TICKS
        out = {
            "fair": fair,
            "mid": (bid + ask) / (2.0 * TICKS),
            "bid": bid,
            "ask": ask,
            "last": last,
        }
        return {name: values.reshape(shape) for name, values in out.items()}

    def _lagged_logit(
        self,
        fam: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        strike: np.ndarray,
        m: np.ndarray,
    ) -> np.ndarray:
        """logit of the fair value at minute ``m − lag``: between the whole minutes
        around it, ``(1 − w) logit(p[⌊t⌋]) + w logit(p[⌈t⌉])`` with ``w = t − ⌊t⌋``;
        before the path start, the value at minute 0."""
        t = np.maximum(m - self._lag_min, 0.0)
        low = np.floor(t)
        weight = t - low
        low_min = low.astype(np.int64)

        def logit_at(rows: np.ndarray | slice, minutes: np.ndarray) -> np.ndarray:
            p = self._fair_values.of(fam[rows], start[rows], end[rows], strike[rows], minutes)
            p = np.clip(p, 1e-6, 1.0 - 1e-6)
            return np.log(p / (1.0 - p))

        out = logit_at(slice(None), low_min)
        rows = np.flatnonzero(weight > 0.0)
        if len(rows):
            w = weight[rows]
            out[rows] = (1.0 - w) * out[rows] + w * logit_at(rows, low_min[rows] + 1)
        return out
