"""The price model: shallow XGBoost on FEATURES, Platt-calibrated on a later fold.

docs/modeling.md §2.1 and §5, model M:

- the booster starts from the market's logit (``logit_p`` as XGBoost
  ``base_margin``) and its trees learn only the residual, so with no signal the
  model stays at the market price;
- each row weighs 1/rows-of-its-market (every market counts once); no
  ``scale_pos_weight`` (it distorts probabilities);
- early stopping on the latest 20 % of the training events keeps as few trees as
  the data support (with no signal, a handful);
- the output is recalibrated by Platt scaling (a logistic regression on the
  booster's logit, with a ridge prior towards the identity: ``fit_platt``) fitted
  only on the calibration fold: events resolved after every training event, never
  seen by the booster.

Everything is deterministic (fixed seeds, 2 threads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb

from btc_tracker_pipeline.model.dataset import FEATURES, add_features
from btc_tracker_pipeline.model.metrics import evaluation_report
from btc_tracker_pipeline.model.splits import (
    CALIB_FRACTION,
    event_table,
    split_calibration,
    walk_forward_folds,
)

# Below ~200 resolved markets a 10-bin calibration curve has ~20 outcomes per bin
# (Wilson half-width ±0.2) and a Brier-skill CI is wider than any plausible edge
# (n ≈ (2.8/δ)² markets for an edge δ: docs/modeling.md §4), so a model fitted on less
# is noise; we refuse to train or evaluate.
MIN_RESOLVED_MARKETS = 200

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
MIN_STOPPING_EVENTS = 10


class InsufficientDataError(ValueError):
    """Too few resolved markets to train or evaluate: "have N resolved markets, need M",
    then what is wrong with them. N counts the markets of the dataset; when the
    warehouse holds more, :func:`refusal_message` says which dataset rule removed them."""

    def __init__(self, have: int, need: int, detail: str = "") -> None:
        self.have, self.need = have, need
        message = f"have {have} resolved markets, need {need}"
        super().__init__(f"{message}: {detail}" if detail else message)


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


def _matrix(df: pl.DataFrame, features: list[str]) -> np.ndarray:
    return df.select(pl.col(features).cast(pl.Float64)).to_numpy()


def _offset(df: pl.DataFrame) -> np.ndarray:
    # A row without a price starts from even odds (margin 0).
    return df[OFFSET].cast(pl.Float64).fill_null(0.0).to_numpy()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class Model:
    """A fitted booster and its Platt calibrator: P(YES) = σ(a·m + b), m = the booster's
    margin (logit_p + the trees' residual). ``calibrated`` is False when the calibration
    fold held one outcome only, in which case a = 1, b = 0 (raw booster output)."""

    booster: xgb.Booster
    features: list[str]
    platt_coef: float = 1.0
    platt_intercept: float = 0.0
    calibrated: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def margin(self, df: pl.DataFrame) -> np.ndarray:
        """The booster's logit for each row of ``df``: logit_p plus the trees' residual
        (FEATURES are added if absent)."""
        df = _with_features(df, self.features)
        dmatrix = xgb.DMatrix(
            _matrix(df, self.features), feature_names=self.features, base_margin=_offset(df)
        )
        return self.booster.predict(dmatrix, output_margin=True).astype(np.float64)

    def predict_uncalibrated(self, df: pl.DataFrame) -> np.ndarray:
        """The booster's own probability, before Platt scaling."""
        return _sigmoid(self.margin(df))

    def predict(self, df: pl.DataFrame) -> np.ndarray:
        """Calibrated P(YES) for each row of ``df`` (``market_indicators`` or dataset rows)."""
        return _sigmoid(self.platt_coef * self.margin(df) + self.platt_intercept)

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
    train_df = _with_features(train_df, FEATURES)
    booster_args = {k: v for k, v in settings.items() if k not in _OWN_PARAMS}
    fit_part, stop_part = _early_stopping_split(train_df, settings)
    fit_kw: dict[str, Any] = {}
    if stop_part is not None:
        booster_args["early_stopping_rounds"] = settings["early_stopping_rounds"]
        booster_args.setdefault("eval_metric", "logloss")
        fit_kw = {
            "eval_set": [(_matrix(stop_part, FEATURES), stop_part["y"].to_numpy())],
            "sample_weight_eval_set": [stop_part["weight"].to_numpy()],
            "base_margin_eval_set": [_offset(stop_part)],
            "verbose": False,
        }
    classifier = xgb.XGBClassifier(**booster_args)
    classifier.fit(
        _matrix(fit_part, FEATURES),
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
    booster.feature_names = list(FEATURES)
    model = Model(booster=booster, features=list(FEATURES), params=settings)

    calibrated = calib_df.height > 0 and calib_df["y"].n_unique() == 2
    if calibrated:
        model.platt_coef, model.platt_intercept = fit_platt(
            model.margin(calib_df),
            calib_df["y"].to_numpy(),
            calib_df["weight"].to_numpy(),
            prior=float(settings["platt_prior"]),
        )
    model.calibrated = bool(calibrated)
    model.info = {
        "n_train_markets": n_markets,
        "n_train_rows": train_df.height,
        "n_trees": int(n_trees),
        "n_early_stopping_markets": (
            stop_part["market_id"].n_unique() if stop_part is not None else 0
        ),
        "n_calib_markets": calib_df["market_id"].n_unique() if calib_df.height else 0,
        "n_calib_rows": calib_df.height,
    }
    return model


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
    if events.height < MIN_STOPPING_EVENTS:
        return train_df, None
    fit_events, stop_events = split_calibration(events, fraction)
    fit_part = train_df.filter(pl.col("event_id").is_in(fit_events))
    stop_part = train_df.filter(pl.col("event_id").is_in(stop_events))
    if fit_part["y"].n_unique() < 2:
        return train_df, None
    return fit_part, stop_part


def _require(ds: pl.DataFrame, need: int) -> None:
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
    row: ``fold`` and PRED_ID_COLUMNS plus ``model_prob``) and the report of
    ``metrics.evaluation_report`` with ``folds`` (window, markets per set, trees,
    Platt coefficients; or ``skipped`` with the reason when the fold's training rows
    hold one outcome only) and ``split`` (the settings) added. Raises
    InsufficientDataError with fewer than MIN_RESOLVED_MARKETS resolved markets, when no
    test window has enough history, or when every fold's training has one outcome.
    """
    _require(ds, min_markets)
    split_kw.setdefault("min_train_markets", min_markets)
    folds = walk_forward_folds(ds, **split_kw)
    if not folds:
        raise InsufficientDataError(
            ds["market_id"].n_unique(),
            split_kw["min_train_markets"],
            "no test window has that many resolved before it; collect more history",
        )
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
            test.select(PRED_ID_COLUMNS).with_columns(
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
            }
        )
    if not parts:
        detail = "one outcome only in every fold"
        if ds["y"].n_unique() == 1:
            detail += f": {one_outcome(ds)}"
        have = ds["market_id"].n_unique()
        raise InsufficientDataError(have, split_kw["min_train_markets"], detail)
    pred_df = pl.concat(parts).select("fold", *PRED_ID_COLUMNS, "model_prob")
    report = evaluation_report(pred_df, n_boot=n_boot)
    report["folds"] = fold_rows
    report["split"] = {key: _plain(value) for key, value in split_kw.items()}
    return pred_df, report


def train_final(
    ds: pl.DataFrame,
    params: dict[str, Any] | None = None,
    calib_fraction: float = CALIB_FRACTION,
    min_markets: int = MIN_RESOLVED_MARKETS,
) -> Model:
    """The model to deploy: the booster on all events but the latest ``calib_fraction``
    (≈ 25 %) by resolution time, Platt scaling on those. Raises InsufficientDataError
    with fewer than MIN_RESOLVED_MARKETS resolved markets."""
    _require(ds, min_markets)
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
    "train_final",
    "walk_forward_evaluate",
]
