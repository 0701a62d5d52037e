"""The replay worlds of the model tests (``test_model_worlds_*.py``): a 5- or 6-day world
is backfilled through the runner (the `btc-tracker backfill` path), then `train_job`
(price_model walk-forward in 12-hour test windows + paper_trades) runs. The worlds are
small, so the training minimum is lowered through run config; bench/model_worlds.py
runs more of them. Fewer days would not do: below ~50 training events the booster
grows no tree (the model is the market), so a 3-day world shows nothing either way.

One world per test module, so pytest-xdist (``--dist loadscope``) builds the two worlds
on different workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from btc_tracker_pipeline.partitions import key_of
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import NOISE_LOGIT, SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_job, run_windows

NOW = datetime(2026, 3, 1)
# A favourite-longshot distortion documented as strong: logit(p_market) = 0.3·logit(p_fair).
STRONG_BIAS = 0.7
# The distorted world keeps the logit noise every world had before it was a knob.
STRONG_NOISE = NOISE_LOGIT
TRAIN_CONFIG = {
    "ops": {"price_model": {"config": {"min_resolved_markets": 40, "test_span_hours": 12.0}}}
}


@dataclass
class World:
    """A backfilled and trained world: the walk-forward report and the paper metrics."""

    bias: float
    noise: float
    tmp: Path
    report: dict
    paper: dict
    instance: dg.DagsterInstance
    full_report: dict
    tradeable: dict


def backfill_and_train(
    bias: float, tmp: Path, noise: float = 0.0, days: int = 5, **world_kw: Any
) -> Iterator[World]:
    """Backfill ``days`` days of a world with market ``bias`` and ``noise`` (and any other
    SimulatedWorld keywords, e.g. ``lag_s``) into ``tmp``, run train_job, and yield the
    result while the replay session (instance, server) is open."""
    world = SimulatedWorld(seed=7, days=days + 1, now=NOW, bias=bias, noise=noise, **world_kw)
    with replay_session(world, tmp) as session:
        first = key_of(NOW - timedelta(days=days))
        keys = partition_keys(first, "2026-02-28-23:45")
        assert all(o.success for o in run_windows(keys, instance=session.instance))
        train = run_job("train_job", instance=session.instance, run_config=TRAIN_CONFIG)
        assert train.success
        meta = {
            e.asset_key.to_user_string(): e.materialization.metadata
            for e in train.get_asset_materialization_events()
        }
        yield World(
            bias,
            noise,
            tmp,
            meta["price_model"]["report"].value["overall"],
            meta["paper_trades"]["paper_metrics"].value,
            session.instance,
            meta["price_model"]["report"].value,
            meta["paper_trades"]["tradeable_families"].value,
        )
