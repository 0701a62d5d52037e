"""Walk-forward folds by resolution time, grouped by event, purged and embargoed.

docs/modeling.md §2.2: a random row split leaks (snapshots of one market, and strikes
of one ladder, land on both sides). Here the unit is the **event** (``event_id``):
all markets of a ladder share one BTC path and one expiry, so they always move
together. An event resolves at the latest ``resolved_at`` of its markets.

For each test window [test_start, test_end) (consecutive windows of ``test_span``,
aligned to multiples of ``test_span`` since the Unix epoch, so daily windows start
at 00:00 UTC):

- **test**: every row of the events that resolve inside the window;
- **candidates**: the events resolved before ``test_start``;
- **purge**: drop every candidate event with a market whose life (first snapshot →
  ``resolved_at``) overlaps [test_start − embargo, test_end). With events resolved
  before ``test_start`` this removes exactly those resolved inside the embargo, so
  every training label was known at least ``embargo`` before the window opens;
- **calibration**: the latest ``calib_fraction`` (≈ 25 %) of the remaining events by
  resolution time; **train**: the rest (what the booster is fitted on).

So train < calibration < test in resolution time, the three are disjoint by event,
and a fold is made only when train + calibration hold at least ``min_train_markets``
markets (windows with no test events, or too little history, are skipped).

The embargo should be at least the life of the markets tested (docs §2.2: one day
for daily markets, a month for monthly ones): a test row is predicted by a model
whose labels run up to ``test_start − embargo``, which is later than that row's own
snapshot when the test market lived longer than the embargo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

# Same as train.MIN_RESOLVED_MARKETS (checked by a test; importing it would be circular).
DEFAULT_MIN_TRAIN_MARKETS = 200
CALIB_FRACTION = 0.25
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: positional row indices into the dataset (int64, sorted).

    ``train_idx``: rows the booster is fitted on; ``calib_idx``: rows the Platt
    calibrator is fitted on (later events than train); ``test_idx``: rows scored, of
    the events resolving in [``test_start``, ``test_end``).
    """

    train_idx: np.ndarray
    calib_idx: np.ndarray
    test_idx: np.ndarray
    test_start: datetime
    test_end: datetime


def event_table(ds: pl.DataFrame) -> pl.DataFrame:
    """One row per event: ``event_id``, ``resolved_at`` (latest of its markets),
    ``first_snapshot``, ``n_markets``; sorted by ``resolved_at, event_id``."""
    return (
        ds.group_by("event_id")
        .agg(
            pl.col("resolved_at").max(),
            pl.col("snapshot_ts").min().alias("first_snapshot"),
            pl.col("market_id").n_unique().alias("n_markets"),
        )
        .sort("resolved_at", "event_id")
    )


def split_calibration(
    events: pl.DataFrame, calib_fraction: float = CALIB_FRACTION
) -> tuple[list[str], list[str]]:
    """(train events, calibration events): the latest ``ceil(calib_fraction · n)``
    events by (``resolved_at``, ``event_id``) calibrate, the rest train. Needs ≥ 2 events."""
    ordered = events.sort("resolved_at", "event_id")["event_id"].to_list()
    if len(ordered) < 2:
        raise ValueError(
            f"need at least 2 events to split off a calibration fold, have {len(ordered)}"
        )
    n_calib = min(max(1, math.ceil(calib_fraction * len(ordered))), len(ordered) - 1)
    return ordered[:-n_calib], ordered[-n_calib:]


def _floor(moment: datetime, span: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // span) * span


def walk_forward_folds(
    ds: pl.DataFrame,
    *,
    test_span: timedelta = timedelta(days=1),
    min_train_markets: int = DEFAULT_MIN_TRAIN_MARKETS,
    embargo: timedelta = timedelta(hours=1),
    calib_fraction: float = CALIB_FRACTION,
    start: datetime | None = None,
) -> list[Fold]:
    """The walk-forward folds of ``ds`` (a ``build_dataset`` frame); rules in the module
    docstring. ``start``: no test window opens before it. Returns [] when no window
    has enough history."""
    if ds.height == 0:
        return []
    events = event_table(ds)
    markets = ds.group_by("market_id").agg(
        pl.col("event_id").first(),
        pl.col("snapshot_ts").min().alias("first_snapshot"),
        pl.col("resolved_at").max(),
    )
    event_ids = events["event_id"].to_list()
    event_code = {e: i for i, e in enumerate(event_ids)}
    resolved = events["resolved_at"].to_numpy()
    n_markets = events["n_markets"].to_numpy()
    m_event = np.array([event_code[e] for e in markets["event_id"].to_list()], dtype=np.int64)
    m_first = markets["first_snapshot"].to_numpy()
    m_resolved = markets["resolved_at"].to_numpy()
    row_event = np.array([event_code[e] for e in ds["event_id"].to_list()], dtype=np.int64)

    def rows_of(codes: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(row_event, codes)).astype(np.int64)

    first_start = _floor(events["resolved_at"].min(), test_span)
    if start is not None:
        first_start = max(first_start, _floor(start, test_span))
        if first_start < start:
            first_start += test_span
    last = events["resolved_at"].max()
    folds: list[Fold] = []
    test_start = first_start
    while test_start <= last:
        test_end = test_start + test_span
        lo, hi = np.datetime64(test_start, "us"), np.datetime64(test_end, "us")
        test_codes = np.flatnonzero((resolved >= lo) & (resolved < hi))
        if test_codes.size:
            candidate = resolved < lo
            # Purge: a market's life [first snapshot, resolved_at] overlapping
            # [test_start − embargo, test_end) takes its whole event out of training.
            guard = np.datetime64(test_start - embargo, "us")
            overlaps = (m_first < hi) & (m_resolved >= guard)
            purged = np.zeros(len(event_ids), dtype=bool)
            purged[m_event[overlaps]] = True
            pool = np.flatnonzero(candidate & ~purged)
            if pool.size >= 2 and n_markets[pool].sum() >= min_train_markets:
                # ``pool`` is in (resolved_at, event_id) order: the tail calibrates.
                n_calib = min(max(1, math.ceil(calib_fraction * pool.size)), pool.size - 1)
                folds.append(
                    Fold(
                        train_idx=rows_of(pool[:-n_calib]),
                        calib_idx=rows_of(pool[-n_calib:]),
                        test_idx=rows_of(test_codes),
                        test_start=test_start,
                        test_end=test_end,
                    )
                )
        test_start = test_end
    return folds
