"""The labelled dataset: one row per (resolved market, snapshot taken before its outcome).

``build_dataset`` joins ``market_indicators`` rows to ``market_resolutions`` labels and
the markets' static info, and keeps only rows a model may learn from
(docs/modeling.md §2.1, §5):

1. **Labels.** A market is used only if its resolution ``status`` is ``"resolved"``,
   ``yes_won`` is not null and ``label_check`` is not ``"disagrees"`` (a label the
   1-minute klines contradict beyond a feed difference is doubtful; ``close_call`` — a
   Chainlink-settled window Binance puts on the other side by a few dollars — is a
   true label on a near-flat window and is kept, as are ``uncheckable`` and null). Void,
   unsettled and disputed markets are dropped whole. A market with several
   resolution rows keeps the latest (by ``settled_at``, then ``window_start``).
2. **Before the outcome is known.** Only rows with ``snapshot_ts`` < ``expiry`` and,
   when the market settled early, ``snapshot_ts`` < ``settled_at``. ``expiry`` is the
   earlier of the static info's and the resolution's (parsed terms) when both exist,
   else whichever exists; a market with neither is dropped (the rule cannot be
   applied).
3. **No touched barriers.** A row whose ``barrier_touched`` is true is dropped: the
   reach/dip market is already decided (p = 1), so it carries no forecast.
4. **A price to beat.** Rows without ``market_probability`` or ``snapshot_ts`` are
   dropped: the market price is the baseline every score is measured against.
5. **Up/down windows that have opened.** An up/down row before its window opens
   (``reference_price`` still null; path rows are inside the window by construction) is
   dropped: the outcome is then a fair coin for
   market, structure and model alike (docs/modeling.md §3.1, "any edge sits inside
   the window"), and thousands of such rows would only dilute every score.
6. **Barriers whose period has ended.** A reach/dip market settles YES the day BTC
   touches its strike, often weeks early, but NO only when its week, month or year is
   over. While the period runs, the labels known are all YES: training on them would
   teach that barriers go YES. So a barrier is used only once its ``expiry`` is at or
   before the newest snapshot of the data, and its ``resolved_at`` (which orders the
   walk-forward) is never before its ``expiry``, whichever side it settled on.

**In-window rows** (``paths``, optional: ``features.path_features`` of
``market_paths``). An up/down market is seen by ``market_indicators`` only at window
ends, so a 15-minute market only at its expiry (rule 2 drops it) and a 5-minute one
never. Its minute path gives one row per minute of its own window instead:
``snapshot_ts`` = the path minute, ``market_probability`` = the YES price as of it,
``structural_probability`` = the in-window Φ(move since the open / σ√τ), plus
PATH_FEATURES; only the minutes whose ``offset_min`` is in ``path_offsets`` (empty:
every minute from the open to one before the expiry). Rules 1-4 apply to them as to
any row. A market with path rows left after the rules is represented by them alone
(its window-end indicator rows are dropped: no double counting), and still weighs 1.
Every other row has null PATH_FEATURES.

Columns of the result:

- ids: ``market_id``, ``event_id`` (``event_slug``, else ``market_id``), ``family``
  (the indicator row's, else the resolution's, else ``other``), ``snapshot_ts``,
  ``start_date``, ``expiry``, ``resolved_at`` (``settled_at``, else ``expiry``: when the
  label became known, which orders the walk-forward; for a barrier not before its
  ``expiry``, rule 6), ``cluster`` (= ``event_id``: a
  ladder's strikes share one BTC path and one expiry, so they are one outcome for
  error bars; up/down windows are their own events);
- ``y``: the label, Int8 (1 = YES won);
- ``market_prob``: ``market_probability``, baseline B0;
- ``structural_probability``: baseline B1 (may be null);
- ``weight``: 1 / (rows of that market), so every market weighs 1 in training and in
  every metric, however many snapshots it has;
- every column of ``FEATURES`` (Float64; null = missing, which XGBoost handles).

- ``neg_risk``, ``twap_settled`` (Boolean, false when unknown): the market is one of a
  neg-risk group, or settles on a TWAP of its feed rather than one price (from
  ``tracked_markets``). Such rows are **kept and flagged**, not dropped: their labels and
  prices are as good as the others', but a neg-risk market's price is tied to its
  group's and a TWAP window settles on an average, so an evaluation or a strategy can
  split on them. They are not features (the feature list is fixed under saved models).

Rows are sorted by ``resolved_at, event_id, market_id, snapshot_ts``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from btc_tracker_pipeline.features.path_features import PATH_FEATURES

# The seed tracker's 12 features, as ``market_indicators`` computes them.
SEED_FEATURES: list[str] = [
    "market_probability",
    "volume",
    "liquidity",
    "btc_spot_price",
    "btc_24h_change_pct",
    "price_momentum_15m",
    "price_momentum_1h",
    "volume_spike",
    "price_volatility",
    "rsi_14",
    "market_edge",
    "time_to_expiry_hours",
]
# Price and structure on the scale a logistic model works in (docs/modeling.md §3, §5).
DERIVED_FEATURES: list[str] = [
    "logit_p",
    "structural_probability",
    "logit_struct",
    "realized_vol",
    "log_moneyness",
]
# Fixed on purpose (a copy of features.market_terms.FAMILIES, checked by a test): the
# feature list must not change under a saved model. A family outside it gets all zeros.
FAMILIES: tuple[str, ...] = (
    "updown_5m",
    "updown_15m",
    "updown_1h",
    "updown_4h",
    "updown_daily",
    "above",
    "below",
    "range",
    "reach",
    "dip",
    "other",
)
FAMILY_FEATURES: list[str] = [f"fam_{family}" for family in FAMILIES]
# How stale the quote is (``market_indicators.quote_age_s``): an hourly history point can
# be up to the staleness limit old, and the model should know a stale price from a fresh one.
QUOTE_FEATURES: list[str] = ["quote_age_s"]
# In-window features of up/down path rows (``features.path_features``), appended last so
# the features before them keep their place; null on every row that is not a path row.
# A saved model lists its own features (model/artifact.py) and is scored with them.
FEATURES: list[str] = (
    SEED_FEATURES + DERIVED_FEATURES + QUOTE_FEATURES + FAMILY_FEATURES + PATH_FEATURES
)

# What the model learns from: the scale-free columns of FEATURES. A level that wanders
# like a random walk (BTC's price) or grows with a market's age and popularity (lifetime
# volume, book liquidity) ranks the rows of one sample by when and where they were taken:
# trees split on it and fit the sample, not a relation that holds next month. Those
# columns stay in the dataset (the seed's 12 features), with the reason they are left
# out; their scale-free forms are used instead: log-moneyness for the price level,
# returns and momenta for moves, ``volume_spike`` (volume against its own recent mean)
# for volume. ``market_probability`` and ``structural_probability`` are left out only
# because ``logit_p`` and ``logit_struct`` carry them (a tree splits the same on both).
EXCLUDED_FEATURES: dict[str, str] = {
    "btc_spot_price": "level of a random walk; log_moneyness carries the price against the strike",
    "volume": "lifetime volume grows with age and popularity; volume_spike is the relative form",
    "liquidity": "book size in dollars varies with the market's popularity, not its outcome",
    "market_probability": "carried by logit_p (a tree splits the same on either)",
    "structural_probability": "carried by logit_struct (a tree splits the same on either)",
}
MODEL_FEATURES: list[str] = [name for name in FEATURES if name not in EXCLUDED_FEATURES]

# logit is taken of probabilities clipped to [0.005, 0.995]: ±5.3, half a cent from 0/1.
LOGIT_CLIP = 0.005

ID_COLUMNS: list[str] = [
    "market_id",
    "event_id",
    "family",
    "snapshot_ts",
    "start_date",
    "expiry",
    "resolved_at",
    "cluster",
]
# Markets flagged as unlike the others (module docstring); false when the input lacks them.
FLAG_COLUMNS: list[str] = ["neg_risk", "twap_settled"]
# ``structural_probability`` (baseline B1) is one of FEATURES.
DATASET_COLUMNS: list[str] = [
    *ID_COLUMNS,
    *FLAG_COLUMNS,
    "y",
    "market_prob",
    "weight",
    *FEATURES,
]

_US = pl.Datetime("us")


def logit(expr: pl.Expr, clip: float = LOGIT_CLIP) -> pl.Expr:
    """ln(p / (1 − p)) of ``expr`` clipped to [clip, 1 − clip]; null stays null."""
    p = expr.cast(pl.Float64).clip(clip, 1.0 - clip)
    return (p / (1.0 - p)).log()


def _naive_utc(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Datetime columns as naive UTC microseconds (tz-aware ones converted to UTC)."""
    exprs = []
    for name in columns:
        if name not in frame.columns:
            continue
        dtype = frame.schema[name]
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        exprs.append(col.cast(_US).alias(name))
    return frame.with_columns(exprs) if exprs else frame


