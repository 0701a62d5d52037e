"""build_dataset: which markets and rows a model may learn from, and the columns."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl
import pytest

from btc_tracker_pipeline.features.indicators import INDICATOR_SCHEMA
from btc_tracker_pipeline.features.market_terms import FAMILIES as PARSED_FAMILIES
from btc_tracker_pipeline.features.path_features import PATH_FEATURES
from btc_tracker_pipeline.model.dataset import (
    DATASET_COLUMNS,
    FAMILIES,
    FEATURES,
    SEED_FEATURES,
    add_features,
    build_dataset,
    dataset_losses,
    dataset_summary,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 0, 0)
Q = timedelta(minutes=15)


def indicator_rows(rows: list[dict]) -> pl.DataFrame:
    """``market_indicators`` rows from partial dicts (the rest null)."""
    full = []
    for row in rows:
        ts = row["snapshot_ts"]
        full.append({"window_start": ts - Q, "window_end": ts, **row})
    frame = pl.DataFrame(full, schema_overrides=INDICATOR_SCHEMA)
    return frame.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in INDICATOR_SCHEMA.items()
        if name not in frame.columns
    ).select(list(INDICATOR_SCHEMA))


def snapshots(market: str, family: str, n: int, start: datetime = T0, **extra) -> list[dict]:
    return [
        {
            "market_id": market,
            "family": family,
            "snapshot_ts": start + k * Q,
            "market_probability": 0.4,
            "structural_probability": 0.45,
            "reference_price": 85_000.0,
            **extra,
        }
        for k in range(n)
    ]


def resolution(market: str, family: str, expiry: datetime | None, **overrides) -> dict:
    row = {
        "window_start": expiry or T0,
        "market_id": market,
        "family": family,
        "expiry": expiry,
        "settled_at": expiry + timedelta(minutes=2) if expiry else None,
        "status": "resolved",
        "yes_won": True,
        "label_check": "agrees",
    }
    row.update(overrides)
    return row


RES_SCHEMA = {
    "window_start": pl.Datetime("us"),
    "market_id": pl.String,
    "family": pl.String,
    "expiry": pl.Datetime("us"),
    "settled_at": pl.Datetime("us"),
    "status": pl.String,
    "yes_won": pl.Boolean,
    "label_check": pl.String,
}
MARKET_SCHEMA = {
    "market_id": pl.String,
    "event_slug": pl.String,
    "start_date": pl.Datetime("us"),
    "expiry": pl.Datetime("us"),
}


def world() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Markets, each testing one rule; expiry at T0 + 2 h unless said otherwise."""
    expiry = T0 + timedelta(hours=2)
    rows = (
        snapshots("ok", "above", 12)  # 8 before expiry, 4 after
        + snapshots("ladder2", "above", 8)
        + snapshots("void", "updown_1h", 4)
        + snapshots("unsettled", "updown_1h", 4)
        + snapshots("disagree", "updown_1h", 4)
        + snapshots("unchecked", "updown_1h", 4)
        + snapshots("nolabel", "updown_1h", 4)
        + snapshots("early", "reach", 8)  # settled 1 h early
        + snapshots("touched", "reach", 5, barrier_touched=False)
        + snapshots("touched", "reach", 3, start=T0 + 5 * Q, barrier_touched=True)
        + snapshots("noexpiry", "updown_1h", 4)
        + [
            {
                "market_id": "noprice",
                "family": "dip",
                "snapshot_ts": T0,
                "market_probability": None,
            },
            {
                "market_id": "noprice",
                "family": "dip",
                "snapshot_ts": T0 + Q,
                "market_probability": 0.001,
            },
        ]
    )
    resolutions = pl.DataFrame(
        [
            resolution("ok", "above", expiry, yes_won=False),
            resolution("ladder2", "above", expiry),
            resolution("void", "updown_1h", expiry, status="void", yes_won=None),
            resolution("unsettled", "updown_1h", expiry, status="unsettled", yes_won=None),
            resolution("disagree", "updown_1h", expiry, label_check="disagrees"),
            resolution("unchecked", "updown_1h", expiry, label_check=None, settled_at=None),
            resolution("nolabel", "updown_1h", expiry, yes_won=None),
            resolution("early", "reach", expiry, settled_at=T0 + timedelta(hours=1)),
            resolution("touched", "reach", expiry),
            resolution("noexpiry", "updown_1h", None, settled_at=None),
            resolution("noprice", "dip", expiry, yes_won=False),
            resolution("ghost", "dip", expiry),  # resolved, but no indicator rows
        ],
        schema=RES_SCHEMA,
    )
    markets = pl.DataFrame(
        [
            {"market_id": "ok", "event_slug": "btc-above-mar-1", "expiry": expiry},
            {"market_id": "ladder2", "event_slug": "btc-above-mar-1", "expiry": expiry},
            {"market_id": "unchecked", "event_slug": None, "expiry": expiry},
            {"market_id": "early", "event_slug": "reach-mar", "expiry": expiry},
            {"market_id": "touched", "event_slug": "reach-mar", "expiry": expiry},
            {"market_id": "noexpiry", "event_slug": "x", "expiry": None},
            {"market_id": "noprice", "event_slug": "dip-mar", "expiry": expiry},
        ],
        schema=MARKET_SCHEMA,
    )
    return indicator_rows(rows), resolutions, markets


