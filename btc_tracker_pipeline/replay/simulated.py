"""A deterministic simulated world: a BTC path and the Polymarket markets written on it.

Everything is a function of the constructor arguments, so two worlds built with the
same arguments give byte-identical answers. The pieces:

* BTC: a 1-minute GBM path (``sigma_annual``) with rare jumps, from 00:00 UTC on the
  day ``days`` before the anchor (``now``, or the clock at construction) and grown
  lazily forward in one-day chunks, each drawn from ``(seed, chunk)``. Candle ``i``
  opens at ``P[i]`` and closes at ``P[i+1]`` (a candle opens at the previous close).
  The candle opening at ``now()`` is still open: open = high = low = close = ``P[now]``
  and zero volume.
* Markets, four families (docs/apis.md §1.8), all listed in events tagged bitcoin
  (235), crypto (21) and crypto-prices (1312):
  15-minute and hourly up/down (listed ``updown_lead`` ahead, 24 h by default), daily
  "above K" ladders (listed 48 h before 12:00 ET), weekly "reach K" / "dip to K"
  (listed 48 h before Monday 00:00 ET) and monthly ones ("Will Bitcoin reach $X in
  March?", listed 3 days before the 1st, 00:00 ET). A market that would have been
  listed before the path starts is listed at the path start; up/down windows start at
  or after it, and reach/dip look for touches from max(period start, path start).
  A reach/dip market closes YES 5-95 minutes after the 1m candle that touched its
  strike, often weeks before its endDate, and its price history stops there; one that
  never touched closes NO about an hour after its endDate (docs/apis.md §3.8).
* Settlement feeds (docs/apis.md §3.8): 15-minute up/down markets settle on a
  "Chainlink" BTC/USD print, the path price times ``1 + CHAINLINK_NOISE_BPS · z`` with
  ``z`` a standard normal clipped at ±2.5, drawn from (seed, minute): a few dollars off
  the Binance klines, so about 1–2 % of them settle on the side opposite to the klines,
  always on a move of a few dollars (see ``chainlink_price``). Hourly up/down, "above"
  and barrier markets settle on the klines themselves.
* Prices: fair probability from the path, distorted towards 0.5 by ``bias`` and
  noised deterministically in logit space by ``noise`` (persistent over a 15-minute
  bucket plus a per-minute part), then quoted on the 0.01 tick with a 1–5¢ spread,
  wider near 0.5 and in thin markets (see ``_quotes``; live up/down books average
  2–3¢, mostly wider than 2¢, like recorded ones). Every quote is a function of (seed,
  market, minute). ``bias`` and ``noise`` are independent knobs: with both 0 (the
  default) the mid is the fair value up to the tick, an efficient market no model can
  beat; either one makes the market beatable by a model that recovers the fair value
  from the same path (``NOISE_LOGIT`` = 0.12 is the level every world had before
  ``noise`` was a knob). ``fair_probabilities`` gives the fair value each quote was
  priced from (the oracle evaluations compare against).
* Prices-history is one point a minute, or with ``sparse_history_step`` one point per
  step for reach/dip markets (thin, long-lived barrier markets: real exports of monthly
  barrier histories are hourly).

Real shapes, on some markets (a function of seed and market, docs/apis.md §1.6, §3.8):
about 1 in 10 15-minute windows has only its title to say what it is (a title slug, no
``eventStartTime``); 1 in 4 settles on Chainlink's 60-second TWAP (``cryptoMarketConfig``
and the TWAP stream as resolution source); 1 in 5 "above" ladders names its strikes only
in the rules (`"Close" price of 85,000.01 or higher`, no ``groupItemTitle``, the event
title as question); 1 in 4 ladders is a neg-risk group (``negRisk``, ``negRiskMarketID``).
The settlement rule on the path is the same for all.

Synthetic identifiers (stable for a seed, independent of ``now``): market ids are
``family * 10**9 + local`` (15m: 1, hourly: 2, above: 3, reach: 4, dip: 5, monthly
reach: 11, monthly dip: 12; local = window start / 900 or / 3600, or day-, week- or
month-index * 10**5 + strike / 10), event ids use families 6–9 and 13 the same way;
token ids, conditionId and questionID are SHA-256 of ``(seed, market key, role)``
(tokens as ~77-digit decimals). Series ids other than 15m's real 10192 are made up.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.shapes import (
    EventState,
    MarketState,
    epoch_s,
    to_naive_utc,
)
from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.fair_value import FairValues
from btc_tracker_pipeline.replay.simulation.keyed_random import (
    digest,
    unit,
    unit_array,
)
from btc_tracker_pipeline.replay.simulation.market_catalogue import MarketCatalogue
from btc_tracker_pipeline.replay.simulation.market_terms import (
    DIP,
    REACH,
    UD1H,
    UD15,
    SimEvent,
    SimMarket,
)
from btc_tracker_pipeline.replay.simulation.quotes import TICKS, Quoter
from btc_tracker_pipeline.replay.simulation.settlement import Settlement
from btc_tracker_pipeline.replay.simulation.timeline import Timeline
from btc_tracker_pipeline.replay.world import UnknownTokenError

# Logit-noise amplitude (standard deviation) of the worlds before ``noise`` was a knob.
NOISE_LOGIT = 0.12
MAX_NOISE = 2.0  # a noise sd of 2 in logit space already swamps any fair value
BOOK_LEVELS = 6
MAX_STRIKES = 4000
MAX_UPDOWN_LEAD = timedelta(days=7)


class SimulatedWorld:
    """Deterministic simulated world behind the replay server (see the module docstring).

    Args:
        seed: randomness of the BTC path, the quotes and the identifiers.
        days: history length before the anchor (path starts at 00:00 UTC of that day).
        now: fixed current time; ``None`` follows ``clock`` or the wall clock.
        start: the path start itself (00:00 UTC of a day), instead of ``days``: rebuilds
            a world of ``parameters()`` at another clock (the same data, extended).
        bias: favourite-longshot distortion, ``logit(p_mkt) = (1 - bias) logit(p_fair)
            + noise``; 0 is undistorted, positive pulls prices towards 0.5 (longshots
            overpriced).
        noise: standard deviation of the deterministic logit noise of the mid around
            the (biased) fair value, in [0, ``MAX_NOISE``]: 0.64 of its variance
            persistent over a 15-minute bucket, 0.36 per minute. 0 (the default)
            quotes the fair value up to the tick; ``NOISE_LOGIT`` (0.12) is the old
            default world. Bias 0 and noise 0 is an efficient market; any other
            setting is beatable by a model that recovers the fair value.
        sigma_annual: volatility of the path, also the one the fair prices use.
        strikes_per_ladder: markets per "above" ladder and per weekly hit event.
        updown_lead: how long before its window an up/down market is listed (a shorter
            lead means fewer open up/down markets, e.g. for small benchmark worlds).
        clock: callable giving the current time (overrides ``now``), e.g. a test clock.
        kline_gaps: Binance outages, ``[(start, end), ...]`` UTC: no candle opens in
            ``[start, end)`` (klines answer as Binance does, with the next candles after
            the gap); the path, the ticker and the markets go on underneath.
        sparse_history_step: if set (a whole number of minutes, e.g. 1 h), prices-history
            of reach/dip markets has one point per step whatever fidelity is asked, as
            thin markets and exported histories do.
    """

    def __init__(
        self,
        seed: int = 7,
        days: float = 5,
        now: datetime | None = None,
        bias: float = 0.0,
        sigma_annual: float = 0.6,
        strikes_per_ladder: int = 11,
        clock: Callable[[], datetime] | None = None,
        updown_lead: timedelta = timedelta(days=1),
        start: datetime | None = None,
        kline_gaps: Sequence[tuple[datetime, datetime]] = (),
        sparse_history_step: timedelta | None = None,
        noise: float = 0.0,
    ) -> None:
        if seed < 0:
            raise ValueError("seed must be >= 0")
        if days <= 0:
            raise ValueError("days must be > 0")
        if not -1.0 < bias < 1.0:
            raise ValueError("bias must be in (-1, 1)")
        if not _number_in(noise, 0.0, MAX_NOISE):
            raise ValueError(f"noise must be a finite number in [0, {MAX_NOISE:g}], not {noise!r}")
        if sigma_annual <= 0:
            raise ValueError("sigma_annual must be > 0")
        if not 1 <= strikes_per_ladder <= MAX_STRIKES:
            raise ValueError(f"strikes_per_ladder must be in [1, {MAX_STRIKES}]")
        if not timedelta(0) < updown_lead <= MAX_UPDOWN_LEAD:
            raise ValueError(f"updown_lead must be in (0, {MAX_UPDOWN_LEAD}]")
        if sparse_history_step is not None and (
            sparse_history_step < timedelta(minutes=1) or sparse_history_step % timedelta(minutes=1)
        ):
            raise ValueError("sparse_history_step must be a whole number of minutes >= 1")
        self.sparse_history_step = sparse_history_step
        self.seed = seed
        self.bias = bias
        self.noise = float(noise)
        self.sigma_annual = sigma_annual
        self.strikes_per_ladder = strikes_per_ladder
        self.updown_lead = updown_lead
        self._fixed_now = _floor_minute(to_naive_utc(now)) if now is not None else None
        self._clock = clock
        day = to_naive_utc(start) if start is not None else self._raw_now() - timedelta(days=days)
        if start is not None and day != datetime(day.year, day.month, day.day):
            raise ValueError("start must be 00:00 UTC of a day")
        self.start = datetime(day.year, day.month, day.day)
        self._timeline = Timeline(self.start, self._raw_now)
        self.kline_gaps = _merged_gaps(kline_gaps)
        self._gap_minutes = [
            (self._timeline.ceil(a), self._timeline.ceil(b)) for a, b in self.kline_gaps
        ]
        self._lock = threading.RLock()
        self._path = BtcPath(seed, sigma_annual)
        self._settlement = Settlement(seed, self._path, self._timeline.origin_min)
        self._fair_values = FairValues(self._path, self._settlement, sigma_annual)
        self._quoter = Quoter(self._fair_values, bias, self.noise, self._timeline.origin_min)
        self._catalogue = MarketCatalogue(
            seed, self._timeline, self._path, strikes_per_ladder, updown_lead
        )
        self._by_id: dict[str, SimMarket] = self._catalogue.by_id
        self._closed_cache: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
        self._snapshot: tuple[int, list[dict[str, Any]], list[dict[str, Any]]] | None = None

    def parameters(self) -> dict[str, Any]:
        """What the data is a function of, as JSON values: ``SimulatedWorld(**kwargs)``
        with ``from_parameters`` rebuilds the same world at any clock."""
        return {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "bias": self.bias,
            "noise": self.noise,
            "sigma_annual": self.sigma_annual,
            "strikes_per_ladder": self.strikes_per_ladder,
            "updown_lead_s": self.updown_lead.total_seconds(),
            # Only when set: the worlds (and their identities) without them stay as they were.
            **(
                {"kline_gaps": [[a.isoformat(), b.isoformat()] for a, b in self.kline_gaps]}
                if self.kline_gaps
                else {}
            ),
            **(
                {"sparse_history_step_s": self.sparse_history_step.total_seconds()}
                if self.sparse_history_step is not None
                else {}
            ),
        }

    @classmethod
    def from_parameters(
        cls,
        parameters: dict[str, Any],
        now: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> SimulatedWorld:
        """The world of ``parameters()`` at ``now`` (None: ``clock`` or the wall clock)."""
        p = parameters
        return cls(
            seed=int(p["seed"]),
            now=now,
            bias=float(p["bias"]),
            noise=float(p.get("noise", 0.0)),
            sigma_annual=float(p["sigma_annual"]),
            strikes_per_ladder=int(p["strikes_per_ladder"]),
            clock=clock,
            updown_lead=timedelta(seconds=float(p["updown_lead_s"])),
            start=datetime.fromisoformat(p["start"]),
            kline_gaps=[
                (datetime.fromisoformat(a), datetime.fromisoformat(b))
                for a, b in p.get("kline_gaps", [])
            ],
            sparse_history_step=(
                timedelta(seconds=float(p["sparse_history_step_s"]))
                if p.get("sparse_history_step_s") is not None
                else None
            ),
        )

    def identity(self) -> str:
        """``simulated-`` and a hash of ``parameters()`` (the clock is not part of it)."""
        digest_hex = digest(*sorted(self.parameters().items())).hex()
        return f"simulated-{digest_hex[:16]}"

    # --- time ----------------------------------------------------------------------

    def _raw_now(self) -> datetime:
        if self._clock is not None:
            return _floor_minute(to_naive_utc(self._clock()))
        if self._fixed_now is not None:
            return self._fixed_now
        return _floor_minute(datetime.now(UTC).replace(tzinfo=None))

    def now(self) -> datetime:
        """The current minute (never before the path start)."""
        return self._timeline.at(self._timeline.now_min())

    # --- prices --------------------------------------------------------------------

    def _quotes(self, markets: Sequence[SimMarket], minutes: np.ndarray) -> dict[str, np.ndarray]:
        """Quotes of ``markets[i]`` at path minutes ``minutes[i, :]`` (``Quoter.quotes``)."""
        return self._quoter.quotes(markets, minutes)

    def chainlink_price(self, ts: datetime) -> float:
        """The simulated Chainlink BTC/USD print at ``ts`` floored to the minute (what
        15-minute up/down markets settle on); ValueError outside the path so far."""
        with self._lock:
            minute = self._timeline.floor(to_naive_utc(ts))
            if minute < 0 or minute > self._timeline.now_min():
                raise ValueError(f"no Chainlink print at {ts} (world {self.start} → {self.now()})")
            self._path.ensure(self._timeline.now_min() + 2)
            return float(self._settlement.chainlink(np.array([minute]))[0])

    def _history_step(self, market: SimMarket) -> int:
        """Minutes between prices-history points of ``market`` (1 unless sparse)."""
        if self.sparse_history_step is None or market.family not in (REACH, DIP):
            return 1
        return int(self.sparse_history_step / timedelta(minutes=1))

    @staticmethod
    def _volume(market: SimMarket, minute: int) -> float:
        """Cumulative traded volume, growing as life^1.3 from listing to endDate."""
        life = max(market.end_min - market.listed_min, 1)
        frac = min(max((minute - market.listed_min) / life, 0.0), 1.0)
        return market.volume_total * frac**1.3

    # --- Gamma ---------------------------------------------------------------------

    def _market_state(
        self, market: SimMarket, ref: int, now_min: int, q: dict[str, np.ndarray], row: int
    ) -> MarketState:
        minutes = (ref, ref - 60, ref - 1440, ref - 10080)
        volume = [self._volume(market, minute) for minute in minutes]
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
                uma_statuses=() if market.family in (UD15, UD1H) else ("proposed",),
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
        if event.family in (UD15, UD1H):
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

    def _bodies(
        self, events: Sequence[SimEvent], now_min: int
    ) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
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

    def _current(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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
        markets: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for event in visible:
            body = self._closed_cache.get(event.static.id) or built[event.static.id]
            if now_min >= event.closed_min:
                self._closed_cache[event.static.id] = body
            markets.extend(body[0])
            events.append(body[1])
        self._snapshot = (now_min, markets, events)
        return markets, events

    def gamma_markets(self) -> list[dict[str, Any]]:
        """Every market listed at or before ``now()`` in the ``/markets`` shape, oldest
        listing first. Cached per minute; dicts are shared between calls: treat them
        as read-only."""
        with self._lock:
            return list(self._current()[0])

    def gamma_events(self) -> list[dict[str, Any]]:
        """Every event listed at or before ``now()`` with nested ``markets`` (read-only)."""
        with self._lock:
            return list(self._current()[1])

    # --- CLOB ----------------------------------------------------------------------

    def _visible_token(self, token_id: str) -> tuple[SimMarket, int, int]:
        now_min = self._timeline.now_min()
        self._path.ensure(now_min + 2)
        self._catalogue.ensure(now_min)
        found = self._catalogue.by_token.get(str(token_id))
        if found is None or found[0].listed_min > now_min:
            raise UnknownTokenError(token_id)
        return found[0], found[1], now_min

    def price_history(
        self, token_id: str, start_ts: int, end_ts: int, fidelity_min: int
    ) -> list[dict[str, Any]]:
        """Points ``{"t", "p"}`` every ``fidelity_min`` minutes (at least the market's
        ``sparse_history_step``; grid aligned to the epoch, ``t`` jittered by 0–4 s like
        real data) in [start_ts, end_ts], from listing to min(now, closedTime). Outcome 1
        (Down / No) gets 1 - p."""
        with self._lock:
            market, side, now_min = self._visible_token(token_id)
            fidelity = max(1, int(fidelity_min), self._history_step(market))
            origin_min = self._timeline.origin_s // 60
            lo = max(int(start_ts), math.ceil(epoch_s(market.static.start_date)))
            hi = min(int(end_ts), self._timeline.origin_s + now_min * 60)
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
        """CLOB ``/book`` at ``now()``: up to 6 levels a side around the quote; empty
        sides once trading stopped at endDate; UnknownTokenError ("No orderbook
        exists") once the market is closed, as the real CLOB does."""
        with self._lock:
            market, side, now_min = self._visible_token(token_id)
            if now_min >= market.closed_min:
                raise UnknownTokenError(
                    f"No orderbook exists for the requested token id {token_id}"
                )
            q = self._quoter.quotes([market], np.array([[now_min]]))
            bid, ask, last = int(q["bid"][0, 0]), int(q["ask"][0, 0]), float(q["last"][0, 0])
            if side == 1:
                bid, ask, last = TICKS - ask, TICKS - bid, 1.0 - last
            bids: list[tuple[float, float]] = []
            asks: list[tuple[float, float]] = []
            if now_min < market.end_min:
                absolute = self._timeline.origin_s // 60 + now_min
                for level in range(BOOK_LEVELS):
                    for ticks, levels, salt in ((bid - level, bids, 20), (ask + level, asks, 40)):
                        if 0 < ticks < TICKS:
                            u = unit(market.key_hash, absolute, salt + 2 * level + side)
                            levels.append((ticks / TICKS, round(5 + 4000 * u**3, 2)))
            return shapes.clob_book(
                market.static.condition_id,
                market.static.token_ids[side],
                (self._timeline.origin_s + now_min * 60) * 1000,
                bids,
                asks,
                market.static.tick,
                last,
            )

    def clob_market(self, condition_id: str) -> dict[str, Any]:
        """CLOB ``/markets/{condition_id}`` at ``now()``; KeyError if unknown or not listed."""
        with self._lock:
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

    # --- Binance -------------------------------------------------------------------

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
        """Binance klines of any interval 1m–1d, aggregated from the 1-minute path and
        aligned to UTC, answered like Binance: the first ``limit`` candles opening at or
        after ``start_ms`` (without it, the newest ``limit``), at or before ``end_ms``
        and ``now()``, skipping ``kline_gaps`` however long they are."""
        step = shapes.interval_ms(interval)
        with self._lock:
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
        """Binance 24h rolling ticker at ``now()`` (window shortened at the path start)."""
        with self._lock:
            now_min = self._timeline.now_min()
            self._path.ensure(now_min + 2)
            path = self._path
            a = max(0, now_min - 1440)
            last = float(path.p[now_min])
            cols = self._minute_columns(a, now_min + 1, now_min)
            count = int(cols["trades"].sum())
            u = [unit(self.seed, now_min, 60 + i) for i in range(3)]
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

    # --- for tests and label checks ------------------------------------------------

    def resolution_of(self, market_id: str) -> str | None:
        """Winning outcome of a market closed by ``now()``, else None; KeyError if unknown."""
        with self._lock:
            now_min = self._timeline.now_min()
            self._path.ensure(now_min + 2)
            self._catalogue.ensure(now_min)
            market = self._catalogue.by_id.get(str(market_id))
            if market is None or market.listed_min > now_min:
                raise KeyError(market_id)
            if now_min < market.closed_min:
                return None
            return market.static.outcomes[self._settlement.winner(market)]

    def btc_close_at(self, ts: datetime) -> float:
        """Close of the 1-minute candle opening at ``ts`` floored to the minute; ValueError
        before the path start or if that candle has not closed by ``now()``."""
        with self._lock:
            minute = self._timeline.floor(to_naive_utc(ts))
            now_min = self._timeline.now_min()
            if minute < 0 or minute + 1 > now_min:
                raise ValueError(f"no closed 1m candle at {ts} (world {self.start} → {self.now()})")
            self._path.ensure(now_min + 2)
            return float(self._path.p[minute + 1])

    # --- the oracle ----------------------------------------------------------------

    def fair_probabilities(
        self, market_ids: Sequence[str], at: Sequence[datetime] | np.ndarray
    ) -> np.ndarray:
        """The oracle: for each row (``market_ids[i]``, ``at[i]``, naive UTC), the fair
        probability of outcome 0 (Up / Yes) at the path minute ``floor(at[i])``, as the
        world priced it: the value the quotes distort by ``bias`` and ``noise`` into the
        served mid (0 or 1 once the outcome is known). NaN for a market id the world does
        not know, or a time before the path start or before the market is listed (no
        quote existed then; this keeps each row independent of the others).

        It does not wait for ``now()``: the path and the catalogue grow to the latest
        minute asked. Vectorised (one fair-value computation over all rows)."""
        ids = [str(market_id) for market_id in market_ids]
        minutes = self._timeline.minutes_of(at)
        if len(ids) != len(minutes):
            raise ValueError(f"{len(ids)} market ids but {len(minutes)} times")
        out = np.full(len(ids), np.nan)
        if not ids or (minutes < 0).all():
            return out
        index: dict[str, int] = {}
        codes = np.fromiter(
            (index.setdefault(market_id, len(index)) for market_id in ids),
            dtype=np.int64,
            count=len(ids),
        )
        with self._lock:
            last = int(minutes.max())
            self._path.ensure(last + 2)
            self._catalogue.ensure(last)
            found = [self._catalogue.by_id.get(market_id) for market_id in index]
            never = np.iinfo(np.int64).max  # unknown ids are listed at no minute
            listed = np.array([never if mk is None else mk.listed_min for mk in found])
            rows = np.flatnonzero((minutes >= 0) & (minutes >= listed[codes]))
            if len(rows) == 0:
                return out
            # rows of unknown ids are not in ``rows``: their placeholders are never read
            per_market = (
                np.array([-1 if mk is None else mk.family for mk in found], dtype=np.int64),
                np.array([0 if mk is None else mk.start_min for mk in found], dtype=np.int64),
                np.array([0 if mk is None else mk.end_min for mk in found], dtype=np.int64),
                np.array([math.nan if mk is None else mk.strike for mk in found]),
            )
            fam, start, end, strike = (values[codes[rows]] for values in per_market)
            out[rows] = self._fair_values.of(fam, start, end, strike, minutes[rows])
        return out


def _merged_gaps(
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


def _number_in(value: object, low: float, high: float) -> bool:
    """Whether ``value`` is a real number (not a bool) in [low, high] (NaN is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return False
    return low <= float(value) <= high


def _floor_minute(dt: datetime) -> datetime:
    return dt.replace(second=0, microsecond=0)
