"""In-window rows of up/down markets (market_paths) in build_dataset, read from a
warehouse the way price_model reads it, and cut after any minute without changing a row
at or before it (the path rows' leakage test)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.defs.model.inputs import training_paths, training_tables
from btc_tracker_pipeline.features.path_features import PATH_FEATURES
from btc_tracker_pipeline.model.dataset import (
    FEATURES,
    build_dataset,
    check_path_offsets,
    dataset_losses,
)
from btc_tracker_pipeline.warehouse import warehouse

pytestmark = pytest.mark.unit

OPEN = datetime(2026, 3, 1, 12, 0)
MIN = timedelta(minutes=1)
Q = timedelta(minutes=15)
# (market, family, minutes of its window, YES won)
MARKETS = [("m15", "updown_15m", 15, True), ("m5", "updown_5m", 5, False)]


def klines(n_before: int = 24 * 60, n_after: int = 20, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_before + n_after
    close = 60_000 * np.exp(np.cumsum(rng.normal(0, 6e-4, n)))
    opens = np.concatenate([[60_000.0], close[:-1]])
    start = OPEN - n_before * MIN
    return pl.DataFrame(
        {
            "window_start": [start + (i // 15) * Q for i in range(n)],
            "open_time": [start + i * MIN for i in range(n)],
            "open": opens,
            "high": np.maximum(opens, close) * 1.0002,
            "low": np.minimum(opens, close) * 0.9998,
            "close": close,
            "volume": np.ones(n),
        }
    )


def path_rows(k: pl.DataFrame, seed: int = 9) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = dict(zip(k["open_time"].to_list(), k["close"].to_list(), strict=True))
    age = {"m15": 0, "m5": 20}
    rows = []
    for market, family, minutes, _ in MARKETS:
        for i in range(minutes):
            minute = OPEN + i * MIN
            rows.append(
                {
                    "window_start": OPEN,
                    "window_end": OPEN + Q,
                    "market_id": market,
                    "minute_ts": minute,
                    "family": family,
                    "offset_min": i,
                    "minutes_left": float(minutes - i),
                    "price": float(rng.uniform(0.2, 0.8)),
                    # m15 quoted at its minute, m5 20 s before it
                    "quote_ts": minute - timedelta(seconds=age[market]),
                    "quote_age_s": float(age[market]),
                    "btc_close": close[minute - MIN],
                    "source": "test",
                }
            )
    return pl.DataFrame(rows)


def tracked() -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "window_start": OPEN,
                "window_end": OPEN + Q,
                "market_id": market,
                "family": family,
                "reference_start": OPEN,
                "expiry": OPEN + minutes * MIN,
                "event_slug": f"ev-{market}",
                "discovered_by": "test",
            }
            for market, family, minutes, _ in MARKETS
        ]
    )


def resolutions() -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "window_start": OPEN + Q,
                "window_end": OPEN + 2 * Q,
                "market_id": market,
                "family": family,
                "expiry": OPEN + minutes * MIN,
                "settled_at": OPEN + minutes * MIN + 2 * MIN,
                "status": "resolved",
                "yes_won": won,
                "label_check": "agrees",
                "source": "test",
            }
            for market, family, minutes, won in MARKETS
        ]
    )


def indicators_at_expiry() -> pl.DataFrame:
    """The 15-minute market's only window-end row: its expiry (rule 2 drops it)."""
    return pl.DataFrame(
        {
            "window_start": [OPEN],
            "window_end": [OPEN + Q],
            "snapshot_ts": [OPEN + Q],
            "market_id": ["m15"],
            "family": ["updown_15m"],
            "market_probability": [0.9],
            "reference_price": [60_000.0],
        }
    )


def insert(conn, table: str, frame: pl.DataFrame) -> None:
    conn.register("_rows", frame.to_arrow())
    conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    conn.unregister("_rows")