@pytest.fixture(scope="module")
def ds() -> pl.DataFrame:
    return build_dataset(*world())


def rows_of(ds: pl.DataFrame, market: str) -> pl.DataFrame:
    return ds.filter(pl.col("market_id") == market)


def test_columns_and_order(ds):
    assert ds.columns == DATASET_COLUMNS
    assert set(FEATURES) <= set(ds.columns)
    assert ds["y"].dtype == pl.Int8
    assert all(ds[f].dtype == pl.Float64 for f in FEATURES)
    keys = ds.select("resolved_at", "event_id", "market_id", "snapshot_ts")
    assert keys.equals(keys.sort(keys.columns))


def test_the_quote_age_is_a_feature():
    ind, res, mk = world()
    aged = ind.with_columns(pl.lit(2700.0).alias("quote_age_s"))
    assert build_dataset(aged, res, mk)["quote_age_s"].unique().to_list() == [2700.0]
    assert add_features(pl.DataFrame({"market_probability": [0.5]}))["quote_age_s"].to_list() == [
        None
    ]


def test_only_clean_labels_are_used(ds):
    """Void, unsettled, disputed and null labels are dropped; uncheckable/null checks kept."""
    kept = set(ds["market_id"].unique())
    assert kept == {"ok", "ladder2", "unchecked", "early", "touched", "noprice"}
    assert rows_of(ds, "ok")["y"].to_list() == [0] * 8
    assert rows_of(ds, "ladder2")["y"].unique().to_list() == [1]


def test_close_call_labels_are_kept():
    """A close call (Chainlink settled the other side of a few-dollar move) is a label."""
    indicators, resolutions, markets = world()
    relabelled = resolutions.with_columns(
        pl.col("label_check").replace("disagrees", "close_call").alias("label_check")
    )
    ds = build_dataset(indicators, relabelled, markets)
    assert "disagree" in set(ds["market_id"]) and rows_of(ds, "disagree").height == 4


def test_post_expiry_rows_are_dropped(ds):
    ok = rows_of(ds, "ok")
    assert ok.height == 8  # of 12: 4 snapshots at or after the 2 h expiry
    assert (ok["snapshot_ts"] < ok["expiry"]).all()
    assert (ok["time_to_expiry_hours"].is_null()).all()  # untouched inputs stay as given


def test_rows_after_an_early_settlement_are_dropped(ds):
    early = rows_of(ds, "early")
    assert early.height == 4  # settled at T0 + 1 h: snapshots at T0 … T0 + 45 min
    assert (early["snapshot_ts"] < T0 + timedelta(hours=1)).all()
    # A barrier's label orders the walk-forward at its period's end, YES or NO (rule 6).
    assert early["resolved_at"].unique().to_list() == [T0 + timedelta(hours=2)]


