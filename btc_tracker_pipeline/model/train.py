"""The price model: shallow XGBoost on MODEL_FEATURES, Platt-calibrated on a later fold.

docs/modeling.md §2.1 and §5, model M:

- the booster starts from the market's logit (``logit_p`` as XGBoost
  ``base_margin``) and its trees learn only the residual, so with no signal the
  model stays at the market price;
- each row weighs 1/rows-of-its-market (every market counts once); no
  ``scale_pos_weight`` (it distorts probabilities);
- early stopping on the latest 20 % of the training events keeps as few trees as
  the data support (with no signal, a handful); with fewer than MIN_STOPPING_EVENTS
  events to stop on, the booster grows no tree and the model is the market;
- the output is recalibrated by Platt scaling (a logistic regression on the
  booster's logit, with a ridge prior towards the identity: ``fit_platt``) fitted
  only on the calibration fold: events resolved after every training event, never
  seen by the booster; it is applied only when the fold's events support it over
  leaving the booster as it is (``platt_evidence``, a likelihood-ratio test);
- a shift the data do not support is taken out (``shift_evidence``): per family, the
  model's mean probability above the market's (on the training and calibration rows)
  is removed unless the labels themselves, counted by event, show the market off in that
  direction (at least ``MIN_SHIFT_EVENTS`` events and a residual beyond two standard
  errors). A few events of one BTC path (a ladder's strikes all go one way on a day
  BTC rallies) otherwise teach the trees and the Platt intercept "this family goes
  YES", and every recommendation of the next day is a BUY YES.

Everything is deterministic (fixed seeds, 2 threads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb

from btc_tracker_pipeline.features.path_features import PATH_FEATURES
from btc_tracker_pipeline.model.dataset import MODEL_FEATURES, add_features
from btc_tracker_pipeline.model.metrics import ORACLE, evaluation_report, family_parts
from btc_tracker_pipeline.model.rules import (
    MIN_FAMILY_EVENTS,
    MIN_FAMILY_MARKETS,
    MIN_RESOLVED_MARKETS,
)
from btc_tracker_pipeline.model.splits import (
    CALIB_FRACTION,
    event_table,
    split_calibration,
    walk_forward_folds,
)

# The booster starts from the market's own logit (XGBoost ``base_margin``) and learns
# only the residual (docs/modeling.md §5, model M): with no signal it stays at the
# market instead of re-deriving the price from scratch, which costs skill.
OFFSET = "logit_p"

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "n_estimators": 300,
    "max_depth": 3,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    # Weights sum to 1 per market, so the hessian of one market is p(1 − p) ≤ 0.25: a
    # leaf needs ≥ 8 markets near p = 0.5 (more at extreme p) before it can split off.
    "min_child_weight": 2.0,
    "reg_lambda": 1.0,
    "random_state": 0,
    "n_jobs": 2,
    # Early stopping on the latest 20 % of the training events (by resolution time,
    # never the calibration fold): stop after 30 rounds without a better weighted log
    # loss and keep the best round. None disables it.
    "early_stopping_rounds": 30,
    "validation_fraction": 0.2,
    # Ridge strength pulling Platt's (a, b) towards the identity (1, 0), in markets
    # (weights sum to 1 per market); see fit_platt. 0 = plain Platt scaling.
    "platt_prior": 50.0,
}
# Settings of fit_model itself, not XGBClassifier arguments.
_OWN_PARAMS = ("early_stopping_rounds", "validation_fraction", "platt_prior")
# Early stopping needs this many events to stop on (the latest ``validation_fraction``
# of the training events, so ~50 training events in all). With fewer, the number of
# trees would be chosen by a handful of outcomes, or (no stopping) be all 300: the
# booster then grows no tree at all and the model is the market (``fit_model``).
MIN_STOPPING_EVENTS = 10
# A family's mean shift against the market is kept only with at least this many events
# behind it and a mean residual (y − p, one value per event) beyond SHIFT_Z standard
# errors of the same sign; otherwise it is removed (Model.family_offsets).
MIN_SHIFT_EVENTS = 20
SHIFT_Z = 2.0
# χ²(2) at 95 %: Platt's (a, b) replace the identity only when the calibration fold's
# events support them (``platt_evidence``).
PLATT_CHI2 = 5.991


class InsufficientDataError(ValueError):
    """Too few resolved markets to train or evaluate: "have N resolved markets, need M",
    then what is wrong with them. N counts the markets of the dataset; when the
    warehouse holds more, :func:`refusal_message` says which dataset rule removed them."""

    def __init__(self, have: int, need: int, detail: str = "", *, message: str = "") -> None:
        self.have, self.need = have, need
        head = message or f"have {have} resolved markets, need {need}"
        super().__init__(f"{head}: {detail}" if detail else head)


def explain_losses(losses: list[tuple[str, int]]) -> str:
    """``dataset.dataset_losses`` reasons as one clause: "because 310 had snapshots
    only once the outcome was known (rule 2), 12 had no market price (rule 4)"."""
    if not losses:
        return ""
    return "because " + ", ".join(f"{n} {reason}" for reason, n in losses)


