"""Run the collection assets at a simulated time (benches of live ticks).

A live tick is decided by the pipeline's clock (the ``clock`` resource, which reads
``collect.runs.utcnow``); to replay a day of live ticks in minutes, point that clock
and the simulated world's clock at the same moment. Tests that materialize assets
directly pass ``ClockResource(now_utc=...)`` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from btc_tracker_pipeline.collect import runs


@contextlib.contextmanager
def assets_clock(now: datetime) -> Iterator[None]:
    """Make the pipeline's clock read ``now`` (naive UTC) in the block."""
    runs._simulated_now.append(now)
    try:
        yield
    finally:
        runs._simulated_now.pop()
