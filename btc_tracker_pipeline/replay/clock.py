"""Run the collection assets at a simulated time (benches and tests of live ticks).

A live tick is decided by the assets' own clock (``is_live(window_end, utcnow())``); to
replay a day of live ticks in minutes, point that clock and the simulated world's clock
at the same moment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from btc_tracker_pipeline.defs.btc import assets as btc_assets
from btc_tracker_pipeline.defs.markets import assets as markets_assets

# The asset modules that read the clock to choose the live or the history path.
CLOCKED_MODULES = (markets_assets, btc_assets)


@contextlib.contextmanager
def assets_clock(now: datetime) -> Iterator[None]:
    """Make the collection assets' ``utcnow`` return ``now`` (naive UTC) in the block."""
    saved = [module.utcnow for module in CLOCKED_MODULES]
    for module in CLOCKED_MODULES:
        module.utcnow = lambda: now
    try:
        yield
    finally:
        for module, original in zip(CLOCKED_MODULES, saved, strict=True):
            module.utcnow = original