def refusal_message(
    exc: InsufficientDataError, resolved: int, losses: list[tuple[str, int]]
) -> str:
    """The refusal with its real cause: when fewer markets are usable than the
    ``resolved`` ones, "have R resolved markets but 0 usable rows, need M because …"
    with the markets each dataset rule removed (``dataset.dataset_losses``)."""
    if resolved <= exc.have:
        return str(exc)
    rows = "0 usable rows" if exc.have == 0 else f"{exc.have} usable"
    head = f"have {resolved} resolved markets but {rows}, need {exc.need}"
    head = f"{head} {explain_losses(losses)}".strip()
    detail = str(exc).split(": ", 1)[1] if ": " in str(exc) else ""
    return f"{head}; {detail}" if detail else head


def one_outcome(df: pl.DataFrame) -> str:
    """ "all N labels are NO" (or YES) for rows of a single outcome, N in markets."""
    markets = df["market_id"].n_unique() if df.height else 0
    side = "YES" if df.height and df["y"][0] == 1 else "NO"
    return f"all {markets} labels are {side}"


def _with_features(df: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    needed = [*features, OFFSET]
    return add_features(df) if any(name not in df.columns for name in needed) else df


def used_features(df: pl.DataFrame) -> list[str]:
    """MODEL_FEATURES less the in-window PATH_FEATURES that are null in every row of
    ``df`` (no up/down path in the data): they carry nothing, and leaving them out keeps
    the booster's column sampling, so its trees, what they were before path rows
    existed. The model lists and is scored with these (``Model.features``)."""
    return [
        name
        for name in MODEL_FEATURES
        if name not in PATH_FEATURES or df[name].null_count() < df.height
    ]


def _matrix(df: pl.DataFrame, features: list[str]) -> np.ndarray:
    return df.select(pl.col(features).cast(pl.Float64)).to_numpy()


def _offset(df: pl.DataFrame) -> np.ndarray:
    # A row without a price starts from even odds (margin 0).
    return df[OFFSET].cast(pl.Float64).fill_null(0.0).to_numpy()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Model:
    """A fitted booster and its Platt calibrator: P(YES) = σ(a·m + b − o_f), m = the
    booster's margin (logit_p + the trees' residual), o_f the offset of the row's family
    (``family_offsets``: the shift the data did not support, 0 for other families).
    ``calibrated`` is False when the calibration fold held one outcome only, in which
    case a = 1, b = 0 (raw booster output)."""

    booster: xgb.Booster
    features: list[str]
    platt_coef: float = 1.0
    platt_intercept: float = 0.0
    calibrated: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    family_offsets: dict[str, float] = field(default_factory=dict)

    def margin(self, df: pl.DataFrame) -> np.ndarray:
        """The booster's logit for each row of ``df``: logit_p plus the trees' residual
        (the feature columns are added if absent)."""
        df = _with_features(df, self.features)
        dmatrix = xgb.DMatrix(
            _matrix(df, self.features), feature_names=self.features, base_margin=_offset(df)
        )
        return self.booster.predict(dmatrix, output_margin=True).astype(np.float64)

    def predict_uncalibrated(self, df: pl.DataFrame) -> np.ndarray:
        """The booster's own probability, before Platt scaling."""
        return _sigmoid(self.margin(df))

    def calibrated_logit(self, df: pl.DataFrame) -> np.ndarray:
        """a·m + b for each row of ``df``: the Platt-calibrated logit before family offsets."""
        return self.platt_coef * self.margin(df) + self.platt_intercept

    def offsets(self, df: pl.DataFrame) -> np.ndarray:
        """The family offset o_f of each row of ``df`` (0 without one or without a family)."""
        if not self.family_offsets or "family" not in df.columns:
            return np.zeros(df.height)
        return (
            df["family"]
            .cast(pl.String)
            .replace_strict(self.family_offsets, default=0.0, return_dtype=pl.Float64)
            .fill_null(0.0)
            .to_numpy()
        )

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        """Calibrated P(YES) for each row of ``df`` (``market_indicators`` or dataset rows)."""
        return _sigmoid(self.calibrated_logit(df) - self.offsets(df))

    def feature_importance(self) -> pl.DataFrame:
        """Per feature: ``gain`` (total loss reduction of its splits), ``gain_share``
        (of the total), ``splits`` (times used); unused features have 0. Sorted by gain."""
        total = self.booster.get_score(importance_type="total_gain")
        count = self.booster.get_score(importance_type="weight")
        gains = [float(total.get(name, 0.0)) for name in self.features]
        overall = sum(gains) or 1.0
        return pl.DataFrame(
            {
                "feature": self.features,
                "gain": gains,
                "gain_share": [g / overall for g in gains],
                "splits": [int(count.get(name, 0)) for name in self.features],
            }
        ).sort(["gain", "feature"], descending=[True, False])


def fit_model(
    train_df: pl.DataFrame, calib_df: pl.DataFrame, params: dict[str, Any] | None = None
) -> Model:
    """Fit the booster on ``train_df`` (sample weight = ``weight``) and Platt scaling on
    ``calib_df`` only. ``params`` override DEFAULT_PARAMS (XGBClassifier arguments).

    Raises InsufficientDataError when ``train_df`` has no rows or one outcome only.
    """
    settings = {**DEFAULT_PARAMS, **(params or {})}
    if "scale_pos_weight" in settings:
        raise ValueError("scale_pos_weight distorts probabilities (docs/modeling.md §2.1)")
    n_markets = train_df["market_id"].n_unique() if train_df.height else 0
    if train_df.height == 0 or train_df["y"].n_unique() < 2:
        detail = "no training rows" if train_df.height == 0 else one_outcome(train_df)
        raise InsufficientDataError(
            n_markets, MIN_RESOLVED_MARKETS, f"one outcome only in the training rows: {detail}"
        )
    train_df = _with_features(train_df, MODEL_FEATURES)
    features = used_features(train_df)
    booster_args = {k: v for k, v in settings.items() if k not in _OWN_PARAMS}
    fit_part, stop_part = _early_stopping_split(train_df, settings)
    fit_kw: dict[str, Any] = {}
    if stop_part is not None:
        booster_args["early_stopping_rounds"] = settings["early_stopping_rounds"]
        booster_args.setdefault("eval_metric", "logloss")
        fit_kw = {
            "eval_set": [(_matrix(stop_part, features), stop_part["y"].to_numpy())],
            "sample_weight_eval_set": [stop_part["weight"].to_numpy()],
            "base_margin_eval_set": [_offset(stop_part)],
            "verbose": False,
        }
    few_events = (
        stop_part is None
        and bool(settings.get("early_stopping_rounds"))
        and "event_id" in train_df.columns
    )
    if few_events:  # too few events to choose the number of trees: stay at the market
        booster_args["n_estimators"] = 0
    classifier = xgb.XGBClassifier(**booster_args)
    classifier.fit(
        _matrix(fit_part, features),
        fit_part["y"].to_numpy().astype(np.int32),
        sample_weight=fit_part["weight"].to_numpy(),
        base_margin=_offset(fit_part),
        **fit_kw,
    )
    booster = classifier.get_booster()
    n_trees = booster.num_boosted_rounds()
    if stop_part is not None:
        n_trees = classifier.best_iteration + 1
        booster = booster[:n_trees]  # keep the best round only, so a saved model is it
    booster.feature_names = list(features)
    model = Model(booster=booster, features=list(features), params=settings)

    calibrated = calib_df.height > 0 and calib_df["y"].n_unique() == 2
    platt_test: dict[str, Any] | None = None
    if calibrated:
        margin, y = model.margin(calib_df), calib_df["y"].to_numpy()
        coef, intercept = fit_platt(
            margin, y, calib_df["weight"].to_numpy(), prior=float(settings["platt_prior"])
        )
        platt_test = platt_evidence(margin, y, _event_weights(calib_df), coef, intercept)
        if platt_test["supported"]:
            model.platt_coef, model.platt_intercept = coef, intercept
    model.calibrated = bool(calibrated)
    seen = pl.concat([train_df, _with_features(calib_df, MODEL_FEATURES)], how="diagonal_relaxed")
    evidence = shift_evidence(seen, model.calibrated_logit(seen))
    model.family_offsets = {
        family: e["offset"] for family, e in evidence.items() if abs(e["offset"]) > 1e-6
    }
    model.info = {
        "n_train_markets": n_markets,
        "n_train_rows": train_df.height,
        "n_trees": int(n_trees),
        "no_trees_reason": (
            f"{event_table(train_df).height} training events: too few to stop on "
            f"{MIN_STOPPING_EVENTS}, the model stays at the market"
            if few_events
            else None
        ),
        "n_early_stopping_markets": (
            stop_part["market_id"].n_unique() if stop_part is not None else 0
        ),
        "n_calib_markets": calib_df["market_id"].n_unique() if calib_df.height else 0,
        "n_calib_rows": calib_df.height,
        "shift_evidence": evidence,
        "platt_evidence": platt_test,
    }
    return model


def _event_weights(df: pl.DataFrame) -> np.ndarray:
    """Row weights summing to 1 per event (cluster): ``weight`` / markets of the event."""
    per_event = pl.col("market_id").n_unique().over("cluster")
    return df.select(pl.col("weight") / per_event)["weight"].to_numpy()


def platt_evidence(
    margin: np.ndarray, y: np.ndarray, w_event: np.ndarray, coef: float, intercept: float
) -> dict[str, Any]:
    """Whether the calibration fold supports recalibrating the booster by (a, b) rather
    than leaving it as is (a = 1, b = 0): a likelihood-ratio test with one unit of
    weight per event, ``deviance`` = 2·[LL(a, b) − LL(1, 0)] against the χ²(2) 95 %
    point (PLATT_CHI2). Events are the unit because a ladder's strikes resolve on one
    BTC path: counted per market, 11 strikes of one day would pass for 11 outcomes.
    Below it the recalibration is noise of a two-parameter fit and is not applied."""

    def loglik(a: float, b: float) -> float:
        z = a * margin + b
        return float((w_event * (y * z - np.logaddexp(0.0, z))).sum())

    deviance = 2.0 * (loglik(coef, intercept) - loglik(1.0, 0.0))
    return {
        "coef": coef,
        "intercept": intercept,
        "deviance": deviance,
        "events": float(w_event.sum()),
        "supported": deviance >= PLATT_CHI2,
    }


def shift_evidence(df: pl.DataFrame, logits: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per family of ``df`` (rows with ``family, cluster, y, weight, market_prob``),
    whether the data support the model's shift from the market, and the offset that
    takes it out when they do not.

    ``shift`` = Σ w·(σ(z) − p) / Σ w, how far the model (``logits`` = z) sits above the
    market p on average, in probability points (each market weighs 1). The evidence is
    the labels': each event (cluster) gives its mean residual r_e = Σ w·(y − p) / Σ w;
    over the family's E events, ``residual`` = mean r_e and ``se`` = sd(r_e)/√E.
    ``supported`` when E ≥ MIN_SHIFT_EVENTS, |residual| ≥ SHIFT_Z·se and the residual
    has the shift's sign: the market was off in that direction on enough independent
    outcomes. Events, not markets or rows, are the unit: a ladder's strikes share one
    BTC path and one outcome of it. Otherwise ``offset`` is the c with
    Σ w·σ(z − c) = Σ w·p: subtracted from the logits, it puts the model back at the
    market on average and keeps how it ranks the rows (0 when supported).
    """
    frame = df.select(
        pl.col("family").cast(pl.String).fill_null("other"),
        "cluster",
        pl.col("weight").cast(pl.Float64),
        pl.Series("z", logits, dtype=pl.Float64),
        pl.col("market_prob").cast(pl.Float64).alias("p"),
        (pl.col("y").cast(pl.Float64) - pl.col("market_prob").cast(pl.Float64)).alias("resid"),
    ).filter(pl.col("z").is_finite() & pl.col("resid").is_not_null())
    out: dict[str, dict[str, Any]] = {}
    for (family,), part in sorted(frame.partition_by("family", as_dict=True).items()):
        z, p, w = (part[name].to_numpy() for name in ("z", "p", "weight"))
        shift = float((w * (_sigmoid(z) - p)).sum() / w.sum())
        events = part.group_by("cluster").agg(
            ((pl.col("resid") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("r")
        )["r"]
        n = events.len()
        residual = float(events.mean()) if n else 0.0
        se = float(events.std() / math.sqrt(n)) if n > 1 else math.inf
        supported = (
            n >= MIN_SHIFT_EVENTS
            and abs(residual) >= SHIFT_Z * se
            and math.copysign(1.0, residual) == math.copysign(1.0, shift)
        )
        out[str(family)] = {
            "shift": shift,
            "events": n,
            "residual": residual,
            "se": se if math.isfinite(se) else None,
            "supported": supported,
            "offset": 0.0 if supported else _recentring_offset(z, p, w),
        }
    return out


def _recentring_offset(z: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """The c with Σ w·σ(z − c) = Σ w·p (bisection: the left side falls as c grows)."""
    target = (w * p).sum()
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if (w * _sigmoid(z - mid)).sum() > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def fit_platt(
    margin: np.ndarray, y: np.ndarray, w: np.ndarray, prior: float = 50.0
) -> tuple[float, float]:
    """Platt scaling with a ridge prior: the (a, b) minimising

        Σ w·[ln(1 + e^z) − y·z] + (prior/2)·((a − 1)² + b²),   z = a·margin + b,

    i.e. a weighted logistic regression of y on the booster's logit, shrunk towards
    leaving it unchanged. Unpenalised Platt fitted on ~50–300 calibration markets
    costs more Brier than it fixes when the booster is already calibrated (its
    two-parameter estimation noise alone is ~1–2 % of the market's Brier), while a
    real miscalibration seen on hundreds of markets still comes through. Newton's
    method from (1, 0).
    """
    m = np.asarray(margin, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    ww = np.asarray(w, dtype=np.float64)
    ridge = max(prior, 1e-9)  # a vanishing ridge keeps separable data finite
    a, b = 1.0, 0.0
    for _ in range(100):
        p = _sigmoid(a * m + b)
        r = ww * (p - yy)
        grad = np.array([(r * m).sum() + ridge * (a - 1.0), r.sum() + ridge * b])
        h = ww * p * (1.0 - p)
        hess = np.array(
            [[(h * m * m).sum() + ridge, (h * m).sum()], [(h * m).sum(), h.sum() + ridge]]
        )
        step = np.linalg.solve(hess, grad)
        step *= min(1.0, 5.0 / max(np.abs(step).max(), 1e-300))  # damp huge first steps
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def _early_stopping_split(
    train_df: pl.DataFrame, settings: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(rows to fit, rows to stop on): the latest ``validation_fraction`` of the events,
    or (all rows, None) when early stopping is off or there are too few events."""
    rounds, fraction = settings.get("early_stopping_rounds"), settings.get("validation_fraction")
    if not rounds or not fraction or "event_id" not in train_df.columns:
        return train_df, None
    events = event_table(train_df)
    if math.ceil(fraction * events.height) < MIN_STOPPING_EVENTS:
        return train_df, None
    fit_events, stop_events = split_calibration(events, fraction)
    fit_part = train_df.filter(pl.col("event_id").is_in(fit_events))
    stop_part = train_df.filter(pl.col("event_id").is_in(stop_events))
    if fit_part["y"].n_unique() < 2:
        return train_df, None
    return fit_part, stop_part


def family_counts(ds: pl.DataFrame) -> dict[str, tuple[int, int]]:
    """{family: (markets, events)} of a dataset, sorted by family."""
    if ds.height == 0:
        return {}
    counts = (
        ds.group_by("family")
        .agg(pl.col("market_id").n_unique(), pl.col("event_id").n_unique())
        .sort("family")
    )
    return {str(f): (int(m), int(e)) for f, m, e in counts.rows()}


def select_families(
    ds: pl.DataFrame,
    min_markets: int = MIN_FAMILY_MARKETS,
    min_events: int = MIN_FAMILY_EVENTS,
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The rows of the families with at least ``min_markets`` markets in ``min_events``
    events, and for every other family why it is left out ("12 markets in 2 events").

    A family below its minimum gets no model (the edge report shows no model view on
    it): skill measured on a few events is one BTC path's luck, and training on them
    would carry that luck into the families that have data. Raises
    InsufficientDataError naming each family and its counts when none qualifies.
    """
    counts = family_counts(ds)
    kept = [f for f, (m, e) in counts.items() if m >= min_markets and e >= min_events]
    left_out = {f: f"{m} markets in {e} events" for f, (m, e) in counts.items() if f not in kept}
    if not kept:
        have = ds["market_id"].n_unique() if ds.height else 0
        listed = ", ".join(f"{f} {why}" for f, why in left_out.items()) or "no rows"
        raise InsufficientDataError(
            have,
            min_markets,
            listed,
            message=(
                f"have {have} resolved markets but no family with {min_markets} markets "
                f"in {min_events} events"
            ),
        )
    return ds.filter(pl.col("family").is_in(kept)), left_out


def require_markets(ds: pl.DataFrame, need: int) -> None:
    """InsufficientDataError ("have N resolved markets, need M") below ``need`` markets."""
    have = ds["market_id"].n_unique() if ds.height else 0
    if have < need:
        raise InsufficientDataError(have, need)


PRED_ID_COLUMNS = [
    "market_id",
    "event_id",
    "family",
    "cluster",
    "snapshot_ts",
    "resolved_at",
    "y",
    "weight",
    "market_prob",
    "structural_probability",
]


def walk_forward_evaluate(
    ds: pl.DataFrame,
    *,
    params: dict[str, Any] | None = None,
    n_boot: int = 1000,
    min_markets: int = MIN_RESOLVED_MARKETS,
    **split_kw: Any,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Walk-forward evaluation of ``ds`` (a ``build_dataset`` frame).

    For every fold of ``walk_forward_folds(ds, **split_kw)`` (``min_train_markets``
    defaults to MIN_RESOLVED_MARKETS) a model is fitted on the fold's train and
    calibration rows and scores its test rows. Returns ``pred_df`` (one row per test
    row: ``fold`` and PRED_ID_COLUMNS, ``oracle_prob`` when ``ds`` has it, plus
    ``model_prob``) and the report of
    ``metrics.evaluation_report`` with ``folds`` (window, markets per set, trees,
    Platt coefficients; or ``skipped`` with the reason when the fold's training rows
    hold one outcome only) and ``split`` (the settings) added. Raises
    InsufficientDataError with fewer than MIN_RESOLVED_MARKETS resolved markets, when no
    test window has enough history, or when every fold's training has one outcome.
    """
    require_markets(ds, min_markets)
    split_kw.setdefault("min_train_markets", min_markets)
    folds = walk_forward_folds(ds, **split_kw)
    if not folds:
        raise InsufficientDataError(
            ds["market_id"].n_unique(),
            split_kw["min_train_markets"],
            "no test window has that many resolved before it; collect more history",
        )
    # On a simulated world the fair value each row was priced from rides along (oracle).
    carried = [*PRED_ID_COLUMNS, *(c for c in (ORACLE,) if c in ds.columns)]
    parts, fold_rows = [], []
    for number, fold in enumerate(folds):
        train, calib, test = ds[fold.train_idx], ds[fold.calib_idx], ds[fold.test_idx]
        window = {
            "fold": number,
            "test_start": fold.test_start.isoformat(),
            "test_end": fold.test_end.isoformat(),
        }
        if train["y"].n_unique() < 2:  # e.g. a reach-only history where nothing hit yet
            fold_rows.append({**window, "skipped": "training rows hold one outcome"})
            continue
        model = fit_model(train, calib, params)
        parts.append(
            test.select(carried).with_columns(
                pl.lit(number, dtype=pl.Int32).alias("fold"),
                pl.Series("model_prob", model.predict(test)),
            )
        )
        fold_rows.append(
            {
                **window,
                "n_train_markets": train["market_id"].n_unique(),
                "n_calib_markets": calib["market_id"].n_unique(),
                "n_test_markets": test["market_id"].n_unique(),
                "n_trees": model.info["n_trees"],
                "calibrated": model.calibrated,
                "platt_coef": model.platt_coef,
                "platt_intercept": model.platt_intercept,
                "family_offsets": model.family_offsets,
                **fold_shift(parts[-1]),
            }
        )
    if not parts:
        detail = "one outcome only in every fold"
        if ds["y"].n_unique() == 1:
            detail += f": {one_outcome(ds)}"
        have = ds["market_id"].n_unique()
        raise InsufficientDataError(have, split_kw["min_train_markets"], detail)
    pred_df = pl.concat(parts).select("fold", *carried, "model_prob")
    report = evaluation_report(pred_df, n_boot=n_boot)
    report["folds"] = fold_rows
    report["shift"] = fold_shift(pred_df)
    report["split"] = {key: _plain(value) for key, value in split_kw.items()}
    return pred_df, report


def _mean_shift(frame: pl.DataFrame) -> float | None:
    weight = frame["weight"].sum()
    if not weight:
        return None
    gap = (frame["model_prob"] - frame["market_prob"]) * frame["weight"]
    return float(gap.sum() / weight)


def fold_shift(pred: pl.DataFrame) -> dict[str, Any]:
    """How far the predictions sit from the market on average, in probability points:
    ``mean_shift`` = Σ w·(model − market) / Σ w (each market weighs 1) over ``pred``, and
    ``shift_by_family``. A model that learned nothing real stays near 0; a fold whose
    every prediction sits above the market has learned the sample's drift."""
    by_family = {str(family): _mean_shift(part) for family, part in family_parts(pred)}
    return {"mean_shift": _mean_shift(pred), "shift_by_family": by_family}


def train_final(
    ds: pl.DataFrame,
    params: dict[str, Any] | None = None,
    calib_fraction: float = CALIB_FRACTION,
    min_markets: int = MIN_RESOLVED_MARKETS,
) -> Model:
    """The model to deploy: the booster on all events but the latest ``calib_fraction``
    (≈ 25 %) by resolution time, Platt scaling on those. Raises InsufficientDataError
    with fewer than MIN_RESOLVED_MARKETS resolved markets."""
    require_markets(ds, min_markets)
    train_events, calib_events = split_calibration(event_table(ds), calib_fraction)
    train = ds.filter(pl.col("event_id").is_in(train_events))
    calib = ds.filter(pl.col("event_id").is_in(calib_events))
    model = fit_model(train, calib, params)
    model.info.update(
        first_resolved=_iso(ds["resolved_at"].min()),
        last_resolved=_iso(ds["resolved_at"].max()),
        calib_from=_iso(calib["resolved_at"].min()),
    )
    return model


def _plain(value: Any) -> Any:
    """A split setting as JSON: timedeltas in seconds, datetimes in ISO form."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None and not isinstance(value, float) else None


__all__ = [
    "DEFAULT_PARAMS",
    "MIN_RESOLVED_MARKETS",
    "InsufficientDataError",
    "Model",
    "explain_losses",
    "fit_model",
    "refusal_message",
    "require_markets",
    "select_families",
    "shift_evidence",
    "train_final",
    "walk_forward_evaluate",
]
