"""Saving and loading a model: one folder per model, JSON only (no pickle).

``models_dir/<UTC timestamp>/`` (e.g. ``20260301T101500123456Z``) holds:

- ``booster.json``: XGBoost's own JSON model format (``Booster.save_model``);
- ``calibrator.json``: the Platt coefficients ``{"method": "platt", "coef", "intercept",
  "calibrated", "family_offsets"}`` applied as σ(coef·margin + intercept − offset of the
  row's family) (a model saved without ``family_offsets`` has none);
- ``card.json``: the caller's card (data window, markets/rows, metrics, …) plus
  ``features``, ``params``, ``info``, ``created_at`` and ``versions`` (``artifact``,
  ``xgboost``, ``btc_tracker``).

A folder is written under a temporary name and renamed into place, so a reader never
sees half a model; ``load_latest`` takes the newest complete folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import xgboost as xgb

from btc_tracker_pipeline.model.dataset import FEATURES
from btc_tracker_pipeline.model.train import Model

ARTIFACT_VERSION = 1
BOOSTER_FILE = "booster.json"
CALIBRATOR_FILE = "calibrator.json"
CARD_FILE = "card.json"
# How a user gets a model this code can read (`btc-tracker train` runs price_model).
RETRAIN_HINT = "retrain: btc-tracker train"
_NAME = re.compile(r"^\d{8}T\d{12}Z$")


class ModelArtifactError(RuntimeError):
    """A model folder that is missing, from another artifact version, or unreadable."""


def btc_tracker_version() -> str:
    """The installed btc-tracker-pipeline version ("unknown" when not installed)."""
    try:
        return metadata.version("btc-tracker-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def save_model(model: Model, card: dict[str, Any], models_dir: Path) -> Path:
    """Write ``model`` and its card to a new ``models_dir/<UTC timestamp>/``; return it.

    ``card`` is the caller's description (data window, counts, metrics: anything
    JSON-serialisable); ``features``, ``params``, ``info``, ``calibrated``,
    ``created_at`` and ``versions`` are filled in here. The folder appears atomically.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    name = now.strftime("%Y%m%dT%H%M%S%fZ")
    final = models_dir / name
    while final.exists():  # two saves in one microsecond: take the next one
        now += timedelta(microseconds=1)
        name = now.strftime("%Y%m%dT%H%M%S%fZ")
        final = models_dir / name
    staging = models_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        model.booster.save_model(str(staging / BOOSTER_FILE))
        _write_json(
            staging / CALIBRATOR_FILE,
            {
                "method": "platt",
                "input": "booster margin (logit of the raw probability)",
                "coef": model.platt_coef,
                "intercept": model.platt_intercept,
                "calibrated": model.calibrated,
                "family_offsets": model.family_offsets,
            },
        )
        full_card = {
            **card,
            "features": list(model.features),
            "params": model.params,
            "info": model.info,
            "calibrated": model.calibrated,
            "created_at": now.isoformat(),
            "versions": {
                "artifact": ARTIFACT_VERSION,
                "xgboost": xgb.__version__,
                "btc_tracker": btc_tracker_version(),
            },
        }
        _write_json(staging / CARD_FILE, full_card)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def model_dirs(models_dir: Path) -> list[Path]:
    """The saved model folders under ``models_dir``, oldest first."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if p.is_dir() and _NAME.match(p.name))


def latest_card(models_dir: Path) -> tuple[str, dict[str, Any]] | None:
    """The newest model's version (its folder name) and card, read without loading the
    booster; None when there is no model or its card is unreadable."""
    folders = model_dirs(models_dir)
    if not folders:
        return None
    try:
        card = json.loads((folders[-1] / CARD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return (folders[-1].name, card) if isinstance(card, dict) else None


def load_model(folder: Path) -> tuple[Model, dict[str, Any]]:
    """The model and card saved in ``folder``; ModelArtifactError with a one-line reason
    when the folder is unreadable, from another ARTIFACT_VERSION, or uses features this
    code does not know."""
    folder = Path(folder)
    try:
        card = json.loads((folder / CARD_FILE).read_text())
        calibrator = json.loads((folder / CALIBRATOR_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelArtifactError(
            f"model {folder} is unreadable ({type(exc).__name__}: {exc}); {RETRAIN_HINT}"
        ) from exc
    versions = card.get("versions") if isinstance(card, dict) else None
    version = versions.get("artifact") if isinstance(versions, dict) else None
    if version != ARTIFACT_VERSION:
        raise ModelArtifactError(
            f"model {folder} is artifact version {version}, this btc-tracker reads "
            f"version {ARTIFACT_VERSION}; {RETRAIN_HINT}"
        )
    features = card.get("features")
    if not isinstance(features, list) or not features:
        raise ModelArtifactError(f"model {folder} has no feature list; {RETRAIN_HINT}")
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ModelArtifactError(
            f"model {folder} uses features this btc-tracker does not know "
            f"({', '.join(map(str, unknown))}); {RETRAIN_HINT}"
        )
    try:
        booster = xgb.Booster()
        booster.load_model(str(folder / BOOSTER_FILE))
        coef = float(calibrator["coef"])
        intercept = float(calibrator["intercept"])
        offsets = {str(k): float(v) for k, v in (calibrator.get("family_offsets") or {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, xgb.core.XGBoostError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelArtifactError(
            f"model {folder} is unreadable ({type(exc).__name__}: {first_line}); {RETRAIN_HINT}"
        ) from exc
    if booster.num_features() != len(features):
        raise ModelArtifactError(
            f"model {folder}: booster has {booster.num_features()} features, card lists "
            f"{len(features)}; {RETRAIN_HINT}"
        )
    booster.feature_names = list(features)
    model = Model(
        booster=booster,
        features=list(features),
        platt_coef=coef,
        platt_intercept=intercept,
        calibrated=bool(calibrator.get("calibrated", True)),
        params=dict(card.get("params") or {}),
        info=dict(card.get("info") or {}),
        family_offsets=offsets,
    )
    return model, card


def load_latest(models_dir: Path) -> tuple[Model, dict[str, Any]]:
    """The newest model under ``models_dir`` and its card; ModelArtifactError when there
    is none yet ("run price_model first") or it cannot be used (``load_model``)."""
    folders = model_dirs(models_dir)
    if not folders:
        raise ModelArtifactError(f"no model in {models_dir} yet: run price_model first")
    return load_model(folders[-1])
