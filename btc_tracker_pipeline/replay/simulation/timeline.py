"""The simulated world's minutes: minute 0 opens at the path start (00:00 UTC).

Every price, quote and listing is placed on this grid of whole minutes; the current
minute comes from the world's clock and is never before the path start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import numpy as np

from btc_tracker_pipeline.replay.shapes import epoch_s, to_naive_utc


class Timeline:
    """Converts between naive-UTC datetimes and path minutes.

    Args:
        start: the path start (minute 0), naive UTC.
        now: the current time, naive UTC, floored to the minute.
    """

    def __init__(self, start: datetime, now: Callable[[], datetime]) -> None:
        self.start = start
        self.origin_s = int(epoch_s(start))
        self._now = now

    @property
    def origin_min(self) -> int:
        """Minutes from the Unix epoch to the path start."""
        return self.origin_s // 60

    def now_min(self) -> int:
        """The current minute (0 before the path start)."""
        return max(0, (int(epoch_s(self._now())) - self.origin_s) // 60)

    def floor(self, dt: datetime) -> int:
        """The minute holding ``dt`` (negative before the path start)."""
        return math.floor((epoch_s(dt) - self.origin_s) / 60)

    def ceil(self, dt: datetime) -> int:
        """The first minute starting at or after ``dt``."""
        return math.ceil((epoch_s(dt) - self.origin_s) / 60)

    def at(self, minute: int) -> datetime:
        """When ``minute`` starts."""
        return self.start + timedelta(minutes=minute)

    def minutes_of(self, at: Sequence[datetime] | np.ndarray) -> np.ndarray:
        """Minutes ``floor(at)`` (int64; negative before the path start) of naive-UTC
        datetimes (aware ones are converted) or a datetime64 array."""
        stamps = np.asarray(at)
        if stamps.dtype.kind != "M":
            stamps = np.array([to_naive_utc(t) for t in at], dtype="datetime64[us]")
        micros = stamps.astype("datetime64[us]").astype(np.int64)
        if len(micros) == 0:
            return micros
        # NaT is the smallest int64: before any path start
        return np.where(
            micros == np.iinfo(np.int64).min, -1, (micros // 1_000_000 - self.origin_s) // 60
        )
