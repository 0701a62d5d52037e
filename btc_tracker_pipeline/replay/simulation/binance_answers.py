"""The simulated world's Binance answers: klines of any interval and the 24h ticker.

Klines are aggregated from the 1-minute path and aligned to UTC. The candle opening at
the current minute is still open: open = high = low = close and zero volume. With
``kline_gaps`` (Binance outages) no candle opens inside a gap and klines answer as
Binance does, with the next candles after it; the path, the ticker and the markets go
on underneath.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.shapes import to_naive_utc
from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.keyed_random import unit
from btc_tracker_pipeline.replay.simulation.timeline import Timeline


def merged_gaps(
    gaps: Sequence[tuple[datetime, datetime]],
) -> tuple[tuple[datetime, datetime], ...]:
    """Outages as sorted, non-overlapping naive-UTC [start, end) pairs; ValueError for
    one that ends before it starts."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((to_naive_utc(a), to_naive_utc(b)) for a, b in gaps):
        if end <= start:
            raise ValueError(f"kline gap {start} → {end} must end after it starts")
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


class BinanceAnswers:
    """Binance bodies of one world.

    Args:
        seed: the world's ``seed`` (the ticker's quantities are drawn from it).
        timeline: the world's minutes.
        path: the world's BTC path.
        kline_gaps: outages as ``merged_gaps`` returns them.
    """

    def __init__(
        self,
        seed: int,
        timeline: Timeline,
        path: BtcPath,
        kline_gaps: Sequence[tuple[datetime, datetime]],
    ) -> None:
        self._seed = seed
        self._timeline = timeline
        self._path = path
        self._gap_minutes = [(timeline.ceil(a), timeline.ceil(b)) for a, b in kline_gaps]

    def _minute_columns(self, a: int, b: int, now_min: int) -> dict[str, np.ndarray]:
        """Per-minute candle columns for candles [a, b); the candle at ``now_min`` is the
        just-opened one (flat at the current price, no volume)."""
        path = self._path
        cols = {
            "open": path.p[a:b].copy(),
            "high": path.high[a:b].copy(),
            "low": path.low[a:b].copy(),
            "close": path.p[a + 1 : b + 1].copy(),
            "volume": path.volume[a:b].copy(),
            "trades": path.trades[a:b].copy(),
            "taker": path.taker[a:b].copy(),
        }
        if a <= now_min < b:
            i = now_min - a
            for name in ("high", "low", "close"):
                cols[name][i] = cols["open"][i]
            for name in ("volume", "trades", "taker"):
                cols[name][i] = 0.0
        typical = (cols["open"] + cols["high"] + cols["low"] + cols["close"]) / 4.0
        cols["quote"] = cols["volume"] * typical
        cols["taker_quote"] = cols["taker"] * typical
        return cols

    def _served_minutes(self, a: int, b: int, count: int, newest: bool) -> list[tuple[int, int]]:
        """Spans of the minutes [a, b) outside ``kline_gaps``, oldest first, cut to the
        first (or, with ``newest``, the last) ``count`` minutes."""
        spans, cursor = [], a
        for g0, g1 in self._gap_minutes:
            if g1 <= cursor or g0 >= b:
                continue
            if g0 > cursor:
                spans.append((cursor, g0))
            cursor = max(cursor, g1)
        if cursor < b:
            spans.append((cursor, b))
        kept: list[tuple[int, int]] = []
        for x, y in reversed(spans) if newest else spans:
            n = min(y - x, count - sum(q - p for p, q in kept))
            if n <= 0:
                break
            kept.append((y - n, y) if newest else (x, x + n))
        return sorted(kept)

    def klines(
        self, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        """Kline rows (see ``SimulatedWorld.klines``)."""
        step = shapes.interval_ms(interval)
        now_min = self._timeline.now_min()
        self._path.ensure(now_min + 2)
        origin_ms = self._timeline.origin_s * 1000
        first = -(-origin_ms // step) * step
        last = (origin_ms + now_min * 60_000) // step * step
        if end_ms is not None:
            last = min(last, int(end_ms) // step * step)
        if start_ms is not None:
            first = max(first, -(-int(start_ms) // step) * step)
        a = (first - origin_ms) // 60_000
        b = min((last + step - origin_ms) // 60_000, now_min + 1)
        if limit <= 0 or b <= a:
            return []
        # `limit` buckets hold at most `limit * step` minutes (fewer after a gap).
        spans = self._served_minutes(a, b, limit * step // 60_000, start_ms is None)
        if not spans:
            return []
        parts = [self._minute_columns(x, y, now_min) for x, y in spans]
        cols = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        minutes = np.concatenate([np.arange(x, y, dtype=np.int64) for x, y in spans])
        open_ms = origin_ms + minutes * 60_000
        if step != 60_000:
            open_ms, cols = shapes.resample_ohlcv(open_ms, cols, step)
        keep = slice(-limit, None) if start_ms is None else slice(None, limit)
        return shapes.kline_rows(open_ms[keep], step, {k: v[keep] for k, v in cols.items()})

    def ticker_24h(self) -> dict[str, Any]:
        """The 24h ticker body (see ``SimulatedWorld.ticker_24h``)."""
        now_min = self._timeline.now_min()
        self._path.ensure(now_min + 2)
        path = self._path
        a = max(0, now_min - 1440)
        last = float(path.p[now_min])
        cols = self._minute_columns(a, now_min + 1, now_min)
        count = int(cols["trades"].sum())
        u = [unit(self._seed, now_min, 60 + i) for i in range(3)]
        return shapes.ticker_24h_body(
            last=last,
            open_=float(path.p[a]),
            high=float(cols["high"].max()),
            low=float(cols["low"].min()),
            volume=round(float(cols["volume"].sum()), 5),
            quote_volume=round(float(cols["quote"].sum()), 8),
            close_time_ms=(self._timeline.origin_s + now_min * 60) * 1000,
            first_id=5_000_000_000 + int(path.trades_cum[a]),
            count=max(count, 1),
            bid=round(last - 0.01, 2),
            ask=last,
            bid_qty=round(5 * u[0], 5),
            ask_qty=round(5 * u[1], 5),
            last_qty=round(0.01 * u[2] + 0.00001, 5),
        )
