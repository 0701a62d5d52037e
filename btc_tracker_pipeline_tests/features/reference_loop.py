"""A straightforward per-market Python loop computing the same rows as ``compute_indicators``,
and a synthetic data generator for both.

The loop is the seed tracker's approach (for each market, sort its history, walk it,
compute each feature from plain Python lists) with the definitions of
``features.indicators``, ``features.structural`` and ``features.quality`` written out
directly: the Wilder recursion instead of fixed weights, ``math.erfc`` instead of
Hart's approximation, minute-by-minute scans instead of sparse tables. Tests use it
as an independent check; ``bench/`` times it against the vectorised code.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from btc_tracker_pipeline.collect.snapshots import SNAPSHOT_SCHEMA
from btc_tracker_pipeline.collect.spot import KLINE_SCHEMA, WINDOW_SCHEMA
from btc_tracker_pipeline.features.indicators import (
    INDICATOR_SCHEMA,
    KLINE_LOOKBACK,
    LOOKBACK_WINDOWS,
)

WINDOW = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)
TOUCH_LOOKBACK = timedelta(days=8)

STRIKE_FAMILIES = ("above", "below", "range", "reach", "dip")

TRACKED_SCHEMA: dict[str, pl.DataType] = {
    "window_start": pl.Datetime("us"),
    "window_end": pl.Datetime("us"),
    "market_id": pl.String(),
    "family": pl.String(),
    "direction": pl.String(),
    "strike": pl.Float64(),
    "strike_high": pl.Float64(),
    "reference_start": pl.Datetime("us"),
    "expiry": pl.Datetime("us"),
    "start_date": pl.Datetime("us"),
}


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _rsi(prices: list[float]) -> float:
    changes = [b - a for a, b in itertools.pairwise(prices)]
    gains = [max(c, 0.0) for c in changes]
    losses = [max(-c, 0.0) for c in changes]
    avg_gain = sum(gains[:14]) / 14
    avg_loss = sum(losses[:14]) / 14
    for g, loss in zip(gains[14:], losses[14:], strict=True):
        avg_gain = (13 * avg_gain + g) / 14
        avg_loss = (13 * avg_loss + loss) / 14
    if avg_gain == 0 and avg_loss == 0:
        return 50.0
    if avg_loss == 0:
        return 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def _std(points: list[float]) -> float | None:
    if len(points) < 4:
        return None
    mean = sum(points) / len(points)
    return math.sqrt(sum((x - mean) ** 2 for x in points) / (len(points) - 1))


def _structural(
    row: dict, spot: float | None, vol: float | None, touched: bool | None, ref: float | None
) -> float | None:
    family, strike, high = row["family"], row["strike"], row["strike_high"]
    as_of, expiry = row["as_of"], row["expiry"]
    tau = None if expiry is None else (expiry - as_of).total_seconds() / (365 * 86400)
    if family.startswith("updown_"):
        if row["reference_start"] is not None and row["reference_start"] >= as_of:
            return 0.5
        if spot is None or ref is None or tau is None:
            return None
        if tau <= 0:
            return 1.0 if spot >= ref else 0.0
        if vol is None or vol <= 0:
            return None
        return _phi(math.log(spot / ref) / (vol * math.sqrt(tau)))
    if family in ("reach", "dip"):
        if touched is None:
            return None
        if touched:
            return 1.0
        if tau is None:
            return None
        if tau <= 0:
            return 0.0
        if spot is None or vol is None or vol <= 0 or strike is None:
            return None
        z = math.log(strike / spot) / (vol * math.sqrt(tau))
        p = 2.0 * (1.0 - _phi(z)) if family == "reach" else 2.0 * _phi(z)
        return min(max(p, 0.0), 1.0)
    if family not in ("above", "below", "range") or spot is None or tau is None:
        return None

    def above(k: float) -> float | None:
        if tau <= 0:
            return 1.0 if spot > k else 0.0
        if vol is None or vol <= 0:
            return None
        sd = vol * math.sqrt(tau)
        return _phi((math.log(spot / k) - vol * vol * tau / 2) / sd)

    if strike is None:
        return None
    p_low = above(strike)
    if p_low is None:
        return None
    if family == "above":
        return p_low
    if family == "below":
        return 1.0 - p_low
    if high is None:
        return None
    p_high = above(high)
    return None if p_high is None else min(max(p_low - p_high, 0.0), 1.0)


def reference_indicators(
    snapshots: pl.DataFrame,
    tracked: pl.DataFrame,
    spot_windows: pl.DataFrame,
    klines: pl.DataFrame,
    target_starts: Sequence[datetime],
) -> pl.DataFrame:
    """``compute_indicators`` as a plain per-market loop (same inputs, same rows)."""
    targets = set(target_starts)
    history: dict[str, dict[datetime, dict]] = defaultdict(dict)
    for snap in snapshots.iter_rows(named=True):
        history[snap["market_id"]][snap["window_start"]] = snap
    terms = {(r["window_start"], r["market_id"]): r for r in tracked.iter_rows(named=True)}
    spots = {r["window_start"]: r for r in spot_windows.iter_rows(named=True)}
    bars = {r["open_time"]: r for r in klines.iter_rows(named=True)}
    vol_cache: dict[datetime, float | None] = {}
    touch_cache: dict[tuple[datetime, datetime], tuple[float | None, float | None]] = {}

    def realized(end: datetime) -> float | None:
        if end not in vol_cache:
            num = den = 0.0
            count = 0
            for age in range(1440):
                bar = bars.get(end - (age + 1) * MINUTE)
                if bar is None:
                    continue
                hl = math.log(bar["high"] / bar["low"])
                co = math.log(bar["close"] / bar["open"])
                weight = 0.5 ** (age / 360)
                num += weight * (0.5 * hl * hl - (2 * math.log(2) - 1) * co * co)
                den += weight
                count += 1
            vol_cache[end] = math.sqrt(num / den * 525_600) if count >= 60 else None
        return vol_cache[end]

    # High/low per 15-minute bucket, so a touch scan walks buckets, not minutes.
    buckets: dict[datetime, tuple[float, float]] = {}
    for t, bar in bars.items():
        b = t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
        hi, lo = buckets.get(b, (bar["high"], bar["low"]))
        buckets[b] = (max(hi, bar["high"]), min(lo, bar["low"]))

    def extremes(start: datetime, end: datetime) -> tuple[float | None, float | None]:
        if (start, end) not in touch_cache:
            highs, lows = [], []
            t = start
            if t.second or t.microsecond:
                t = t.replace(second=0, microsecond=0) + MINUTE
            while t < end:
                if t.minute % 15 == 0 and t + WINDOW <= end:
                    if t in buckets:
                        highs.append(buckets[t][0])
                        lows.append(buckets[t][1])
                    t += WINDOW
                    continue
                if t in bars:
                    highs.append(bars[t]["high"])
                    lows.append(bars[t]["low"])
                t += MINUTE
            touch_cache[(start, end)] = (max(highs, default=None), min(lows, default=None))
        return touch_cache[(start, end)]

    out = []
    for market_id, snaps in history.items():
        for ws in sorted(snaps):
            term = terms.get((ws, market_id))
            if ws not in targets or term is None:
                continue
            snap = snaps[ws]
            end = snap["window_end"]

            def price(n: int, ws: datetime = ws, snaps: dict = snaps) -> float | None:
                row = snaps.get(ws - n * WINDOW)
                return None if row is None else row["yes_price"]

            p = snap["yes_price"]
            p1, p4 = price(1), price(4)
            previous = [snaps.get(ws - n * WINDOW) for n in range(1, 9)]
            volumes = [r["volume"] for r in previous if r is not None and r["volume"] is not None]
            mean_volume = sum(volumes) / len(volumes) if volumes else None
            spike = None
            if snap["volume"] is not None and mean_volume:
                spike = snap["volume"] / mean_volume - 1.0
            points = [x for x in (price(n) for n in range(8)) if x is not None]
            series = [price(n) for n in range(28, -1, -1)]
            rsi = None if any(x is None for x in series) else _rsi(series)

            spot_row = spots.get(ws)
            spot = spot_row["spot_price"] if spot_row else None
            # Spot-dependent structural values as of the quote: a history quote older
            # than the window end sees the close of the kline closed at its minute.
            quote_ts = snap["quote_ts"]
            as_of = end
            if quote_ts is not None and quote_ts < end:
                as_of = quote_ts.replace(second=0, microsecond=0)
            quote_spot = spot
            if as_of < end and as_of - MINUTE in bars:
                quote_spot = bars[as_of - MINUTE]["close"]
            expiry = term["expiry"]
            family = term["family"]
            vol = realized(end)
            ref = None
            reference_start = term["reference_start"]
            if family.startswith("updown_") and reference_start is not None:
                opened = reference_start.replace(second=0, microsecond=0)
                if end - TOUCH_LOOKBACK <= opened < as_of and opened in bars:
                    ref = bars[opened]["open"]
            touched = None
            strike = term["strike"]
            if family in ("reach", "dip") and strike is not None:
                start = term["reference_start"] or term["start_date"] or end - TOUCH_LOOKBACK
                if start >= end:
                    touched = False
                else:
                    hi, lo = extremes(start, end)
                    if family == "reach":
                        touched = None if hi is None else hi >= strike
                    else:
                        touched = None if lo is None else lo <= strike
            moneyness = None
            base = ref if family.startswith("updown_") else strike
            if family in STRIKE_FAMILIES or family.startswith("updown_"):
                moneyness = (
                    None if quote_spot is None or base is None else math.log(quote_spot / base)
                )
            full = {**term, "window_end": end, "as_of": as_of}

            bid, ask = snap["best_bid"], snap["best_ask"]
            q = {
                "q_fields": int(
                    p is not None and snap["volume"] is not None and snap["liquidity"] is not None
                ),
                "q_fresh": int(
                    quote_ts is not None and abs(quote_ts - snap["snapshot_ts"]) <= 5 * MINUTE
                ),
                "q_spread": int(
                    bid is not None and ask is not None and 0 < ask - bid <= 0.1 + 1e-9
                ),
                "q_two_sided": int(bid is not None and ask is not None and bid < ask),
                "q_spot": int(spot_row is not None and abs(spot_row["as_of"] - end) <= 2 * MINUTE),
            }
            out.append(
                {
                    "window_start": ws,
                    "window_end": end,
                    "market_id": market_id,
                    "family": family,
                    "snapshot_ts": snap["snapshot_ts"],
                    "source": snap["source"],
                    "quote_age_s": None
                    if quote_ts is None
                    else (snap["snapshot_ts"] - quote_ts).total_seconds(),
                    "market_probability": p,
                    "volume": snap["volume"],
                    "liquidity": snap["liquidity"],
                    "btc_spot_price": spot,
                    "btc_24h_change_pct": spot_row["change_24h_pct"] if spot_row else None,
                    "price_momentum_15m": None if p1 is None else p - p1,
                    "price_momentum_1h": None if p4 is None else p - p4,
                    "volume_spike": spike,
                    "price_volatility": _std(points),
                    "rsi_14": rsi,
                    "market_edge": abs(p - 0.5),
                    "time_to_expiry_hours": None
                    if expiry is None
                    else (expiry - end).total_seconds() / 3600,
                    "strike": strike,
                    "strike_high": term["strike_high"],
                    "reference_price": ref,
                    "realized_vol": vol,
                    "log_moneyness": moneyness,
                    "barrier_touched": touched,
                    "structural_probability": _structural(full, quote_spot, vol, touched, ref),
                    **q,
                    "quality_score": sum(q.values()) / 5,
                }
            )
    frame = pl.DataFrame(out, schema=INDICATOR_SCHEMA)
    return frame.sort("window_start", "market_id")


@dataclass
class Inputs:
    """Synthetic inputs for ``compute_indicators`` (tables as the warehouse holds them)."""

    snapshots: pl.DataFrame
    tracked: pl.DataFrame
    spot_windows: pl.DataFrame
    klines: pl.DataFrame
    target_starts: list[datetime]


FAMILIES = ("above", "below", "range", "reach", "dip", "updown_1h", "updown_daily", "other")


def synthetic_inputs(
    n_markets: int = 50,
    n_targets: int = 48,
    *,
    seed: int = 0,
    first_target: datetime = datetime(2026, 3, 1),
    missing: float = 0.03,
    history_share: float = 0.3,
) -> Inputs:
    """A deterministic world: GBM BTC (σ = 60 %/yr) 1m klines, markets of every family
    living over the target windows and LOOKBACK_WINDOWS before them, snapshots with
    random gaps (``missing``) and a share of history rows (no book, no volume)."""
    rng = np.random.default_rng(seed)
    n_windows = LOOKBACK_WINDOWS + n_targets
    first_window = first_target - LOOKBACK_WINDOWS * WINDOW
    last_end = first_target + n_targets * WINDOW
    kline_start = first_target - KLINE_LOOKBACK
    n_bars = int((last_end - kline_start) / MINUTE)
    sigma_min = 0.6 / math.sqrt(525_600)
    log_close = math.log(65_000.0) + np.cumsum(rng.normal(0.0, sigma_min, n_bars))
    close = np.exp(log_close)
    open_ = np.concatenate([[65_000.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, sigma_min * 0.5, (2, n_bars)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    open_times = [kline_start + i * MINUTE for i in range(n_bars)]
    klines = pl.DataFrame(
        {
            "window_start": [t - timedelta(minutes=t.minute % 15) for t in open_times],
            "open_time": open_times,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1, 10, n_bars),
        },
        schema=KLINE_SCHEMA,
    )
    bar_of = {t: i for i, t in enumerate(open_times)}

    spot_rows = []
    for w in range(n_windows):
        ws = first_window + w * WINDOW
        we = ws + WINDOW
        i = bar_of[we - MINUTE]
        day = bar_of.get(we - timedelta(hours=24), 0)
        lag = timedelta(seconds=int(rng.integers(0, 200)))
        spot_rows.append(
            {
                "window_start": ws,
                "window_end": we,
                "as_of": we + lag,
                "spot_price": float(close[i]),
                "window_open": float(open_[i - 14]),
                "window_high": float(high[i - 14 : i + 1].max()),
                "window_low": float(low[i - 14 : i + 1].min()),
                "window_close": float(close[i]),
                "change_24h_pct": float((close[i] - open_[day]) / open_[day] * 100),
                "high_24h": None,
                "low_24h": None,
                "volume_24h": None,
                "source": "ticker",
            }
        )
    spot_windows = pl.DataFrame(spot_rows, schema=WINDOW_SCHEMA)

    spot0 = float(close[bar_of[first_target - MINUTE]])
    terms = []
    for m in range(n_markets):
        family = FAMILIES[m % len(FAMILIES)]
        strike = strike_high = reference_start = None
        start_date = first_window - timedelta(days=int(rng.integers(0, 10)))
        expiry = last_end + timedelta(hours=float(rng.uniform(-6, 72)))
        if family in ("above", "below", "range"):
            strike = float(round(spot0 * math.exp(rng.normal(0, 0.02)), -2))
            strike_high = strike + 1_000 if family == "range" else None
        elif family in ("reach", "dip"):
            distance = rng.uniform(0.0, 0.1) * (1 if family == "reach" else -1)
            strike = float(round(spot0 * math.exp(distance), -2))
        elif family.startswith("updown_"):
            length = timedelta(hours=1) if family == "updown_1h" else timedelta(days=1)
            offset = int(rng.integers(-int(length / WINDOW) // 2, n_windows))
            reference_start = first_window + offset * WINDOW
            expiry = reference_start + length
        terms.append(
            {
                "market_id": f"m{m:05d}",
                "family": family,
                "direction": None,
                "strike": strike,
                "strike_high": strike_high,
                "reference_start": reference_start,
                "expiry": expiry,
                "start_date": start_date,
            }
        )

    shape = (n_markets, n_windows)
    price = 1 / (
        1
        + np.exp(
            -(rng.normal(0, 1, (n_markets, 1)) + np.cumsum(rng.normal(0, 0.15, shape), axis=1))
        )
    )
    price = np.round(price, 3)
    volume = rng.uniform(1e3, 1e6, (n_markets, 1)) + np.cumsum(rng.exponential(500, shape), axis=1)
    history = rng.random(shape) < history_share
    keep = rng.random(shape) >= missing
    bid = np.maximum(np.round(price - rng.choice([0.005, 0.01, 0.05], shape), 3), 0.001)
    ask = np.minimum(np.round(price + rng.choice([0.005, 0.01, 0.06], shape), 3), 0.999)
    lag_s = np.where(history, -rng.integers(0, 900, shape), rng.integers(0, 400, shape))
    window_start = np.datetime64(first_window, "us") + np.arange(n_windows) * np.timedelta64(
        15, "m"
    )
    ws = np.broadcast_to(window_start, shape)
    we = ws + np.timedelta64(15, "m")

    def flat(values: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
        series = pl.Series(values[keep])
        return (
            series
            if null is None
            else pl.select(pl.when(pl.Series(null[keep])).then(None).otherwise(series)).to_series()
        )

    ids = np.broadcast_to(np.array([t["market_id"] for t in terms])[:, None], shape)
    snapshots = (
        pl.DataFrame(
            {
                "window_start": flat(ws),
                "window_end": flat(we),
                "market_id": flat(ids),
                "yes_token_id": flat(ids),
                "snapshot_ts": flat(we),
                "quote_ts": flat(we + lag_s.astype("timedelta64[s]")),
                "yes_price": flat(price),
                "no_price": flat(np.round(1 - price, 3)),
                "best_bid": flat(bid, history),
                "best_ask": flat(ask, history),
                "spread": flat(np.round(ask - bid, 3), history),
                "last_trade_price": flat(price, history),
                "volume": flat(volume, history),
                "volume_24h": pl.Series([None] * int(keep.sum()), dtype=pl.Float64),
                "liquidity": flat(rng.uniform(1e2, 1e5, shape), history),
                "source": flat(np.where(history, "history", "live")),
                "quote_age_s": flat(-lag_s.astype(np.float64)),
            }
        )
        .cast(SNAPSHOT_SCHEMA)
        .select(list(SNAPSHOT_SCHEMA))
    )
    tracked = (
        snapshots.filter(pl.col("window_start") >= first_target)
        .select("window_start", "window_end", "market_id")
        .join(
            pl.DataFrame(
                terms,
                schema={
                    k: v
                    for k, v in TRACKED_SCHEMA.items()
                    if k not in ("window_start", "window_end")
                },
            ),
            on="market_id",
        )
        .select(list(TRACKED_SCHEMA))
    )
    return Inputs(
        snapshots=snapshots,
        tracked=tracked,
        spot_windows=spot_windows,
        klines=klines,
        target_starts=[first_target + i * WINDOW for i in range(n_targets)],
    )
