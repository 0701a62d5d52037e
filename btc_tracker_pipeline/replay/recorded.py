"""A world replaying recorded history from a data directory (its format: docs/replay.md,
"Recorded data").

The directory holds ``klines.csv`` (BTCUSDT candles of one base interval),
``markets.jsonl`` (real-shaped Gamma market objects) and ``prices/<token_id>.csv``
(CLOB price history per token). Everything is validated on load; any defect raises
:class:`RecordedDataError` naming the file and line.

What is not recorded is derived, as documented in docs/replay.md, "Recorded data": a market's
state at ``now`` (open markets quote their last recorded price), events (from the
markets' own ``events`` or one synthetic event per market), books (one-tick spread
around the last price) and the 24h ticker (from the candles).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.shapes import epoch_ms, epoch_s, to_naive_utc
from btc_tracker_pipeline.replay.world import UnknownTokenError

KLINES_FILE = "klines.csv"
MARKETS_FILE = "markets.jsonl"
PRICES_DIR = "prices"
KLINES_HEADER = ["open_time_ms", "open", "high", "low", "close", "volume"]
PRICES_HEADER = ["t", "p"]
PIPELINE_INTERVAL_MS = 60_000  # the pipeline reads Binance 1-minute klines only
BOOK_LEVELS = 5
BOOK_LEVEL_SIZE = 100.0
RESOLVED_AT = 0.999  # docs/apis.md §1.7: tolerate >= 0.999 / <= 0.001 as one-hot
# Keys that only make sense once a market is closed; dropped when replaying it as open.
_CLOSED_ONLY = ("closedTime", "umaResolutionStatus", "umaEndDate", "automaticallyResolved")


class RecordedDataError(ValueError):
    """The data directory is missing a file or holds an invalid line."""


@dataclass(frozen=True, slots=True)
class _Series:
    t: np.ndarray  # unix seconds, strictly increasing
    p: np.ndarray


@dataclass(frozen=True, slots=True)
class _Market:
    raw: dict[str, Any]
    token_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    listed: datetime | None
    end: datetime | None
    closed_at: datetime | None  # recorded closedTime (None: not closed, or unknown)
    recorded_closed: bool


# --- loading ---------------------------------------------------------------------------


def _where(path: Path, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def _rows(path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file after checking its header."""
    if not path.is_file():
        raise RecordedDataError(f"{path}: missing (required file)")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None or [f.strip() for f in first] != header:
            got = ",".join(first) if first else "an empty file"
            raise RecordedDataError(f"{path}:1: header must be {','.join(header)!r}, got {got!r}")
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise RecordedDataError(
                    f"{path}:{line}: expected {len(header)} fields, got {len(fields)}"
                )
            yield line, [f.strip() for f in fields]


