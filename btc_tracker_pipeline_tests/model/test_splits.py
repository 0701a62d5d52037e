"""Walk-forward folds: grouped by event, purged, calibration between train and test."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.model.splits import (
    DEFAULT_MIN_TRAIN_MARKETS,
    Fold,
    event_table,
    split_calibration,
    walk_forward_folds,
)
from btc_tracker_pipeline.model.train import MIN_RESOLVED_MARKETS

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1)
HOUR = timedelta(hours=1)


def ladder_world(days: int = 6, seed: int = 0) -> pl.DataFrame:
    """The split columns of a dataset: hourly up/down markets (own events, 2 h lives)
    and daily 5-strike ladders (one event, 2-day lives, resolving at 12:00; one strike
    of each touched and settled early), rows every 15 minutes of each life."""
    rng = np.random.default_rng(seed)
    rows = []

    def market(market_id: str, event_id: str, first: datetime, resolved: datetime) -> None:
        ts = first
        while ts < resolved:
            rows.append((market_id, event_id, ts, resolved))
            ts += timedelta(minutes=15 * int(rng.integers(1, 4)))

    for h in range(days * 24):
        resolved = T0 + (h + 2) * HOUR + timedelta(minutes=1)
        market(f"ud{h}", f"ud{h}", resolved - 2 * HOUR, resolved)
    for d in range(days):
        noon = T0 + timedelta(days=d, hours=12)
        for k in range(5):
            early = noon - timedelta(hours=3) if k == 0 else noon
            market(f"lad{d}-{k}", f"ladder{d}", noon - timedelta(days=2), early)
    return pl.DataFrame(
        rows,
        schema={
            "market_id": pl.String,
            "event_id": pl.String,
            "snapshot_ts": pl.Datetime("us"),
            "resolved_at": pl.Datetime("us"),
        },
        orient="row",
    ).sort("resolved_at", "event_id", "market_id", "snapshot_ts")


@pytest.fixture(scope="module")
def ds() -> pl.DataFrame:
    return ladder_world()


@pytest.fixture(scope="module")
def folds(ds) -> list[Fold]:
    return walk_forward_folds(ds, min_train_markets=50)


def ids(ds: pl.DataFrame, idx: np.ndarray, col: str) -> set[str]:
    return set(ds[idx][col].to_list())


def test_folds_roll_forward_daily(ds, folds):
    assert len(folds) >= 4
    starts = [f.test_start for f in folds]
    assert starts == sorted(starts)
    for f in folds:
        assert f.test_end - f.test_start == timedelta(days=1)
        assert f.test_start.hour == 0 and f.test_start.minute == 0


def test_sets_are_disjoint_by_row_market_and_event(ds, folds):
    for f in folds:
        parts = (f.train_idx, f.calib_idx, f.test_idx)
        assert all(p.size for p in parts)
        for col in ("market_id", "event_id"):
            train, calib, test = (ids(ds, p, col) for p in parts)
            assert not train & calib and not train & test and not calib & test, col
        all_rows = np.concatenate(parts)
        assert np.unique(all_rows).size == all_rows.size


def test_events_are_never_split(ds, folds):
    """Every row of an event lands in the same set (ladders move together)."""
    for f in folds:
        for idx in (f.train_idx, f.calib_idx, f.test_idx):
            events = ids(ds, idx, "event_id")
            assert ds.filter(pl.col("event_id").is_in(events)).height == idx.size


def test_no_label_from_the_embargo_or_test_window_is_used_for_training(ds, folds):
    for f in folds:
        guard = f.test_start - timedelta(hours=1)
        for idx in (f.train_idx, f.calib_idx):
            assert ds[idx]["resolved_at"].max() < guard
        test_events = event_table(ds[f.test_idx])
        assert test_events["resolved_at"].min() >= f.test_start
        assert test_events["resolved_at"].max() < f.test_end


def test_calibration_is_later_than_training_and_earlier_than_test(ds, folds):
    for f in folds:
        train_last = event_table(ds[f.train_idx])["resolved_at"].max()
        calib = event_table(ds[f.calib_idx])
        assert train_last <= calib["resolved_at"].min()
        assert calib["resolved_at"].max() < f.test_start
        n_events = event_table(ds[np.concatenate([f.train_idx, f.calib_idx])]).height
        assert calib.height == pytest.approx(0.25 * n_events, abs=1)


def test_every_event_is_tested_at_most_once(ds, folds):
    seen: list[str] = []
    for f in folds:
        seen.extend(ids(ds, f.test_idx, "event_id"))
    assert len(seen) == len(set(seen))


def test_minimum_training_markets():
    ds = ladder_world(days=3)
    for f in walk_forward_folds(ds, min_train_markets=60):
        n = ds[np.concatenate([f.train_idx, f.calib_idx])]["market_id"].n_unique()
        assert n >= 60
    assert walk_forward_folds(ds, min_train_markets=10_000) == []
    assert walk_forward_folds(ds.clear()) == []
    assert DEFAULT_MIN_TRAIN_MARKETS == MIN_RESOLVED_MARKETS


def test_purge_removes_events_resolved_inside_the_embargo():
    """Events resolved 30 min before the window are purged by a 1 h embargo (not by 0),
    and a ladder strike that settled early goes with its event."""
    rows = []
    start = T0 + timedelta(days=1)
    for i in range(40):  # history: one market an hour the day before
        resolved = T0 + i * timedelta(minutes=30)
        rows.append((f"old{i}", f"old{i}", resolved - HOUR, resolved))
    late = start - timedelta(minutes=30)
    rows += [
        ("late", "late", late - 2 * HOUR, late),
        # A ladder whose early strike resolved long ago and whose last one is in the embargo.
        ("lad-a", "ladder", T0, T0 + 2 * HOUR),
        ("lad-b", "ladder", T0, late),
        ("test", "test", start, start + HOUR),
    ]
    ds = pl.DataFrame(
        rows,
        schema={
            "market_id": pl.String,
            "event_id": pl.String,
            "snapshot_ts": pl.Datetime("us"),
            "resolved_at": pl.Datetime("us"),
        },
        orient="row",
    ).sort("resolved_at", "event_id")

    def training(embargo: timedelta) -> set[str]:
        fold = next(
            f
            for f in walk_forward_folds(ds, min_train_markets=10, embargo=embargo)
            if f.test_start == start
        )
        assert ids(ds, fold.test_idx, "market_id") == {"test"}
        return ids(ds, np.concatenate([fold.train_idx, fold.calib_idx]), "market_id")

    purged = training(timedelta(hours=1))
    assert not {"late", "lad-a", "lad-b"} & purged
    assert {"old0", "old39"} <= purged
    kept = training(timedelta(0))
    assert {"late", "lad-a", "lad-b"} <= kept


def test_start_skips_earlier_windows(ds):
    start = T0 + timedelta(days=4, hours=6)
    folds = walk_forward_folds(ds, min_train_markets=50, start=start)
    assert folds and folds[0].test_start == T0 + timedelta(days=5)


def test_split_calibration_takes_the_latest_quarter(ds):
    events = event_table(ds)
    train, calib = split_calibration(events)
    assert len(calib) == -(-events.height // 4)
    assert set(train).isdisjoint(calib)
    assert set(calib) == set(events["event_id"].to_list()[-len(calib) :])
    with pytest.raises(ValueError, match="at least 2 events"):
        split_calibration(events.head(1))