def test_barriers_of_a_period_not_over_are_left_out_until_it_ends():
    """An early YES of a month still running is known while its NOs are not: training on
    it alone would teach that barriers go YES (rule 6)."""
    month_end = T0 + timedelta(days=20)
    rows = snapshots("touched_early", "reach", 8) + snapshots("above", "above", 8)
    resolutions = pl.DataFrame(
        [
            resolution("touched_early", "reach", month_end, settled_at=T0 + 3 * Q),
            resolution("above", "above", T0 + 2 * Q),
        ],
        schema=RES_SCHEMA,
    )
    markets = pl.DataFrame(schema=MARKET_SCHEMA)
    ds = build_dataset(indicator_rows(rows), resolutions, markets)
    assert set(ds["market_id"].to_list()) == {"above"}
    _, _, losses = dataset_losses(indicator_rows(rows), resolutions, markets)
    assert [(reason[:40], n) for reason, n in losses] == [
        ("were barriers whose period had not ended", 1)
    ]

    # Once the data reaches the month's end, the barrier is in, ordered at the month end.
    later = rows + snapshots("late", "above", 1, start=month_end)
    ds = build_dataset(indicator_rows(later), resolutions, markets)
    barrier = ds.filter(pl.col("market_id") == "touched_early")
    assert barrier.height == 3 and barrier["resolved_at"].unique().to_list() == [month_end]


def test_touched_barrier_rows_are_dropped(ds):
    touched = rows_of(ds, "touched")
    assert touched.height == 5
    assert touched["snapshot_ts"].max() == T0 + 4 * Q


def test_market_without_expiry_or_price_rows_are_dropped(ds):
    assert rows_of(ds, "noexpiry").height == 0
    assert rows_of(ds, "noprice")["snapshot_ts"].to_list() == [T0 + Q]


def test_weights_sum_to_one_per_market(ds):
    sums = ds.group_by("market_id").agg(pl.col("weight").sum())
    assert sums["weight"].to_list() == pytest.approx([1.0] * sums.height)
    assert rows_of(ds, "ok")["weight"].unique().to_list() == [pytest.approx(1 / 8)]


def test_ids_events_and_clusters(ds):
    assert rows_of(ds, "ok")["event_id"].unique().to_list() == ["btc-above-mar-1"]
    assert rows_of(ds, "ladder2")["cluster"].unique().to_list() == ["btc-above-mar-1"]
    # No event slug (or no static row at all): the market is its own event.
    assert rows_of(ds, "unchecked")["event_id"].unique().to_list() == ["unchecked"]
    assert (ds["cluster"] == ds["event_id"]).all()
    # resolved_at = settled_at, else expiry.
    unchecked = rows_of(ds, "unchecked")
    assert unchecked["resolved_at"].unique().to_list() == [T0 + timedelta(hours=2)]
    assert rows_of(ds, "ok")["resolved_at"].unique().to_list() == [
        T0 + timedelta(hours=2, minutes=2)
    ]
    assert (ds["market_prob"] == ds["market_probability"]).all()


def test_derived_features(ds):
    ok = rows_of(ds, "ok").row(0, named=True)
    assert ok["logit_p"] == pytest.approx(math.log(0.4 / 0.6))
    assert ok["logit_struct"] == pytest.approx(math.log(0.45 / 0.55))
    assert ok["fam_above"] == 1.0
    assert sum(ok[f"fam_{f}"] for f in FAMILIES) == 1.0
    # Clipped to [0.005, 0.995] before the logit.
    cheap = rows_of(ds, "noprice").row(0, named=True)
    assert cheap["logit_p"] == pytest.approx(math.log(0.005 / 0.995))
    assert cheap["logit_struct"] is None


