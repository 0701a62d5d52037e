"""The simulated markets' families, and what the world keeps of each market and event:
its Gamma fields, the window or strike it settles on, when it lists and closes (as
path minutes) and how much it trades."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from btc_tracker_pipeline.replay.shapes import EventStatic, MarketStatic

# Market families: 15-minute and hourly up/down, daily "above K", barrier reach / dip.
UD15, UD1H, ABOVE, REACH, DIP = 0, 1, 2, 3, 4
MONTH = 5  # catalogue of monthly "What price will Bitcoin hit in <Month>?" events
UD5 = 6  # 5-minute up/down (only in worlds built with ``updown_5m``)
# The up/down families, shortest window first, and their window lengths in seconds.
UPDOWN = (UD5, UD15, UD1H)
UPDOWN_SECONDS = {UD5: 300, UD15: 900, UD1H: 3600}


@dataclass(frozen=True, slots=True)
class SimMarket:
    """One simulated market."""

    static: MarketStatic
    family: int
    event_key: str
    key_hash: int
    listed_min: int  # first minute at which the market is visible
    start_min: int  # up/down window start; reach/dip effective week start; else listing
    end_min: int  # endDate
    closed_at: datetime
    closed_min: int  # first minute at which the market is closed
    strike: float  # nan for up/down
    volume_total: float
    liquidity_base: float
    uma_present: bool
    competitive: float


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One simulated event and its markets."""

    static: EventStatic
    family: int
    key_hash: int
    listed_min: int
    closed_min: int
    markets: tuple[SimMarket, ...]
