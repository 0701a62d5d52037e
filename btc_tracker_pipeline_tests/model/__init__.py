"""Tests of the model core, and the synthetic worlds they share.

``synthetic_tables`` builds ``market_indicators``, ``market_resolutions`` and market
rows for up/down-like markets whose true probability q is known: a Brownian path W
over each market's life (t ∈ [0, 1]), q(t) = Φ(W_t / √(1 − t)) = P(W_1 > 0 | W_t) (a martingale),
y = 1{W_1 > 0}. The market price is p = σ((1 − b)·logit q) + noise: b = 0 is an
efficient market, b > 0 a favourite–longshot distortion (prices pulled towards 0.5).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from btc_tracker_pipeline.features.indicators import INDICATOR_SCHEMA

START = datetime(2026, 1, 1)
_SQRT2 = math.sqrt(2.0)


def _phi(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / _SQRT2))


def synthetic_tables(
    *,
    days: int = 8,
    markets_per_hour: int = 6,
    snapshots: int = 4,
    bias: float = 0.0,
    price_noise: float = 0.01,
    struct_noise: float = 0.03,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(indicators, resolutions, markets) for ``days`` × 24 × ``markets_per_hour``
    up/down markets opening on the hour, each its own event, living
    15·(``snapshots`` + 1) minutes, snapshotted every 15 minutes after the open
    (``snapshots`` rows), resolved one minute after expiry."""
    rng = np.random.default_rng(seed)
    n = days * 24 * markets_per_hour
    steps_per_market = snapshots + 1
    life = timedelta(minutes=15 * steps_per_market)
    opens = [START + timedelta(hours=i // markets_per_hour) for i in range(n)]
    steps = rng.normal(0.0, math.sqrt(1.0 / steps_per_market), size=(n, steps_per_market))
    path = np.cumsum(steps, axis=1)  # W at 15, 30, … minutes after the open
    y = (path[:, -1] > 0).astype(np.int8)
    t = np.arange(1, snapshots + 1) / steps_per_market
    q = _phi(path[:, :snapshots] / np.sqrt(1.0 - t))
    qc = np.clip(q, 1e-4, 1 - 1e-4)
    distorted = 1.0 / (1.0 + np.exp(-(1.0 - bias) * np.log(qc / (1 - qc))))
    price = np.clip(distorted + rng.normal(0, price_noise, q.shape), 0.001, 0.999)
    struct = np.clip(q + rng.normal(0, struct_noise, q.shape), 0.0, 1.0)
    spot = 90_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))

    rows = []
    for i in range(n):
        expiry = opens[i] + life
        for k in range(snapshots):
            ts = opens[i] + timedelta(minutes=15 * (k + 1))
            rows.append(
                {
                    "window_start": ts - timedelta(minutes=15),
                    "window_end": ts,
                    "market_id": f"m{i:05d}",
                    "family": "updown_1h",
                    "snapshot_ts": ts,
                    "source": "history",
                    "market_probability": float(price[i, k]),
                    "btc_spot_price": float(spot[i]),
                    "market_edge": abs(float(price[i, k]) - 0.5),
                    "time_to_expiry_hours": (expiry - ts).total_seconds() / 3600,
                    "realized_vol": 0.5,
                    "log_moneyness": float(path[i, k]) * 0.005,
                    "barrier_touched": None,
                    # The window opened at opens[i]: every snapshot is inside it.
                    "reference_price": float(spot[i]),
                    "structural_probability": float(struct[i, k]),
                }
            )
    indicators = pl.DataFrame(rows, schema_overrides=INDICATOR_SCHEMA)
    indicators = indicators.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in INDICATOR_SCHEMA.items()
        if name not in indicators.columns
    ).select(list(INDICATOR_SCHEMA))
    ids = [f"m{i:05d}" for i in range(n)]
    expiries = [o + life for o in opens]
    resolutions = pl.DataFrame(
        {
            "window_start": [e - timedelta(minutes=14) for e in expiries],
            "market_id": ids,
            "family": ["updown_1h"] * n,
            "expiry": expiries,
            "settled_at": [e + timedelta(minutes=1) for e in expiries],
            "status": ["resolved"] * n,
            "yes_won": y.astype(bool),
            "label_check": ["agrees"] * n,
        }
    )
    markets = pl.DataFrame(
        {
            "market_id": ids,
            "event_slug": [f"ev-{m}" for m in ids],
            "start_date": [o - timedelta(hours=1) for o in opens],
            "expiry": expiries,
        }
    )
    return indicators, resolutions, markets


def edge_row(**overrides: object) -> dict:
    """A clean, tradeable edge-report input row: structured parse, fresh spot, 1¢ book
    at 50¢, fees on, a day to expiry (shared by test_edges and test_paper)."""
    base = {
        "window_start": datetime(2026, 3, 1, 10, 0),
        "market_id": "m1",
        "family": "above",
        "question": "Will the price of Bitcoin be above $64,000 on March 11?",
        "cluster": "e1",
        "market_prob": 0.50,
        "best_bid": 0.49,
        "best_ask": 0.51,
        "model_prob": 0.50,
        "structural_probability": 0.52,
        "fees_enabled": True,
        "fee_rate": 0.07,
        "fee_exponent": 1.0,
        "time_to_expiry_hours": 24.0,
        "q_spot": 1,
        "parse_source": "structured",
        "barrier_touched": False,
    }
    base.update(overrides)
    return base