def build(path: Path, cut: datetime | None = None, offsets=()) -> pl.DataFrame:
    """The dataset of a warehouse holding the test world, cut after ``cut`` (path
    minutes and candles that closed after it removed)."""
    k, paths = klines(), None
    paths = path_rows(k)
    if cut is not None:
        k = k.filter(pl.col("open_time") + MIN <= cut)
        paths = paths.filter(pl.col("minute_ts") <= cut)
    with warehouse(path) as conn:
        for table in ("btc_spot_prices", "market_paths", "tracked_markets"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM market_resolutions")
        conn.execute("DELETE FROM market_indicators")
        insert(conn, "btc_spot_prices", k)
        insert(conn, "market_paths", paths)
        insert(conn, "tracked_markets", tracked())
        insert(conn, "market_resolutions", resolutions())
        insert(conn, "market_indicators", indicators_at_expiry())
        indicators, res, markets = training_tables(conn)
        path_frame = training_paths(conn)
    return build_dataset(indicators, res, markets, path_frame, offsets)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("paths") / "warehouse.duckdb"


def test_up_down_markets_get_one_row_per_minute_of_their_window(db):
    ds = build(db)
    counts = dict(ds.group_by("market_id").len().iter_rows())
    assert counts == {"m15": 15, "m5": 5}
    # The window-end row at expiry is not used (rule 2), and would not be with paths.
    assert ds.filter(pl.col("market_prob") == 0.9).is_empty()
    weight = ds.group_by("market_id").agg(pl.col("weight").sum())["weight"]
    assert weight.to_list() == pytest.approx([1.0, 1.0])
    m15 = ds.filter(pl.col("market_id") == "m15").sort("snapshot_ts")
    assert m15["snapshot_ts"].to_list() == [OPEN + i * MIN for i in range(15)]
    assert m15["family"].unique().to_list() == ["updown_15m"]
    assert m15["y"].unique().to_list() == [1]
    prices = path_rows(klines()).filter(pl.col("market_id") == "m15")["price"]
    assert m15["market_prob"].to_list() == prices.to_list()
    left = [(15 - i) / 60 for i in range(15)]
    assert m15["time_to_expiry_hours"].to_list() == pytest.approx(left)
    # The move since the open is what the structural probability is Φ of.
    assert m15["move_sigma"][0] == pytest.approx(0.0) and m15["structural_probability"][0] == 0.5
    assert m15["lag_1m"].null_count() == 1 and m15["lag_5m"].null_count() == 5
    # Spot and time left are as of the quote: m5's quotes are 20 s old, so its spot is
    # the close of the minute before (the candle that ended at or before the quote).
    k = klines()
    m5 = ds.filter(pl.col("market_id") == "m5").sort("snapshot_ts")
    spot = k.filter(pl.col("open_time") == OPEN + 2 * MIN)["close"].item()  # ends at +3
    assert m5["btc_spot_price"][4] == spot != m5["btc_spot_price"][3]
    assert m5["time_to_expiry_hours"].to_list() == pytest.approx([(6 - i) / 60 for i in range(5)])
    assert all(m15[name].dtype == pl.Float64 for name in FEATURES)


def test_a_market_with_path_rows_leaves_its_window_end_rows_out(db):
    ds = build(db)
    # Without paths, only an in-window window-end row would count (rule 2 drops m15's).
    early = indicators_at_expiry().with_columns(
        pl.lit(OPEN + 5 * MIN).alias("snapshot_ts"), pl.lit(0.7).alias("market_probability")
    )
    with warehouse(db) as conn:
        conn.execute("DELETE FROM market_indicators")
        insert(conn, "market_indicators", early)
        indicators, res, markets = training_tables(conn)
        alone = build_dataset(indicators, res, markets)
        mixed = build_dataset(indicators, res, markets, training_paths(conn))
    assert alone.height == 1 and alone["move_sigma"].null_count() == 1
    assert mixed.filter(pl.col("market_prob") == 0.7).is_empty()
    assert mixed.height == ds.height == 20


def test_offsets_choose_the_minutes_and_are_checked(db):
    ds = build(db, offsets=[0, 4, 10])
    got = ds.group_by("market_id").agg(pl.col("snapshot_ts").sort()).sort("market_id")
    assert got.rows() == [
        ("m15", [OPEN, OPEN + 4 * MIN, OPEN + 10 * MIN]),
        ("m5", [OPEN, OPEN + 4 * MIN]),
    ]
    assert ds.filter(pl.col("market_id") == "m5")["weight"].to_list() == [0.5, 0.5]
    assert check_path_offsets([3, 1, 3]) == [1, 3]
    for bad in ([-1], [1.5], [True]):
        with pytest.raises(ValueError, match="path_offsets must be whole minutes") as caught:
            check_path_offsets(bad)
        assert "\n" not in str(caught.value)


def test_losses_count_path_rows(db):
    with warehouse(db) as conn:
        indicators, res, markets = training_tables(conn)
        paths = training_paths(conn)
    _, resolved, losses = dataset_losses(indicators, res, markets, paths)
    assert resolved == 2 and losses == []


@pytest.mark.parametrize("minutes", [0, 1, 3, 7, 14])
def test_path_rows_use_nothing_after_their_minute(db, minutes):
    """Cut the warehouse after minute t (paths and candles closing after it removed):
    every row at or before t is the same, feature by feature."""
    t = OPEN + minutes * MIN
    full = build(db).filter(pl.col("snapshot_ts") <= t)
    cut = build(db, cut=t)
    columns = ["market_id", "snapshot_ts", "market_prob", "y", *FEATURES]
    key = ["market_id", "snapshot_ts"]
    left, right = full.select(columns).sort(key), cut.select(columns).sort(key)
    assert left.height == right.height > 0
    assert left.equals(right), (left, right)
    nulls = left.select(PATH_FEATURES).null_count().sum_horizontal().item()
    assert nulls < len(PATH_FEATURES) * left.height
