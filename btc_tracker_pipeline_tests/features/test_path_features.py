"""In-window features of up/down markets (features/path_features.py)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.features.path_features import PATH_FEATURE_COLUMNS, path_features

pytestmark = pytest.mark.unit

OPEN = datetime(2026, 3, 1, 12, 0)
MIN = timedelta(minutes=1)


def klines(start: datetime, n: int, seed: int = 3) -> pl.DataFrame:
    """n random-walk 1-minute klines from ``start``."""
    rng = np.random.default_rng(seed)
    close = 60_000 * np.exp(np.cumsum(rng.normal(0, 6e-4, n)))
    opens = np.concatenate([[60_000.0], close[:-1]])
    return pl.DataFrame(
        {
            "open_time": [start + i * MIN for i in range(n)],
            "open": opens,
            "high": np.maximum(opens, close) * 1.0002,
            "low": np.minimum(opens, close) * 0.9998,
            "close": close,
        }
    )


def path(k: pl.DataFrame, prices: list[float | None], market: str = "m1") -> pl.DataFrame:
    """A 15-minute market opening at OPEN, its path rows with btc_close from ``k``."""
    close = dict(zip(k["open_time"].to_list(), k["close"].to_list(), strict=True))
    minutes = [OPEN + i * MIN for i in range(len(prices))]
    return pl.DataFrame(
        {
            "window_start": [OPEN] * len(prices),
            "market_id": [market] * len(prices),
            "minute_ts": minutes,
            "offset_min": list(range(len(prices))),
            "minutes_left": [15.0 - i for i in range(len(prices))],
            "price": prices,
            "btc_close": [close[m - MIN] for m in minutes],
            "reference_start": [OPEN] * len(prices),
            "expiry": [OPEN + 15 * MIN] * len(prices),
        },
        schema_overrides={"price": pl.Float64},
    )


def test_the_move_is_in_units_of_what_is_left_to_move_and_its_phi_is_the_structural_probability():
    k = klines(OPEN - timedelta(hours=24), 24 * 60 + 15)
    out = path_features(path(k, [0.5, 0.52, 0.55, 0.6, 0.58]), k)
    open_price = k.filter(pl.col("open_time") == OPEN - MIN)["close"].item()
    assert out["open_price"].to_list() == [open_price] * 5
    sigma = out["path_sigma"][0]
    assert 0.05 < sigma < 3.0 and out["path_sigma"].n_unique() == 1
    row = out.row(3, named=True)
    tau = 12 / 525_600
    z = math.log(row["btc_close"] / open_price) / (sigma * math.sqrt(tau))
    assert row["move_sigma"] == pytest.approx(z)
    assert row["structural_probability"] == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)))
    assert out["move_sigma"][0] == pytest.approx(0.0)  # at the open nothing has moved
    assert out["market_probability"].to_list() == [0.5, 0.52, 0.55, 0.6, 0.58]


def test_lags_compare_what_spot_moved_the_fair_value_by_with_what_the_market_moved():
    k = klines(OPEN - timedelta(hours=24), 24 * 60 + 15)
    out = path_features(path(k, [0.5, 0.52, 0.55, 0.6, None]), k)

    def lg(p: float) -> float:
        return math.log(p / (1 - p))

    ls = [lg(p) for p in out["structural_probability"].to_list()]
    r3 = out.row(3, named=True)
    assert r3["spot_move_1m"] == pytest.approx(ls[3] - ls[2])
    assert r3["market_move_1m"] == pytest.approx(lg(0.6) - lg(0.55))
    assert r3["lag_1m"] == pytest.approx(ls[3] - ls[2] - (lg(0.6) - lg(0.55)))
    assert r3["lag_3m"] == pytest.approx(ls[3] - ls[0] - (lg(0.6) - lg(0.5)))
    # Before the open there is no in-window history; a missing price has no market move.
    assert out["lag_3m"][:3].to_list() == [None] * 3 and out["lag_5m"].null_count() == 5
    assert out["market_move_1m"][4] is None and out["spot_move_1m"][4] is not None


def test_a_row_uses_nothing_after_its_minute():
    """Cut the klines and the path after minute T: every row up to T is unchanged."""
    k = klines(OPEN - timedelta(hours=24), 24 * 60 + 15)
    full = path_features(path(k, [0.5, 0.52, 0.55, 0.6, 0.58, 0.61, 0.63, 0.6]), k)
    for cut in range(8):
        at = OPEN + cut * MIN
        seen = path_features(
            path(k, [0.5, 0.52, 0.55, 0.6, 0.58, 0.61, 0.63, 0.6][: cut + 1]),
            k.filter(pl.col("open_time") + MIN <= at),
        )
        expected = full.filter(pl.col("minute_ts") <= at).select(PATH_FEATURE_COLUMNS)
        assert seen.select(PATH_FEATURE_COLUMNS).equals(expected), cut


def test_every_market_has_its_own_open_and_no_rows_give_no_rows():
    k = klines(OPEN - timedelta(hours=24), 24 * 60 + 15)
    two = pl.concat([path(k, [0.5, 0.6], "a"), path(k, [0.5, 0.4], "b")])
    out = path_features(two, k)
    assert out["market_id"].to_list() == ["a", "a", "b", "b"]
    assert out.filter(pl.col("market_id") == "b")["market_move_1m"][1] == pytest.approx(
        math.log(0.4 / 0.6) - 0.0
    )
    empty = path_features(two.head(0), k)
    assert empty.is_empty() and set(PATH_FEATURE_COLUMNS) <= set(empty.columns)
