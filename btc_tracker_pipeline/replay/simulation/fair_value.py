"""Fair probabilities of the simulated markets, priced from the path as it stood.

At minute ``m`` each market's outcome 0 (Up / Yes) is worth, with the path's own
volatility and no drift: for up/down, ``Φ(ln(S/S_open) / (σ√τ))`` inside the window
(0.5 before it); for "above K", ``N(d2)``; for a barrier not yet touched,
``2 (1 − Φ(|ln(K/S)| / (σ√τ)))``. Once the outcome is known the value is 1 or 0.
This is what every quote is priced from, and what the oracle reports.
"""

from __future__ import annotations

import math

import numpy as np

from btc_tracker_pipeline.replay.simulation.btc_path import MINUTES_PER_YEAR, BtcPath
from btc_tracker_pipeline.replay.simulation.market_terms import (
    ABOVE,
    DIP,
    REACH,
    UD1H,
    UD5,
    UD15,
)
from btc_tracker_pipeline.replay.simulation.settlement import Settlement

_ERFC = np.frompyfunc(math.erfc, 1, 1)


def phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF."""
    return 0.5 * _ERFC(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64)


class FairValues:
    """Fair probabilities from the path.

    Args:
        path: the world's BTC path.
        settlement: how up/down windows settle (for their final values).
        sigma_annual: the path's volatility, the one prices are computed with.
    """

    def __init__(self, path: BtcPath, settlement: Settlement, sigma_annual: float) -> None:
        self._path = path
        self._settlement = settlement
        self._sigma_annual = sigma_annual
        self._extremes: dict[tuple[int, int, int], np.ndarray] = {}

    def _extreme(self, start: int, end: int, up: bool) -> np.ndarray:
        """Running max of highs (``up``) or min of lows over candles [start, end)."""
        cache_key = (start, end, int(up))
        if cache_key not in self._extremes:
            if up:
                self._extremes[cache_key] = np.maximum.accumulate(self._path.high[start:end])
            else:
                self._extremes[cache_key] = np.minimum.accumulate(self._path.low[start:end])
        return self._extremes[cache_key]

    def _touched(
        self, up: bool, start: np.ndarray, end: np.ndarray, strike: np.ndarray, m: np.ndarray
    ) -> np.ndarray:
        """Whether a candle of [start, min(m, end)) or the price at ``m`` crossed ``strike``."""
        p = self._path.p
        touched = np.zeros(len(m), dtype=bool)
        for s, e in set(zip(start.tolist(), end.tolist(), strict=True)):
            rows = (start == s) & (end == e)
            ext = self._extreme(s, e, up)
            last = np.minimum(m[rows], e) - s - 1  # last fully closed candle before m
            seen = np.where(last >= 0, ext[np.clip(last, 0, len(ext) - 1)], np.nan)
            live = np.where((m[rows] >= s) & (m[rows] < e), p[m[rows]], np.nan)
            k = strike[rows]
            with np.errstate(invalid="ignore"):
                hit = (seen >= k) | (live >= k) if up else (seen <= k) | (live <= k)
            touched[rows] = hit
        return touched

    def of(
        self,
        fam: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        strike: np.ndarray,
        m: np.ndarray,
    ) -> np.ndarray:
        """Fair probability of outcome 0 (Up / Yes) at minute ``m``, row by row, for
        markets of family ``fam`` with window ``[start, end)`` and ``strike``."""
        p = self._path.p
        sig = self._sigma_annual
        spot = p[m]
        fair = np.full(len(m), 0.5)
        ud = (fam == UD15) | (fam == UD1H) | (fam == UD5)
        if ud.any():
            mm, t0, t1 = m[ud], start[ud], end[ud]
            tau = np.maximum(t1 - mm, 1e-3) / MINUTES_PER_YEAR
            # Up wins on P_end >= P_open: Phi(ln(S_t/S_open) / (sigma sqrt(tau))).
            live = phi(np.log(spot[ud] / p[t0]) / (sig * np.sqrt(tau)))
            final = self._settlement.updown_up(fam[ud], t0, t1).astype(float)
            fair[ud] = np.where(mm < t0, 0.5, np.where(mm < t1, live, final))
        above = fam == ABOVE
        if above.any():
            mm, settle, k = m[above], end[above] + 1, strike[above]
            tau = np.maximum(settle - mm, 1e-3) / MINUTES_PER_YEAR
            # N(d2), zero drift: d2 = (ln(S/K) - sigma^2 tau / 2) / (sigma sqrt(tau));
            # settles on the close of the 1m candle opening at endDate (= p[end + 1]).
            d2 = (np.log(spot[above] / k) - 0.5 * sig * sig * tau) / (sig * np.sqrt(tau))
            final = (p[settle] > k).astype(float)
            fair[above] = np.where(mm < settle, phi(d2), final)
        for family in (REACH, DIP):
            rows = fam == family
            if not rows.any():
                continue
            mm, k, ws, we = m[rows], strike[rows], start[rows], end[rows]
            touched = self._touched(family == REACH, ws, we, k, mm)
            tau = np.maximum(we - mm, 1e-3) / MINUTES_PER_YEAR
            # driftless barrier: P(touch) = 2 (1 - Phi(|ln(K/S)| / (sigma sqrt(tau))))
            barrier = np.minimum(
                1.0, 2.0 * (1.0 - phi(np.abs(np.log(k / spot[rows])) / (sig * np.sqrt(tau))))
            )
            fair[rows] = np.where(touched, 1.0, np.where(mm >= we, 0.0, barrier))
        return fair
