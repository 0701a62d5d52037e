"""A deterministic simulated world: a BTC path and the Polymarket markets written on it.

Everything is a function of the constructor arguments, so two worlds built with the
same arguments give byte-identical answers. The pieces (modules of
``replay.simulation``):

* BTC (``btc_path``): a 1-minute GBM path (``sigma_annual``) with rare jumps, from
  00:00 UTC on the day ``days`` before the anchor (``now``, or the clock at
  construction) and grown lazily forward in one-day chunks. Candle ``i`` opens at
  ``P[i]`` and closes at ``P[i+1]`` (a candle opens at the previous close). The candle
  opening at ``now()`` is still open: open = high = low = close = ``P[now]`` and zero
  volume.
* Markets (``market_catalogue``, ``event_builders``), four families (docs/apis.md
  §1.8), all listed in events tagged bitcoin (235), crypto (21) and crypto-prices
  (1312): 15-minute and hourly up/down (listed ``updown_lead`` ahead, 24 h by
  default; with ``updown_5m`` the 5-minute ones too, 288 a day as on Polymarket,
  worded and settled like the 15-minute ones), daily "above K" ladders (listed 48 h
  before 12:00 ET), weekly "reach K" / "dip to K" (listed 48 h before Monday 00:00 ET)
  and monthly ones ("Will Bitcoin reach $X in March?", listed 3 days before the 1st,
  00:00 ET). A reach/dip market closes YES soon after the candle that touched its
  strike, one that never touched closes NO about an hour after its endDate. Some
  markets take the other real shapes Gamma serves (title-only windows, TWAP
  settlement, rules-only strikes, neg-risk ladders).
* Settlement feeds (``settlement``, docs/apis.md §3.8): 5- and 15-minute up/down
  markets settle on a simulated Chainlink BTC/USD print a few dollars off the Binance
  klines (see ``chainlink_price``); hourly up/down, "above" and barrier markets settle
  on the klines themselves.
* Prices (``fair_value``, ``quotes``): fair probability from the path, followed
  ``lag_s`` seconds late, distorted towards 0.5 by ``bias`` and noised
  deterministically in logit space by ``noise``, then quoted on the 0.01 tick with a
  1–5¢ spread. ``lag_s``, ``bias`` and ``noise`` are independent knobs: with all
  three 0 (the default) the mid is the fair value up to the tick, an efficient market
  no model can beat; any one of them makes the market beatable by a model that
  recovers the fair value from the same path (``NOISE_LOGIT`` = 0.12 is the level
  every world had before ``noise`` was a knob). ``fair_probabilities`` gives the fair
  value at the minute asked, never lagged (what the oracle evaluations compare
  against): with a lag it is ahead of the price.
* Answers (``gamma_answers``, ``clob_answers``, ``binance_answers``): the world in the
  real APIs' shapes. Prices-history is one point a minute, or with
  ``sparse_history_step`` one point per step for reach/dip markets.

Synthetic identifiers (stable for a seed, independent of ``now``): market ids are
``family * 10**9 + local`` (15m: 1, hourly: 2, above: 3, reach: 4, dip: 5, monthly
reach: 11, monthly dip: 12, 5m: 14; local = window start / 300, / 900 or / 3600, or
day-, week- or month-index * 10**5 + strike / 10), event ids use families 6–9, 13 and
15 (5m) the same way;
token ids, conditionId and questionID are SHA-256 of ``(seed, market key, role)``
(tokens as ~77-digit decimals). Series ids other than 15m's real 10192 and 5m's real
10684 are made up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay.shapes import to_naive_utc
from btc_tracker_pipeline.replay.simulation import oracle
from btc_tracker_pipeline.replay.simulation.binance_answers import BinanceAnswers, merged_gaps
from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.clob_answers import ClobAnswers
from btc_tracker_pipeline.replay.simulation.fair_value import FairValues
from btc_tracker_pipeline.replay.simulation.gamma_answers import GammaAnswers
from btc_tracker_pipeline.replay.simulation.keyed_random import digest
from btc_tracker_pipeline.replay.simulation.market_catalogue import MarketCatalogue
from btc_tracker_pipeline.replay.simulation.market_terms import SimMarket
from btc_tracker_pipeline.replay.simulation.quotes import Quoter
from btc_tracker_pipeline.replay.simulation.settlement import Settlement
from btc_tracker_pipeline.replay.simulation.timeline import Timeline

# Logit-noise amplitude (standard deviation) of the worlds before ``noise`` was a knob.
NOISE_LOGIT = 0.12
MAX_NOISE = 2.0  # a noise sd of 2 in logit space already swamps any fair value
MAX_STRIKES = 4000
MAX_UPDOWN_LEAD = timedelta(days=7)
MAX_LAG_S = 3600.0  # an hour late is already a market that ignores its news


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
            default world. Bias 0, noise 0 and lag 0 is an efficient market; any other
            setting is beatable by a model that recovers the fair value.
        lag_s: seconds the market price follows its fair value late, in [0,
            ``MAX_LAG_S``] (a known effect on short up/down markets): the quote at
            minute m is priced from the fair value at m − lag_s / 60 (blended in logit
            space between whole minutes; the path start's before it), then biased and
            noised. The oracle (``fair_probabilities``) stays the value at m. 0 (the
            default): no lag.
        updown_5m: also list Polymarket's 5-minute up/down markets, 288 a day (off by
            default: the worlds without them stay as they were).
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
        lag_s: float = 0.0,
        updown_5m: bool = False,
    ) -> None:
        if seed < 0:
            raise ValueError("seed must be >= 0")
        if days <= 0:
            raise ValueError("days must be > 0")
        if not -1.0 < bias < 1.0:
            raise ValueError("bias must be in (-1, 1)")
        if not _number_in(noise, 0.0, MAX_NOISE):
            raise ValueError(f"noise must be a finite number in [0, {MAX_NOISE:g}], not {noise!r}")
        if not _number_in(lag_s, 0.0, MAX_LAG_S):
            raise ValueError(f"lag_s must be a finite number in [0, {MAX_LAG_S:g}], not {lag_s!r}")
        if not isinstance(updown_5m, bool):
            raise ValueError(f"updown_5m must be True or False, not {updown_5m!r}")
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
        self.lag_s = float(lag_s)
        self.updown_5m = updown_5m
        self.sigma_annual = sigma_annual
        self.strikes_per_ladder = strikes_per_ladder
        self.updown_lead = updown_lead
        self._fixed_now = _floor_minute(to_naive_utc(now)) if now is not None else None
        self._clock = clock
        day = to_naive_utc(start) if start is not None else self._raw_now() - timedelta(days=days)
        if start is not None and day != datetime(day.year, day.month, day.day):
            raise ValueError("start must be 00:00 UTC of a day")
        self.start = datetime(day.year, day.month, day.day)
        self.kline_gaps = merged_gaps(kline_gaps)
        # Requests are answered one at a time: the parts below grow and cache as they go.
        self._lock = threading.RLock()
        self._timeline = timeline = Timeline(self.start, self._raw_now)
        self._path = path = BtcPath(seed, sigma_annual)
        self._settlement = settlement = Settlement(seed, path, timeline.origin_min)
        self._catalogue = catalogue = MarketCatalogue(
            seed, timeline, path, strikes_per_ladder, updown_lead, updown_5m
        )
        self._fair_values = FairValues(path, settlement, sigma_annual)
        self._quoter = quoter = Quoter(
            self._fair_values, bias, self.noise, timeline.origin_min, self.lag_s
        )
        self._gamma = GammaAnswers(timeline, path, catalogue, quoter, settlement)
        self._clob = ClobAnswers(timeline, path, catalogue, quoter, settlement, sparse_history_step)
        self._binance = BinanceAnswers(seed, timeline, path, self.kline_gaps)
        self._by_id: dict[str, SimMarket] = catalogue.by_id

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
            **({"lag_s": self.lag_s} if self.lag_s else {}),
            **({"updown_5m": True} if self.updown_5m else {}),
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
            lag_s=float(p.get("lag_s", 0.0)),
            updown_5m=bool(p.get("updown_5m", False)),
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

    # --- Gamma ---------------------------------------------------------------------

    def gamma_markets(self) -> list[dict[str, Any]]:
        """Every market listed at or before ``now()`` in the ``/markets`` shape, oldest
        listing first. Cached per minute; dicts are shared between calls: treat them
        as read-only."""
        with self._lock:
            return list(self._gamma.current()[0])

    def gamma_events(self) -> list[dict[str, Any]]:
        """Every event listed at or before ``now()`` with nested ``markets`` (read-only)."""
        with self._lock:
            return list(self._gamma.current()[1])

    # --- CLOB ----------------------------------------------------------------------

    def price_history(
        self, token_id: str, start_ts: int, end_ts: int, fidelity_min: int
    ) -> list[dict[str, Any]]:
        """Points ``{"t", "p"}`` every ``fidelity_min`` minutes (at least the market's
        ``sparse_history_step``; grid aligned to the epoch, ``t`` jittered by 0–4 s like
        real data) in [start_ts, end_ts], from listing to min(now, closedTime). Outcome 1
        (Down / No) gets 1 - p."""
        with self._lock:
            return self._clob.price_history(token_id, start_ts, end_ts, fidelity_min)

    def book(self, token_id: str) -> dict[str, Any]:
        """CLOB ``/book`` at ``now()``: up to 6 levels a side around the quote; empty
        sides once trading stopped at endDate; UnknownTokenError ("No orderbook
        exists") once the market is closed, as the real CLOB does."""
        with self._lock:
            return self._clob.book(token_id)

    def clob_market(self, condition_id: str) -> dict[str, Any]:
        """CLOB ``/markets/{condition_id}`` at ``now()``; KeyError if unknown or not listed."""
        with self._lock:
            return self._clob.market(condition_id)

    # --- Binance -------------------------------------------------------------------

    def klines(
        self, interval: str, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        """Binance klines of any interval 1m–1d, aggregated from the 1-minute path and
        aligned to UTC, answered like Binance: the first ``limit`` candles opening at or
        after ``start_ms`` (without it, the newest ``limit``), at or before ``end_ms``
        and ``now()``, skipping ``kline_gaps`` however long they are."""
        with self._lock:
            return self._binance.klines(interval, start_ms, end_ms, limit)

    def ticker_24h(self) -> dict[str, Any]:
        """Binance 24h rolling ticker at ``now()`` (window shortened at the path start)."""
        with self._lock:
            return self._binance.ticker_24h()

    # --- for tests and label checks ------------------------------------------------

    def chainlink_price(self, ts: datetime) -> float:
        """The simulated Chainlink BTC/USD print at ``ts`` floored to the minute (what
        15-minute up/down markets settle on); ValueError outside the path so far."""
        with self._lock:
            minute = self._timeline.floor(to_naive_utc(ts))
            if minute < 0 or minute > self._timeline.now_min():
                raise ValueError(f"no Chainlink print at {ts} (world {self.start} → {self.now()})")
            self._path.ensure(self._timeline.now_min() + 2)
            return float(self._settlement.chainlink(np.array([minute]))[0])

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

    def _quotes(self, markets: Sequence[SimMarket], minutes: np.ndarray) -> dict[str, np.ndarray]:
        """Quotes of ``markets[i]`` at path minutes ``minutes[i, :]`` (``Quoter.quotes``)."""
        return self._quoter.quotes(markets, minutes)

    # --- the oracle ----------------------------------------------------------------

    def fair_probabilities(
        self, market_ids: Sequence[str], at: Sequence[datetime] | np.ndarray
    ) -> np.ndarray:
        """The oracle: for each row (``market_ids[i]``, ``at[i]``, naive UTC), the fair
        probability of outcome 0 (Up / Yes) at the path minute ``floor(at[i])``, as the
        world priced it: the value the quotes distort by ``bias`` and ``noise`` into the
        served mid (0 or 1 once the outcome is known); with ``lag_s`` the mid follows it
        late, this is the value at the minute itself. NaN for a market id the world does
        not know, or a time before the path start or before the market is listed (no
        quote existed then; this keeps each row independent of the others).

        It does not wait for ``now()``: the path and the catalogue grow to the latest
        minute asked. Vectorised (one fair-value computation over all rows)."""
        with self._lock:
            return oracle.fair_probabilities(
                self._timeline, self._path, self._catalogue, self._fair_values, market_ids, at
            )


def _number_in(value: object, low: float, high: float) -> bool:
    """Whether ``value`` is a real number (not a bool) in [low, high] (NaN is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return False
    return low <= float(value) <= high


def _floor_minute(dt: datetime) -> datetime:
    return dt.replace(second=0, microsecond=0)