def test_feature_list_is_fixed():
    assert FAMILIES == PARSED_FAMILIES
    assert len(SEED_FEATURES) == 12
    assert FEATURES[12:17] == [
        "logit_p",
        "structural_probability",
        "logit_struct",
        "realized_vol",
        "log_moneyness",
    ]
    assert FEATURES[17] == "quote_age_s"
    assert FEATURES[18 : 18 + len(FAMILIES)] == [f"fam_{f}" for f in FAMILIES]
    # The in-window features come last: a model saved before them keeps its list.
    assert FEATURES[18 + len(FAMILIES) :] == PATH_FEATURES
    assert len(FEATURES) == len(set(FEATURES)) == 18 + len(FAMILIES) + len(PATH_FEATURES)


def test_latest_resolution_row_wins():
    ind, res, mk = world()
    later = pl.DataFrame(
        [
            resolution(
                "ok",
                "above",
                T0 + timedelta(hours=2),
                status="void",
                yes_won=None,
                settled_at=T0 + timedelta(hours=3),
                window_start=T0 + timedelta(hours=3),
            )
        ],
        schema=RES_SCHEMA,
    )
    ds = build_dataset(ind, pl.concat([res, later]), mk)
    assert "ok" not in ds["market_id"].to_list()


def test_timezone_aware_inputs_are_converted():
    ind, res, mk = world()
    aware = ind.with_columns(pl.col("snapshot_ts").dt.replace_time_zone("UTC"))
    mk = mk.with_columns(pl.col("expiry").dt.replace_time_zone("UTC"))
    assert build_dataset(aware, res, mk).equals(build_dataset(*world()))


def test_nothing_qualifies_gives_an_empty_frame_with_the_columns():
    ind, res, mk = world()
    ds = build_dataset(ind, res.with_columns(pl.lit("void").alias("status")), mk)
    assert ds.height == 0
    assert ds.columns == DATASET_COLUMNS


def test_add_features_on_sparse_rows():
    rows = pl.DataFrame({"market_probability": [0.5, None], "family": ["updown_5m", "weird"]})
    out = add_features(rows)
    assert set(FEATURES) <= set(out.columns)
    assert out["logit_p"].to_list() == [0.0, None]
    assert out["fam_updown_5m"].to_list() == [1.0, 0.0]
    assert out.select([f"fam_{f}" for f in FAMILIES]).row(1) == (0.0,) * len(FAMILIES)


def test_dataset_summary(ds):
    summary = dataset_summary(ds)
    assert summary["n_markets"] == 6
    assert summary["n_rows"] == ds.height
    assert summary["families"]["above"] == {"n_markets": 2, "n_rows": 16, "yes_rate": 0.5}
    assert summary["first_snapshot"] == T0.isoformat()


def test_updown_rows_before_the_window_opens_are_dropped():
    before = snapshots("u1", "updown_15m", 3, reference_price=None)
    opened = snapshots("u1", "updown_15m", 2, start=T0 + 3 * Q)
    ds = build_dataset(
        indicator_rows(before + opened),
        pl.DataFrame([resolution("u1", "updown_15m", T0 + 6 * Q)], schema=RES_SCHEMA),
        pl.DataFrame(
            [{"market_id": "u1", "event_slug": "u1", "expiry": T0 + 6 * Q}], schema=MARKET_SCHEMA
        ),
    )
    assert ds["snapshot_ts"].to_list() == [T0 + 3 * Q, T0 + 4 * Q]


def test_neg_risk_and_twap_markets_are_kept_and_flagged():
    ind, res, mk = world()
    flagged = mk.with_columns(
        (pl.col("market_id") == "ok").alias("neg_risk"),
        pl.when(pl.col("market_id") == "early").then(True).otherwise(None).alias("twap_settled"),
    )
    ds = build_dataset(ind, res, flagged)
    assert ds.columns == DATASET_COLUMNS
    assert set(ds.filter("neg_risk")["market_id"]) == {"ok"}
    assert set(ds.filter("twap_settled")["market_id"]) == {"early"}
    # Same rows as without the flags; a markets frame without them means "not flagged".
    plain = build_dataset(ind, res, mk)
    assert plain.drop("neg_risk", "twap_settled").equals(ds.drop("neg_risk", "twap_settled"))
    assert not plain["neg_risk"].any() and not plain["twap_settled"].any()
