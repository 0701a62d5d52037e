"""The events of each family, as the catalogue lists them (docs/apis.md §1.8): titles,
slugs, rules, windows, strikes and closing times.

* 5-minute (with ``updown_5m``), 15-minute and hourly up/down: one market per window,
  Up when the window's end price is at least its start price (see ``settlement``). The
  5-minute windows are worded, shaped and settled like the 15-minute ones
  ("Bitcoin Up or Down - March 22, 3:50AM-3:55AM ET", ``btc-updown-5m-<start>``).
* Daily "above K" ladders settling at 12:00 ET, strikes around the spot at listing.
* Weekly "reach K" / "dip to K" events (Monday 00:00 ET to the next Monday) and
  monthly ones ("Will Bitcoin reach $X in March?"): reach strikes above the spot at
  listing, dip strikes below. A barrier market closes YES 5-95 minutes after the 1m
  candle that touched its strike, often weeks before its endDate, and its price
  history stops there; one that never touched closes NO about an hour after its
  endDate (docs/apis.md §3.8). Touches count from max(period start, path start).

Real shapes, on some markets (docs/apis.md §1.6, §3.8): about 1 in 10 5- or 15-minute windows
has only its title to say what it is (a title slug, no ``eventStartTime``); 1 in 4
settles on Chainlink's 60-second TWAP (``cryptoMarketConfig`` and the TWAP stream as
resolution source); 1 in 5 "above" ladders names its strikes only in the rules
(`"Close" price of 85,000.01 or higher`, no ``groupItemTitle``, the event title as
question); 1 in 4 ladders is a neg-risk group (``negRisk``, ``negRiskMarketID``). The
settlement rule on the path is the same for all.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from btc_tracker_pipeline.replay import shapes
from btc_tracker_pipeline.replay.simulation.et_calendar import (
    ET,
    MONTHS,
    clock12,
    month_bounds,
    to_et,
    to_utc,
    week_bounds,
    week_label,
)
from btc_tracker_pipeline.replay.simulation.keyed_random import digest, unit
from btc_tracker_pipeline.replay.simulation.market_factory import MarketFactory
from btc_tracker_pipeline.replay.simulation.market_terms import (
    ABOVE,
    DIP,
    MONTH,
    REACH,
    UD1H,
    UD5,
    UD15,
    UPDOWN,
    UPDOWN_SECONDS,
    SimEvent,
)
from btc_tracker_pipeline.replay.simulation.market_wording import (
    ABOVE_DESCRIPTION,
    ABOVE_RULES_STRIKE,
    MONTH_HIT_DESCRIPTION,
    TWAP_CONFIG,
    TWAP_CONFIG_5M,
    TWAP_SOURCE,
    UPDOWN_15M_DESCRIPTION,
    UPDOWN_HOURLY_DESCRIPTION,
    WEEK_HIT_DESCRIPTION,
)

# Share of markets (15m windows) or ladders (days) written in each real shape.
TITLE_ONLY_SHARE, TWAP_SHARE, RULES_STRIKE_SHARE, NEG_RISK_SHARE = 0.1, 0.25, 0.2, 0.25
# docs/apis.md §3.8: a barrier resolves YES within hours of the touch (here 5-95 min).
TOUCH_CLOSE_MIN = timedelta(minutes=5)
TOUCH_CLOSE_SPREAD_S = 90 * 60
# Round strike spacings, widest first.
STRIKE_STEPS = (2000, 1000, 500, 250, 100, 50, 20, 10)
# Id prefixes (``prefix * 10**9 + local``) of the up/down markets and events: the
# 5-minute family's are past every other family's, so no id is shared.
UPDOWN_MARKET_PREFIX = {UD15: 1, UD1H: 2, UD5: 14}
UPDOWN_EVENT_PREFIX = {UD15: 6, UD1H: 7, UD5: 15}
# Each up/down market's volume scale (a 5-minute window trades less than a 15-minute one).
UPDOWN_VOLUME = {UD5: 8_000.0, UD15: 20_000.0, UD1H: 60_000.0}
# Day and week 0 of the ids of daily and weekly events.
DAY0 = date(2020, 1, 1)
MONDAY0 = date(2020, 1, 6)


def strike_label(strike: int) -> str:
    """Slug fragment of a strike: ``64k`` for whole thousands, else the full number."""
    return f"{strike // 1000}k" if strike % 1000 == 0 else str(strike)


def step_for(count: int, spot: float, span: float) -> int:
    """Largest round strike spacing that keeps ``count`` strikes within ``span * spot``."""
    for step in STRIKE_STEPS:
        if count * step <= span * spot:
            return step
    return STRIKE_STEPS[-1]


class EventBuilder:
    """Builds one event of a family at its listing time.

    Args:
        factory: makes the market and event records.
        strikes_per_ladder: markets per "above" ladder and per barrier event.
    """

    def __init__(self, factory: MarketFactory, strikes_per_ladder: int) -> None:
        self._factory = factory
        self._timeline = factory.timeline
        self._path = factory.path
        self.strikes_per_ladder = strikes_per_ladder

    def build(self, family: int, cursor: Any, key: str, listed: datetime) -> SimEvent:
        """The event of ``family`` at ``cursor`` (an up/down window start in epoch
        seconds, or the day, Monday or first of the month it is about), listed at
        ``listed``."""
        if family in UPDOWN:
            return self._updown(family, cursor, key, listed)
        if family == ABOVE:
            return self._above(cursor, key, listed)
        if family == MONTH:
            return self._month_hit(cursor, key, listed)
        return self._week_hit(cursor, key, listed)

    def _updown(self, family: int, t0: int, key: str, listed: datetime) -> SimEvent:
        title_only, crypto = False, None
        start = shapes.from_epoch_s(t0)
        seconds = UPDOWN_SECONDS[family]
        end = start + timedelta(seconds=seconds)
        local = to_et(start)
        day = f"{MONTHS[local.month - 1]} {local.day}"
        local_id = t0 // seconds
        if family in (UD5, UD15):
            title = (
                f"Bitcoin Up or Down - {day}, {clock12(local, True)}-{clock12(to_et(end), True)} ET"
            )
            slug = f"btc-updown-{seconds // 60}m-{t0}"
            source = shapes.CHAINLINK_SOURCE
            description = UPDOWN_15M_DESCRIPTION
            title_only = self._factory.shape(key, 1) < TITLE_ONLY_SHARE
            if title_only:
                # "bitcoin-up-or-down-march-11-1100am-1115am-et": nothing but the title
                slug = re.sub(r"[^a-z0-9]+", "-", title.lower().replace(":", "")).strip("-")
            if self._factory.shape(key, 2) < TWAP_SHARE:
                source = TWAP_SOURCE
                crypto = TWAP_CONFIG_5M if family == UD5 else TWAP_CONFIG
        else:
            title = f"Bitcoin Up or Down - {day}, {clock12(local, False)} ET"
            hour = clock12(local, False).lower()
            # the repeated 1 AM at the end of DST would otherwise reuse a slug
            fold = "-2" if local.fold else ""
            slug = (
                f"bitcoin-up-or-down-{day.lower().replace(' ', '-')}-{local.year}-{hour}-et{fold}"
            )
            source = shapes.BINANCE_SOURCE
            description = UPDOWN_HOURLY_DESCRIPTION
        closed_at = self._factory.closing(key, end, timedelta(minutes=2))
        market = self._factory.market(
            family=family,
            key=key,
            event_key=key,
            market_id=str(UPDOWN_MARKET_PREFIX[family] * 10**9 + local_id),
            question=title,
            slug=slug,
            description=description,
            source=source,
            outcomes=("Up", "Down"),
            listed=listed,
            start=start,
            end=end,
            closed_at=closed_at,
            volume_scale=UPDOWN_VOLUME[family],
            title_only=title_only,
            crypto_config=crypto,
        )
        return self._factory.event(
            family=family,
            key=key,
            event_id=str(UPDOWN_EVENT_PREFIX[family] * 10**9 + local_id),
            slug=slug,
            title=title,
            description=description,
            source=source,
            listed=listed,
            end=end,
            markets=[market],
            start_time=None if title_only else start,
        )

    def _above(self, day: date, key: str, listed: datetime) -> SimEvent:
        end = to_utc(datetime(day.year, day.month, day.day, 12, tzinfo=ET))
        spot = float(self._path.p[self._timeline.floor(listed)])
        n = self.strikes_per_ladder
        step = step_for(n, spot, 0.3)
        center = round(spot / step) * step
        strikes = [k for k in (center + (i - (n - 1) // 2) * step for i in range(n)) if k > 0]
        label = f"{MONTHS[day.month - 1]} {day.day}"
        label_slug = label.lower().replace(" ", "-")
        closed_at = self._factory.closing(key, end, timedelta(hours=1))
        day_index = (day - DAY0).days
        rules_only = self._factory.shape(key, 3) < RULES_STRIKE_SHARE
        neg_risk_id = (
            "0x" + digest(self._factory.seed, key, "negRisk").hex()
            if self._factory.shape(key, 4) < NEG_RISK_SHARE
            else None
        )
        markets = [
            self._factory.market(
                family=ABOVE,
                key=f"{key}:{strike}",
                event_key=key,
                market_id=str(3 * 10**9 + day_index * 10**5 + strike // 10),
                question=(
                    f"Bitcoin above ___ on {label}?"
                    if rules_only
                    else f"Will the price of Bitcoin be above ${strike:,} on {label}?"
                ),
                slug=f"bitcoin-above-{strike_label(strike)}-on-{label_slug}",
                description=(
                    ABOVE_RULES_STRIKE.format(strike=f"{strike:,}")
                    if rules_only
                    else ABOVE_DESCRIPTION
                ),
                source=shapes.BINANCE_SOURCE,
                outcomes=("Yes", "No"),
                listed=listed,
                start=listed,
                end=end,
                closed_at=closed_at,
                strike=float(strike),
                group_title=None if rules_only else f"{strike:,}",
                threshold=i,
                volume_scale=150_000.0,
                neg_risk_market_id=neg_risk_id,
            )
            for i, strike in enumerate(strikes)
        ]
        return self._factory.event(
            family=ABOVE,
            key=key,
            event_id=str(8 * 10**9 + day_index),
            slug=f"bitcoin-above-on-{label_slug}",
            title=f"Bitcoin above ___ on {label}?",
            description=ABOVE_DESCRIPTION,
            source=shapes.BINANCE_SOURCE,
            listed=listed,
            end=end,
            markets=markets,
            neg_risk=neg_risk_id is not None,
        )

    def _week_hit(self, monday: date, key: str, listed: datetime) -> SimEvent:
        week_start, end = week_bounds(monday)
        label, label_slug = week_label(monday)
        week_index = (monday - MONDAY0).days // 7
        return self._barriers(
            key=key,
            listed=listed,
            period=(week_start, end),
            label=label,
            label_slug=label_slug,
            description=WEEK_HIT_DESCRIPTION,
            span=0.25,
            ids=(4 * 10**9 + week_index * 10**5, 5 * 10**9 + week_index * 10**5),
            event_id=str(9 * 10**9 + week_index),
            event_family=REACH,
            volume_scale=40_000.0,
        )

    def _month_hit(self, first: date, key: str, listed: datetime) -> SimEvent:
        month = MONTHS[first.month - 1]
        month_index = (first.year - DAY0.year) * 12 + first.month - 1
        return self._barriers(
            key=key,
            listed=listed,
            period=month_bounds(first),
            label=f"in {month}",
            label_slug=f"in-{month.lower()}-{first.year}",
            description=MONTH_HIT_DESCRIPTION,
            span=0.5,
            ids=(11 * 10**9 + month_index * 10**5, 12 * 10**9 + month_index * 10**5),
            event_id=str(13 * 10**9 + month_index),
            event_family=MONTH,
            volume_scale=120_000.0,
        )

    def _touch_close(
        self, key: str, up: bool, strike: float, start_min: int, end_min: int, end: datetime
    ) -> datetime:
        """closedTime of a barrier: 5-95 min after the candle that touched the strike
        closed (docs/apis.md §3.8), else an hour or so after endDate (a NO)."""
        self._path.ensure(end_min + 3)
        if up:
            reached = np.maximum.accumulate(self._path.high[start_min:end_min])
            first = int(np.searchsorted(reached, strike, side="left"))
        else:
            reached = np.minimum.accumulate(self._path.low[start_min:end_min])
            first = int(np.searchsorted(-reached, -strike, side="left"))
        if first >= len(reached):
            return self._factory.closing(key, end, timedelta(hours=1))
        key_hash = self._factory.key_hash(key)
        delay = TOUCH_CLOSE_MIN + timedelta(
            seconds=int(unit(key_hash, 0, 15) * TOUCH_CLOSE_SPREAD_S)
        )
        return self._timeline.at(start_min + first + 1) + delay

    def _barriers(
        self,
        *,
        key: str,
        listed: datetime,
        period: tuple[datetime, datetime],
        label: str,
        label_slug: str,
        description: str,
        span: float,
        ids: tuple[int, int],
        event_id: str,
        event_family: int,
        volume_scale: float,
    ) -> SimEvent:
        """A "What price will Bitcoin hit …" event: reach strikes above the listing
        spot, dip strikes below, each market closing early on its own touch."""
        period_start, end = period
        spot = float(self._path.p[self._timeline.floor(listed)])
        n_up, n_down = (self.strikes_per_ladder + 1) // 2, self.strikes_per_ladder // 2
        step = step_for(max(n_up, 1), spot, span)
        up_base = (math.floor(spot / step) + 1) * step
        down_base = (math.ceil(spot / step) - 1) * step
        reach = [up_base + i * step for i in range(n_up)][::-1]
        dip = [k for k in (down_base - i * step for i in range(n_down)) if k > 0]
        timeline = self._timeline
        effective_start = max(period_start, timeline.start)
        start_min, end_min = max(0, timeline.floor(effective_start)), timeline.floor(end)
        specs = [(REACH, k, "↑", "reach", "High", "equal to or greater than") for k in reach] + [
            (DIP, k, "↓", "dip to", "Low", "equal to or less than") for k in dip
        ]
        markets = []
        for i, (family, strike, arrow, word, field, cmp) in enumerate(specs):
            market_key = f"{key}:{word}:{strike}"
            closed_at = self._touch_close(
                market_key, family == REACH, float(strike), start_min, end_min, end
            )
            markets.append(
                self._factory.market(
                    family=family,
                    key=market_key,
                    event_key=key,
                    market_id=str(ids[family - REACH] + strike // 10),
                    question=f"Will Bitcoin {word} ${strike:,} {label}?",
                    slug=(
                        f"will-bitcoin-{word.replace(' ', '-')}-{strike_label(strike)}-{label_slug}"
                    ),
                    description=description.format(field=field, cmp=cmp),
                    source=shapes.BINANCE_SOURCE,
                    outcomes=("Yes", "No"),
                    listed=listed,
                    start=effective_start,
                    end=end,
                    closed_at=closed_at,
                    strike=float(strike),
                    group_title=f"{arrow} {strike:,}",
                    threshold=i,
                    volume_scale=volume_scale,
                )
            )
        return self._factory.event(
            family=event_family,
            key=key,
            event_id=event_id,
            slug=f"what-price-will-bitcoin-hit-{label_slug}",
            title=f"What price will Bitcoin hit {label}?",
            description=description.format(field="High", cmp="equal to or greater than"),
            source=shapes.BINANCE_SOURCE,
            listed=listed,
            end=end,
            markets=markets,
        )
