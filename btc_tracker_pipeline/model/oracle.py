"""The oracle: on a simulated world, the fair value each row's market price was made from.

A simulated world prices every quote from a fair probability (its BTC path and the
contract's rule), then distorts it by ``bias`` and ``noise``. Scoring that fair value
against the market on the same rows gives the skill any model could at best reach
(``metrics`` ``bss_oracle``): about 0 on an efficient world, where a model showing skill
has a leak, and the ceiling the model's skill is a share of elsewhere.

A row's information time is its quote's: ``snapshot_ts`` − ``quote_age_s`` (a history
quote is up to a minute old), the snapshot itself for a live quote. Real data has no
oracle: the column is null.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from btc_tracker_pipeline.model.metrics import ORACLE
from btc_tracker_pipeline.replay.demo_world import load_world
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

log = logging.getLogger(__name__)


def information_times(rows: pl.DataFrame) -> pl.Series:
    """When each row's market price was quoted: ``snapshot_ts`` minus a positive
    ``quote_age_s`` (seconds), else ``snapshot_ts``."""
    age = pl.col("quote_age_s").cast(pl.Float64) if "quote_age_s" in rows.columns else pl.lit(0.0)
    shift = pl.duration(
        microseconds=(age.clip(lower_bound=0.0).fill_null(0.0) * 1e6).cast(pl.Int64)
    )
    return rows.select((pl.col("snapshot_ts") - shift).alias("as_of"))["as_of"]


def with_oracle(rows: pl.DataFrame, world: SimulatedWorld | None) -> pl.DataFrame:
    """``rows`` (``market_id, snapshot_ts``, optional ``quote_age_s``) with ``oracle_prob``:
    the world's fair probability of YES at each row's information time; null without a
    world or where the world has none (an id it does not know)."""
    if world is None or rows.is_empty():
        return rows.with_columns(pl.lit(None, dtype=pl.Float64).alias(ORACLE))
    times = information_times(rows).to_numpy()
    fair = world.fair_probabilities(rows["market_id"].cast(pl.String).to_list(), times)
    values = pl.Series(ORACLE, np.asarray(fair, dtype=np.float64)).fill_nan(None)
    return rows.with_columns(values)


def recorded_world(warehouse: Path, rows: pl.DataFrame) -> SimulatedWorld | None:
    """The simulated world recorded beside ``warehouse`` (``<stem>.world.json``, written by
    ``btc-tracker demo`` and by replay sessions), at the newest snapshot of ``rows``;
    None for a warehouse of real data, or when the record cannot be read (logged)."""
    newest = rows["snapshot_ts"].max() if rows.height else None
    try:
        world = load_world(Path(warehouse), now=newest + timedelta(minutes=1) if newest else None)
    except ValueError as exc:
        log.warning("no oracle: %s", exc)
        return None
    return world if isinstance(world, SimulatedWorld) else None
