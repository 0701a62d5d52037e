"""The oracle: the fair value the simulated world priced each market from, at any
minute, for scoring a model against the best it could have known."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from btc_tracker_pipeline.replay.simulation.btc_path import BtcPath
from btc_tracker_pipeline.replay.simulation.fair_value import FairValues
from btc_tracker_pipeline.replay.simulation.market_catalogue import MarketCatalogue
from btc_tracker_pipeline.replay.simulation.timeline import Timeline


def fair_probabilities(
    timeline: Timeline,
    path: BtcPath,
    catalogue: MarketCatalogue,
    fair_values: FairValues,
    market_ids: Sequence[str],
    at: Sequence[datetime] | np.ndarray,
) -> np.ndarray:
    """Fair probability of outcome 0 for each (``market_ids[i]``, ``at[i]``) row, NaN
    where no quote existed (see ``SimulatedWorld.fair_probabilities``). Grows the path
    and the catalogue to the latest minute asked."""
    ids = [str(market_id) for market_id in market_ids]
    minutes = timeline.minutes_of(at)
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
    last = int(minutes.max())
    path.ensure(last + 2)
    catalogue.ensure(last)
    found = [catalogue.by_id.get(market_id) for market_id in index]
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
    out[rows] = fair_values.of(fam, start, end, strike, minutes[rows])
    return out