def add_features(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (``market_indicators`` columns) with every FEATURES column as Float64.

    ``logit_p`` = logit(``market_probability``), ``logit_struct`` =
    logit(``structural_probability``), both clipped to [0.005, 0.995];
    ``fam_<f>`` = 1.0 if ``family`` is f else 0.0; ``quote_age_s`` and PATH_FEATURES as
    they are. Absent seed, structural, quote-age or path columns become null. Used for
    training rows and for scoring live, unlabelled rows alike.
    """
    base = [
        *SEED_FEATURES,
        "structural_probability",
        "realized_vol",
        "log_moneyness",
        *QUOTE_FEATURES,
        *PATH_FEATURES,
    ]
    absent = [pl.lit(None, dtype=pl.Float64).alias(n) for n in base if n not in frame.columns]
    if "family" not in frame.columns:
        absent.append(pl.lit(None, dtype=pl.String).alias("family"))
    frame = frame.with_columns(absent) if absent else frame
    family = pl.col("family").cast(pl.String)
    return frame.with_columns(
        *[pl.col(name).cast(pl.Float64) for name in base],
        logit(pl.col("market_probability")).alias("logit_p"),
        logit(pl.col("structural_probability")).alias("logit_struct"),
        *[
            (family == name).fill_null(False).cast(pl.Float64).alias(f"fam_{name}")
            for name in FAMILIES
        ],
    )


# Rules 2-5 of the module docstring, row by row, with what a refusal calls them.
BARRIER_FAMILIES = ("reach", "dip")
ROW_RULES: list[tuple[str, pl.Expr]] = [
    ("had no expiry", pl.col("expiry").is_not_null()),
    ("had no snapshot time", pl.col("snapshot_ts").is_not_null()),
    (
        "had snapshots only once the outcome was known (rule 2)",
        (pl.col("snapshot_ts") < pl.col("expiry"))
        & (pl.col("settled_at").is_null() | (pl.col("snapshot_ts") < pl.col("settled_at"))),
    ),
    (
        "had snapshots only after the barrier was touched (rule 3)",
        ~pl.col("barrier_touched").fill_null(False),
    ),
    ("had no market price (rule 4)", pl.col("market_probability").is_not_null()),
    (
        "were up/down windows not yet open (rule 5)",
        ~pl.col("family").str.starts_with("updown")
        | pl.col("reference_price").is_not_null()
        | pl.col("_path"),
    ),
    (
        "were barriers whose period had not ended, so only their early YES could be known (rule 6)",
        ~pl.col("family").is_in(BARRIER_FAMILIES) | (pl.col("expiry") <= pl.col("_data_end")),
    ),
]


def check_path_offsets(offsets: Sequence[int]) -> list[int]:
    """``offsets`` as a sorted list of distinct whole minutes ≥ 0; ValueError (one line)
    otherwise. Empty means every minute of the window."""
    bad = [o for o in offsets if isinstance(o, bool) or not isinstance(o, int) or o < 0]
    if bad:
        raise ValueError(f"path_offsets must be whole minutes since the open (≥ 0), not {bad!r}")
    return sorted(set(offsets))


def path_rows(paths: pl.DataFrame | None, offsets: Sequence[int] = ()) -> pl.DataFrame:
    """``paths`` (``features.path_features`` output with ``family``) as candidate rows
    in the columns of ``market_indicators``: ``snapshot_ts`` = ``minute_ts``, the price
    as of it, the in-window structural probability, spot, time left, σ, log-move since
    the open, and PATH_FEATURES; ``_path`` = true. Only ``offsets`` (empty: all)."""
    offsets = check_path_offsets(offsets)
    if paths is None or paths.is_empty():
        return pl.DataFrame()
    rows = _naive_utc(paths, ["minute_ts", "window_start", "reference_start", "expiry"])
    if offsets:
        rows = rows.filter(pl.col("offset_min").is_in(offsets))
    f64 = pl.Float64
    return rows.select(
        pl.col("market_id").cast(pl.String),
        pl.col("family").cast(pl.String),
        "window_start",
        pl.col("minute_ts").alias("snapshot_ts"),
        pl.col("market_probability").cast(f64),
        pl.col("structural_probability").cast(f64),
        pl.col("quote_age_s").cast(f64),
        pl.col("btc_close").cast(f64).alias("btc_spot_price"),
        (pl.col("minutes_left").cast(f64) / 60.0).alias("time_to_expiry_hours"),
        (pl.col("market_probability").cast(f64) - 0.5).abs().alias("market_edge"),
        pl.col("path_sigma").cast(f64).alias("realized_vol"),
        (pl.col("btc_close") / pl.col("open_price")).log().alias("log_moneyness"),
        pl.col("open_price").cast(f64).alias("reference_price"),
        pl.lit(False).alias("barrier_touched"),
        pl.lit(True).alias("_path"),
        *[pl.col(name).cast(f64) for name in PATH_FEATURES],
    )


def _naive_inputs(
    indicators: pl.DataFrame,
    resolutions: pl.DataFrame,
    markets: pl.DataFrame,
    paths: pl.DataFrame | None = None,
    path_offsets: Sequence[int] = (),
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(indicator and path candidate rows, resolutions, markets), naive UTC."""
    indicators = _naive_utc(indicators, ["snapshot_ts", "window_start", "window_end"])
    indicators = indicators.with_columns(pl.lit(False).alias("_path"))
    extra = path_rows(paths, path_offsets)
    if extra.height:
        indicators = pl.concat([indicators, extra], how="diagonal_relaxed")
    return (
        indicators,
        _naive_utc(resolutions, ["expiry", "settled_at", "window_start"]),
        _naive_utc(markets, ["start_date", "expiry"]),
    )


def _prefer_paths(rows: pl.DataFrame) -> pl.DataFrame:
    """A market with path rows keeps those alone (its window-end rows are dropped)."""
    pathed = pl.col("_path").any().over("market_id")
    return rows.filter(~pathed | pl.col("_path"))


def _labels(resolutions: pl.DataFrame) -> pl.DataFrame:
    """Rule 1: one label per usable resolved market (``_res_family``, ``_res_expiry``,
    ``settled_at``, ``y``)."""
    order = [c for c in ("settled_at", "window_start") if c in resolutions.columns]
    labels = resolutions
    if "label_check" not in labels.columns:
        labels = labels.with_columns(pl.lit(None, dtype=pl.String).alias("label_check"))
    labels = (
        labels.sort(order, nulls_last=False)
        .unique("market_id", keep="last", maintain_order=True)
        .filter(
            (pl.col("status") == "resolved")
            & pl.col("yes_won").is_not_null()
            & (pl.col("label_check").cast(pl.String).fill_null("") != "disagrees")
        )
        .select(
            "market_id",
            pl.col("family").cast(pl.String).alias("_res_family"),
            pl.col("expiry").alias("_res_expiry"),
            "settled_at",
            pl.col("yes_won").cast(pl.Int8).alias("y"),
        )
    )
    return labels


def _candidate_rows(
    indicators: pl.DataFrame, labels: pl.DataFrame, markets: pl.DataFrame
) -> pl.DataFrame:
    """Indicator rows of labelled markets with their static info, before rules 2-5."""
    static = markets.unique("market_id", keep="first", maintain_order=True).select(
        "market_id",
        pl.col("event_slug").cast(pl.String),
        pl.col("start_date"),
        pl.col("expiry").alias("_static_expiry"),
        *[
            pl.col(name).cast(pl.Boolean)
            if name in markets.columns
            else pl.lit(None, pl.Boolean).alias(name)
            for name in FLAG_COLUMNS
        ],
    )

    return (
        indicators.join(labels, on="market_id", how="inner")
        .join(static, on="market_id", how="left")
        .with_columns(
            pl.min_horizontal("_static_expiry", "_res_expiry").alias("expiry"),
            pl.coalesce(pl.col("family").cast(pl.String), "_res_family", pl.lit("other")).alias(
                "family"
            ),
            pl.coalesce(pl.col("event_slug"), pl.col("market_id")).alias("event_id"),
            *[pl.col(name).fill_null(False) for name in FLAG_COLUMNS],
        )
        .with_columns(_resolved_at().alias("resolved_at"), _data_end(indicators))
    )


def _resolved_at() -> pl.Expr:
    """When a label may enter training: ``settled_at`` (else ``expiry``); for a barrier,
    not before its period ends (``expiry``). A barrier settles YES the day it is touched
    but NO only at the end of its period: its early YES labels, taken while the NOs of
    the same period are still open, would teach a model that barriers go YES."""
    known = pl.coalesce("settled_at", "expiry")
    return (
        pl.when(pl.col("family").is_in(BARRIER_FAMILIES))
        .then(pl.max_horizontal(known, pl.col("expiry")))
        .otherwise(known)
    )


def _data_end(indicators: pl.DataFrame) -> pl.Expr:
    """``_data_end``: the newest snapshot among ``indicators``, what the data knows of."""
    newest = indicators["snapshot_ts"].max() if indicators.height else None
    return pl.lit(newest, dtype=pl.Datetime("us")).alias("_data_end")


def dataset_losses(
    indicators: pl.DataFrame,
    resolutions: pl.DataFrame,
    markets: pl.DataFrame,
    paths: pl.DataFrame | None = None,
    path_offsets: Sequence[int] = (),
) -> tuple[int, int, list[tuple[str, int]]]:
    """Why resolved markets are not in ``build_dataset``: (closed markets with a label
    row, markets resolved with a usable label, [(reason, markets lost), …]). The rules
    are applied in the module docstring's order, so each market is counted once, at the
    first rule that leaves it no row."""
    indicators, resolutions, markets = _naive_inputs(
        indicators, resolutions, markets, paths, path_offsets
    )
    labels = _labels(resolutions)
    closed = resolutions["market_id"].n_unique() if resolutions.height else 0
    rule_1 = "were void, unsettled or contradicted by the klines (rule 1)"
    losses = [(rule_1, closed - labels.height)]
    rows = _candidate_rows(indicators, labels, markets)
    left = rows["market_id"].n_unique() if rows.height else 0
    losses.append(("had no market_indicators or market_paths rows", labels.height - left))
    for reason, rule in ROW_RULES:
        rows = rows.filter(rule)
        now = rows["market_id"].n_unique() if rows.height else 0
        losses.append((reason, left - now))
        left = now
    return closed, labels.height, [(reason, n) for reason, n in losses if n > 0]


def build_dataset(
    indicators: pl.DataFrame,
    resolutions: pl.DataFrame,
    markets: pl.DataFrame,
    paths: pl.DataFrame | None = None,
    path_offsets: Sequence[int] = (),
) -> pl.DataFrame:
    """Labelled training/evaluation rows; the rules and columns are in the module docstring.

    ``indicators``: ``market_indicators`` rows (``INDICATOR_SCHEMA``); ``resolutions``:
    ``market_resolutions`` rows; ``markets``: one row per market with ``market_id,
    event_slug, start_date, expiry`` and optionally ``FLAG_COLUMNS`` (extra columns are
    ignored); ``paths``: ``features.path_features`` rows of up/down markets (with
    ``family``), their minutes at ``path_offsets`` (empty: all) become in-window rows.
    Datetimes are naive UTC (tz-aware ones are converted). Returns an empty frame with
    the same columns when nothing qualifies. ValueError on a bad ``path_offsets``.
    """
    indicators, resolutions, markets = _naive_inputs(
        indicators, resolutions, markets, paths, path_offsets
    )
    labels = _labels(resolutions)
    rows = _candidate_rows(indicators, labels, markets).filter(
        pl.all_horizontal(rule for _, rule in ROW_RULES)
    )
    rows = _prefer_paths(rows)
    rows = add_features(rows).with_columns(
        pl.col("event_id").alias("cluster"),
        pl.col("market_probability").alias("market_prob"),
        (1.0 / pl.len().over("market_id")).alias("weight"),
    )
    return rows.select(DATASET_COLUMNS).sort(
        ["resolved_at", "event_id", "market_id", "snapshot_ts"]
    )


def dataset_summary(ds: pl.DataFrame) -> dict:
    """What a dataset holds, for a model card: rows, markets, events, the snapshot and
    resolution windows (ISO strings), and markets/rows/YES rate per family."""

    def iso(value: object) -> str | None:
        return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

    per_family = (
        ds.group_by("family")
        .agg(
            pl.col("market_id").n_unique().alias("n_markets"),
            pl.len().alias("n_rows"),
            (pl.col("y") * pl.col("weight")).sum().alias("_yes"),
        )
        .sort("family")
    )
    return {
        "n_rows": ds.height,
        "n_markets": ds["market_id"].n_unique(),
        "n_events": ds["event_id"].n_unique(),
        "first_snapshot": iso(ds["snapshot_ts"].min()),
        "last_snapshot": iso(ds["snapshot_ts"].max()),
        "first_resolved": iso(ds["resolved_at"].min()),
        "last_resolved": iso(ds["resolved_at"].max()),
        "families": {
            row["family"]: {
                "n_markets": row["n_markets"],
                "n_rows": row["n_rows"],
                "yes_rate": row["_yes"] / row["n_markets"] if row["n_markets"] else math.nan,
            }
            for row in per_family.iter_rows(named=True)
        },
    }