def _number(path: Path, line: int, name: str, text: str, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise RecordedDataError(f"{path}:{line}: {name} must be {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise RecordedDataError(f"{path}:{line}: {name} must be finite, got {text!r}")
    return value


def _load_klines(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    times: list[int] = []
    values: list[list[float]] = []
    for line, fields in _rows(path, KLINES_HEADER):
        t = int(_number(path, line, "open_time_ms", fields[0], integer=True))
        o, h, lo, c, v = (
            _number(path, line, name, text)
            for name, text in zip(KLINES_HEADER[1:], fields[1:], strict=True)
        )
        if min(o, h, lo, c) <= 0 or v < 0:
            raise RecordedDataError(f"{path}:{line}: prices must be > 0 and volume >= 0")
        if h < max(o, c, lo) or lo > min(o, c):
            raise RecordedDataError(f"{path}:{line}: high/low do not bound open/close")
        if times and t <= times[-1]:
            kind = "duplicate" if t == times[-1] else "unsorted"
            raise RecordedDataError(
                f"{path}:{line}: {kind} open_time_ms {t} (previous row has {times[-1]})"
            )
        times.append(t)
        values.append([o, h, lo, c, v])
    if len(times) < 2:
        raise RecordedDataError(f"{path}: needs at least two rows to detect the interval")
    open_ms = np.asarray(times, dtype=np.int64)
    base = int(np.diff(open_ms).min())
    if base not in shapes.INTERVAL_MS.values():
        raise RecordedDataError(
            f"{path}: smallest spacing {base} ms is not a Binance interval "
            f"({', '.join(shapes.INTERVAL_MS)})"
        )
    misaligned = np.flatnonzero(open_ms % base)
    if len(misaligned):
        line = int(misaligned[0]) + 2
        raise RecordedDataError(
            f"{path}:{line}: open_time_ms not aligned to the {base} ms interval"
        )
    table = np.asarray(values, dtype=np.float64)
    cols = {
        name: table[:, i].copy()
        for i, name in enumerate(("open", "high", "low", "close", "volume"))
    }
    return open_ms, cols, base


def _decode_list(value: Any) -> list[Any] | None:
    # Gamma sends JSON-encoded strings; old records hold real arrays (docs/apis.md §0).
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, list) else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return to_naive_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def _load_markets(path: Path) -> list[_Market]:
    if not path.is_file():
        raise RecordedDataError(f"{path}: missing (required file)")
    markets: list[_Market] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise RecordedDataError(f"{path}:{line}: invalid JSON ({exc.msg})") from None
            if not isinstance(raw, dict):
                raise RecordedDataError(f"{path}:{line}: not a JSON object")
            if raw.get("id") in (None, ""):
                raise RecordedDataError(f"{path}:{line}: market has no id")
            market_id = str(raw["id"])
            if market_id in seen:
                raise RecordedDataError(
                    f"{path}:{line}: duplicate market id {market_id}"
                    f" (first on line {seen[market_id]})"
                )
            seen[market_id] = line
            tokens = _decode_list(raw.get("clobTokenIds"))
            if not tokens or not all(isinstance(t, str | int) and str(t).isdigit() for t in tokens):
                raise RecordedDataError(
                    f"{path}:{line}: clobTokenIds missing or not a list of decimal token ids"
                )
            outcomes = _decode_list(raw.get("outcomes")) or ["Yes", "No"][: len(tokens)]
            raw = dict(raw, id=market_id)
            markets.append(
                _Market(
                    raw=raw,
                    token_ids=tuple(str(t) for t in tokens),
                    outcomes=tuple(str(o) for o in outcomes),
                    listed=_parse_time(raw.get("startDate")) or _parse_time(raw.get("createdAt")),
                    end=_parse_time(raw.get("endDate")),
                    closed_at=_parse_time(raw.get("closedTime")),
                    recorded_closed=raw.get("closed") is True,
                )
            )
    return markets


def data_digest(data_dir: Path) -> str:
    """SHA-256 over the names and bytes of the files a RecordedWorld reads."""
    digest = hashlib.sha256()
    files = [data_dir / KLINES_FILE, data_dir / MARKETS_FILE]
    files += sorted((data_dir / PRICES_DIR).glob("*.csv"))
    for path in files:
        digest.update(f"{path.relative_to(data_dir).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _load_prices(directory: Path, known: set[str]) -> dict[str, _Series]:
    series: dict[str, _Series] = {}
    if not directory.exists():
        return series
    for path in sorted(directory.glob("*.csv")):
        token = path.stem
        if token not in known:
            raise RecordedDataError(f"{path}: token {token} is in no market of {MARKETS_FILE}")
        times: list[int] = []
        prices: list[float] = []
        for line, (t_text, p_text) in _rows(path, PRICES_HEADER):
            t = int(_number(path, line, "t", t_text, integer=True))
            p = _number(path, line, "p", p_text)
            if not 0.0 <= p <= 1.0:
                raise RecordedDataError(f"{path}:{line}: p must be in [0, 1], got {p_text}")
            if times and t <= times[-1]:
                kind = "duplicate" if t == times[-1] else "unsorted"
                raise RecordedDataError(
                    f"{path}:{line}: {kind} t {t} (previous row has {times[-1]})"
                )
            times.append(t)
            prices.append(p)
        series[token] = _Series(np.asarray(times, dtype=np.int64), np.asarray(prices))
    return series


# --- the world -------------------------------------------------------------------------


def typical_spacing_ms(open_ms: np.ndarray) -> int:
    """The most common spacing between consecutive open times: the interval the candles
    were recorded at, gaps (outages) aside. The smallest wins a tie."""
    values, counts = np.unique(np.diff(open_ms), return_counts=True)
    return int(values[np.argmax(counts)])


def spacing_words(spacing_ms: int) -> str:
    """``15-minute candles (900 s apart)`` for 900,000 ms."""
    for unit, size in (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000)):
        if spacing_ms % size == 0:
            return f"{spacing_ms // size}-{unit} candles ({spacing_ms // 1000} s apart)"
    return f"candles {spacing_ms / 1000:g} s apart"


class RecordedWorld:
    """Recorded history served as a world (see docs/replay.md, "Recorded data").

    Args:
        data_dir: directory with ``klines.csv``, ``markets.jsonl`` and ``prices/``.
        now: the world's fixed current minute; default: the newest timestamp in the
            candles and price files, rounded up to the minute.

    Raises:
        RecordedDataError: a file is missing or a line is invalid (message names both).
    """

    def __init__(self, data_dir: Path, now: datetime | None = None) -> None:
        self.data_dir = Path(data_dir)
        self._open_ms, self._cols, self.base_interval_ms = _load_klines(self.data_dir / KLINES_FILE)
        self._markets = _load_markets(self.data_dir / MARKETS_FILE)
        known = {t for m in self._markets for t in m.token_ids}
        self._prices = _load_prices(self.data_dir / PRICES_DIR, known)
        if now is None:
            newest = int(self._open_ms[-1]) / 1000
            for series in self._prices.values():
                if len(series.t):
                    newest = max(newest, float(series.t[-1]))
            self._now = shapes.from_epoch_s(math.ceil(newest / 60) * 60)
        else:
            self._now = to_naive_utc(now).replace(second=0, microsecond=0)
        self._by_token = {t: (m, i) for m in self._markets for i, t in enumerate(m.token_ids)}
        self._by_condition = {
            str(m.raw["conditionId"]): m for m in self._markets if m.raw.get("conditionId")
        }
        self._by_id = {m.raw["id"]: m for m in self._markets}
        self._views: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
        self._identity = f"recorded-{data_digest(self.data_dir)[:16]}"
        self.kline_spacing_ms = typical_spacing_ms(self._open_ms)

    def check_for_pipeline(self) -> None:
        """Refuse candles the pipeline cannot use: it asks for 1-minute klines, which
        coarser recorded candles cannot give (Binance would answer "Invalid interval.").

        Raises:
            RecordedDataError: one line saying what ``klines.csv`` holds.
        """
        if self.kline_spacing_ms != PIPELINE_INTERVAL_MS:
            raise RecordedDataError(
                f"{self.data_dir / KLINES_FILE}: holds {spacing_words(self.kline_spacing_ms)}; "
                "the pipeline needs 1-minute candles (Binance 1m klines)"
            )

    def now(self) -> datetime:
        """The fixed current minute."""
        return self._now

    def identity(self) -> str:
        """``recorded-`` and a hash of the data directory's files (``data_digest``)."""
        return self._identity

    # --- market state at now -----------------------------------------------------------

    def _visible(self, market: _Market) -> bool:
        return market.listed is None or market.listed <= self._now

    def _closed(self, market: _Market) -> bool:
        """Closed as of now: recorded closed and (no closedTime or closedTime <= now)."""
        return market.recorded_closed and (
            market.closed_at is None or market.closed_at <= self._now
        )

    def _last_price(self, token: str) -> float | None:
        series = self._prices.get(token)
        if series is None:
            return None
        i = int(np.searchsorted(series.t, epoch_s(self._now), side="right")) - 1
        return float(series.p[i]) if i >= 0 else None

    def _prices_now(self, market: _Market) -> list[float] | None:
        """Outcome prices at now from the price files (a binary market's missing side
        is 1 - the other); None when no file has a point at or before now."""
        found = [self._last_price(t) for t in market.token_ids]
        if all(p is None for p in found):
            return None
        if len(found) == 2:
            if found[0] is None:
                found[0] = 1.0 - found[1]  # type: ignore[operator]
            if found[1] is None:
                found[1] = 1.0 - found[0]
        return [p if p is not None else 0.0 for p in found]

    def _tick(self, market: _Market) -> float:
        tick = market.raw.get("orderPriceMinTickSize")
        return float(tick) if isinstance(tick, int | float) and tick > 0 else 0.01

    @staticmethod
    def _quote(p: float, tick: float) -> tuple[float, float]:
        """Best bid/ask one tick apart around ``p``: bid = p floored to the tick."""
        ticks = round(1 / tick)
        bid = min(max(math.floor(p * ticks + 1e-9), 0), ticks - 1)
        return bid / ticks, (bid + 1) / ticks

    def _market_now(self, market: _Market) -> dict[str, Any]:
        """The market object as of now (without ``events``)."""
        body = {k: v for k, v in market.raw.items() if k != "events"}
        if self._closed(market):
            return body
        for key in _CLOSED_ONLY:
            body.pop(key, None)
        body["closed"] = False
        if market.end is not None:
            body["acceptingOrders"] = self._now < market.end
        prices = self._prices_now(market)
        if prices is not None:
            body["outcomePrices"] = shapes.enc(shapes.price_str(p) for p in prices)
            bid, ask = self._quote(prices[0], self._tick(market))
            body.pop("bestBid", None)
            if bid > 0:
                body["bestBid"] = shapes.num(bid)
            body["bestAsk"] = shapes.num(ask)
            body["spread"] = shapes.num(round(ask - bid, 6))
            body["lastTradePrice"] = shapes.num(round(prices[0], 6))
        return body

    def _synthetic_event(self, market: _Market, body: dict[str, Any]) -> dict[str, Any]:
        """One event per market that was recorded without ``events``."""
        keys = ("slug", "description", "resolutionSource", "startDate", "endDate", "createdAt")
        event: dict[str, Any] = {"id": market.raw["id"], "ticker": body.get("slug", "")}
        event |= {k: body[k] for k in keys if k in body}
        event |= {
            "title": body.get("question", ""),
            "active": True,
            "closed": body.get("closed") is True,
            "archived": False,
            "volume": shapes.num(float(body.get("volumeNum") or 0)),
            "liquidity": shapes.num(float(body.get("liquidityNum") or 0)),
            "tags": [],
        }
        return event

    def _build_views(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        visible = [m for m in self._markets if self._visible(m)]
        bodies = {m.raw["id"]: self._market_now(m) for m in visible}
        groups: dict[str, tuple[dict[str, Any], list[_Market]]] = {}
        for market in visible:
            recorded = market.raw.get("events")
            first = recorded[0] if isinstance(recorded, list) and recorded else None
            if isinstance(first, dict) and first.get("id") is not None:
                key = f"e{first['id']}"
                base = {k: v for k, v in first.items() if k != "markets"}
            else:
                key = f"m{market.raw['id']}"
                base = self._synthetic_event(market, bodies[market.raw["id"]])
            groups.setdefault(key, (base, []))[1].append(market)
        markets: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for base, members in groups.values():
            event = dict(base, closed=all(self._closed(m) for m in members))
            events.append(dict(event, markets=[bodies[m.raw["id"]] for m in members]))
            for market in members:
                recorded = market.raw.get("events")
                rest = recorded[1:] if isinstance(recorded, list) else []
                markets.append(dict(bodies[market.raw["id"]], events=[event, *rest]))
        return markets, events

    def _views_now(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self._views is None:
            self._views = self._build_views()
        return self._views

    def gamma_markets(self) -> list[dict[str, Any]]:
        """Markets listed at or before now, as of now, with their ``events`` (read-only)."""
        return list(self._views_now()[0])

    def gamma_events(self) -> list[dict[str, Any]]:
        """Events (recorded or synthetic) with nested ``markets`` as of now (read-only)."""
        return list(self._views_now()[1])

    # --- CLOB ----------------------------------------------------------------------------

    def _token(self, token_id: str) -> tuple[_Market, int]:
        found = self._by_token.get(str(token_id))
        if found is None or not self._visible(found[0]):
            raise UnknownTokenError(token_id)
        return found

    def price_history(
        self, token_id: str, start_ts: int, end_ts: int, fidelity_min: int
    ) -> list[dict[str, Any]]:
        """Recorded points in [start_ts, min(end_ts, now)], thinned to the first point of
        each ``fidelity_min``-minute bucket (aligned to the epoch)."""
        self._token(token_id)
        series = self._prices.get(str(token_id))
        if series is None:
            return []
        hi = min(int(end_ts), int(epoch_s(self._now)))
        lo_i = int(np.searchsorted(series.t, int(start_ts), side="left"))
        hi_i = int(np.searchsorted(series.t, hi, side="right"))
        t, p = series.t[lo_i:hi_i], series.p[lo_i:hi_i]
        bucket = t // (max(1, int(fidelity_min)) * 60)
        keep = np.r_[True, bucket[1:] != bucket[:-1]] if len(t) else np.zeros(0, dtype=bool)
        return [
            {"t": int(ts), "p": float(pr)}
            for ts, pr in zip(t[keep].tolist(), p[keep].tolist(), strict=True)
        ]

    def book(self, token_id: str) -> dict[str, Any]:
        """Synthetic book: 5 levels a side, one tick apart, 100 × (level + 1) shares,
        best bid = last price floored to the tick, best ask one tick above; empty sides
        after endDate; UnknownTokenError ("No orderbook exists") once closed."""
        market, side = self._token(token_id)
        if self._closed(market):
            raise UnknownTokenError(f"No orderbook exists for the requested token id {token_id}")
        tick = self._tick(market)
        price = self._last_price(str(token_id))
        if price is None:
            recorded = _decode_list(market.raw.get("outcomePrices")) or []
            price = float(recorded[side]) if side < len(recorded) else 0.5
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        if market.end is None or self._now < market.end:
            bid, ask = self._quote(price, tick)
            for level in range(BOOK_LEVELS):
                size = BOOK_LEVEL_SIZE * (level + 1)
                if bid - level * tick > tick / 2:
                    bids.append((round(bid - level * tick, 6), size))
                if ask + level * tick < 1 - tick / 2:
                    asks.append((round(ask + level * tick, 6), size))
        return shapes.clob_book(
            str(market.raw.get("conditionId", "")),
            str(token_id),
            epoch_ms(self._now),
            bids,
            asks,
            tick,
            price,
        )

    def clob_market(self, condition_id: str) -> dict[str, Any]:
        """CLOB market from the recorded Gamma object as of now; KeyError if unknown."""
        market = self._by_condition.get(condition_id)
        if market is None or not self._visible(market):
            raise KeyError(condition_id)
        body = self._market_now(market)
        closed = self._closed(market)
        prices = [float(p) for p in _decode_list(body.get("outcomePrices")) or []]
        prices += [0.0] * (len(market.token_ids) - len(prices))
        one_hot = sum(p >= RESOLVED_AT for p in prices) == 1 and all(
            p >= RESOLVED_AT or p <= 1 - RESOLVED_AT for p in prices
        )
        winners = [closed and one_hot and p >= RESOLVED_AT for p in prices]
        end = market.end or self._now
        static = shapes.MarketStatic(
            id=market.raw["id"],
            question=str(body.get("question", "")),
            condition_id=condition_id,
            question_id=str(body.get("questionID", "")),
            slug=str(body.get("slug", "")),
            resolution_source=str(body.get("resolutionSource", "")),
            description=str(body.get("description", "")),
            outcomes=market.outcomes,  # type: ignore[arg-type]
            token_ids=market.token_ids,  # type: ignore[arg-type]
            start_date=market.listed or end,
            created_at=market.listed or end,
            accepting_orders_at=market.listed or end,
            end_date=end,
            tick=self._tick(market),
        )
        return shapes.clob_market_body(
            static,
            closed=closed,
            accepting_orders=body.get("acceptingOrders") is True,
            prices=prices,
            winners=winners,
            tags=(),
        )

    # --- Binance ---------------------------------------------------------------------------

    def klines(
        self, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        """Recorded candles resampled (UTC-aligned OHLCV) to ``interval``, answered like
        Binance: the first ``limit`` candles opening at or after ``start_ms`` (and at or
        before ``end_ms`` and now), however far the next recorded candle is; without
        ``start_ms`` the newest ``limit``. ValueError for an interval finer than, or not
        a multiple of, the recorded one."""
        step = shapes.interval_ms(interval)
        base = self.base_interval_ms
        if step < base or step % base:
            raise ValueError(
                f"interval {interval} cannot be served from recorded {base // 1000}s candles "
                f"(needs a multiple of the recorded interval)"
            )
        if limit <= 0:
            return []
        now_ms = epoch_ms(self._now)
        last = now_ms if end_ms is None else min(now_ms, int(end_ms))
        last = last // step * step  # the newest bucket that may be served
        hi = int(np.searchsorted(self._open_ms, last + step - 1, side="right"))
        hi = min(hi, int(np.searchsorted(self._open_ms, now_ms, side="right")))
        # Like Binance (§3.8): the first `limit` candles opening at or after startTime,
        # whatever the gaps, not a fixed span from it. A bucket holds at most `per` base
        # candles, so `limit * per` of them always make `limit` buckets or more.
        per = step // base
        if start_ms is None:  # the newest `limit` candles up to endTime
            lo = max(0, hi - limit * per)
        else:
            first = -(-int(start_ms) // step) * step
            lo = int(np.searchsorted(self._open_ms, first, side="left"))
            hi = min(hi, lo + limit * per)
        if hi <= lo:
            return []
        open_ms = self._open_ms[lo:hi]
        cols = {name: values[lo:hi] for name, values in self._cols.items()}
        typical = (cols["high"] + cols["low"] + cols["close"]) / 3.0
        cols["quote"] = cols["volume"] * typical
        if step != base:
            open_ms, cols = shapes.resample_ohlcv(open_ms, cols, step)
        keep = slice(-limit, None) if start_ms is None else slice(None, limit)
        open_ms, cols = open_ms[keep], {k: v[keep] for k, v in cols.items()}
        return shapes.kline_rows(open_ms, step, cols)

    def ticker_24h(self) -> dict[str, Any]:
        """24h ticker from the recorded candles opening in (now - 24h, now]; trade ids are
        synthetic (one per candle, ``firstId`` = 1-based index of the first candle)."""
        now_ms = epoch_ms(self._now)
        hi = int(np.searchsorted(self._open_ms, now_ms, side="right"))
        if hi == 0:
            raise ValueError(f"no recorded candle at or before {self._now}")
        lo = min(int(np.searchsorted(self._open_ms, now_ms - 86_400_000, side="right")), hi - 1)
        c = {name: values[lo:hi] for name, values in self._cols.items()}
        last = float(c["close"][-1])
        volume = float(c["volume"].sum())
        quote = float((c["volume"] * (c["high"] + c["low"] + c["close"]) / 3.0).sum())
        return shapes.ticker_24h_body(
            last=last,
            open_=float(c["open"][0]),
            high=float(c["high"].max()),
            low=float(c["low"].min()),
            volume=volume,
            quote_volume=quote,
            close_time_ms=now_ms,
            first_id=lo + 1,
            count=hi - lo,
            bid=round(last - 0.01, 2),
            ask=last,
            bid_qty=1.0,
            ask_qty=1.0,
            last_qty=0.001,
        )

    # --- for tests and label checks ------------------------------------------------------

    def resolution_of(self, market_id: str) -> str | None:
        """Winning outcome of a market closed as of now with one-hot prices, else None."""
        market = self._by_id[str(market_id)]
        if not self._closed(market):
            return None
        prices = [float(p) for p in _decode_list(market.raw.get("outcomePrices")) or []]
        winners = [i for i, p in enumerate(prices) if p >= RESOLVED_AT]
        losers = [p for p in prices if p <= 1 - RESOLVED_AT]
        if (
            len(winners) == 1
            and len(losers) == len(prices) - 1
            and winners[0] < len(market.outcomes)
        ):
            return market.outcomes[winners[0]]
        return None
