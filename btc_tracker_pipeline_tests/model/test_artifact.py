"""Model artifacts: JSON round trip, newest wins, one-line errors for unusable folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from btc_tracker_pipeline.features.path_features import PATH_FEATURES
from btc_tracker_pipeline.model import artifact
from btc_tracker_pipeline.model.artifact import (
    ARTIFACT_VERSION,
    ModelArtifactError,
    load_latest,
    model_dirs,
    save_model,
)
from btc_tracker_pipeline.model.dataset import FEATURES, MODEL_FEATURES, build_dataset
from btc_tracker_pipeline.model.train import Model, train_final
from btc_tracker_pipeline_tests.model import synthetic_tables

pytestmark = pytest.mark.unit

NO_PATH_FEATURES = [f for f in MODEL_FEATURES if f not in PATH_FEATURES]


@pytest.fixture(scope="module")
def trained() -> tuple[Model, pl.DataFrame]:
    ds = build_dataset(*synthetic_tables(bias=0.5, days=3, markets_per_hour=4, seed=1))
    return train_final(ds), ds


CARD = {"data_window": {"last_snapshot": "2026-01-04T00:00:00"}, "n_markets": 288}


def test_a_model_saved_before_the_path_features_loads_and_scores_with_its_own_list(
    trained, tmp_path
):
    """A card listing the features of the time (no PATH_FEATURES) is read and scored with
    that list: the rows' path columns (here present) are not given to its booster."""
    from btc_tracker_pipeline.model.dataset import add_features

    _, ds = trained
    old = [f for f in MODEL_FEATURES if f not in PATH_FEATURES]
    booster = xgb.train(
        {"max_depth": 2, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(
            ds.select(old).to_numpy(),
            label=ds["y"].to_numpy(),
            feature_names=old,
            base_margin=ds["logit_p"].to_numpy(),
        ),
        num_boost_round=3,
    )
    folder = save_model(Model(booster=booster, features=old), CARD, tmp_path / "models")
    loaded, card = load_latest(tmp_path / "models")
    assert loaded.features == card["features"] == old
    rows = add_features(ds).with_columns(pl.lit(1.0).alias(name) for name in PATH_FEATURES)
    assert np.array_equal(loaded.predict(rows), loaded.predict(ds))
    assert folder.name in {p.name for p in model_dirs(tmp_path / "models")}


def test_round_trip_gives_identical_predictions(trained, tmp_path):
    model, ds = trained
    folder = save_model(model, CARD, tmp_path / "models")
    assert folder.parent == tmp_path / "models"
    assert sorted(p.name for p in folder.iterdir()) == [
        "booster.json",
        "calibrator.json",
        "card.json",
    ]
    for path in folder.iterdir():  # JSON only, no pickle
        json.loads(path.read_text())
    loaded, card = load_latest(tmp_path / "models")
    assert np.array_equal(loaded.predict(ds), model.predict(ds))
    # No path rows in this data: the in-window features are left out (train.used_features).
    assert loaded.features == model.features == NO_PATH_FEATURES
    assert (loaded.platt_coef, loaded.platt_intercept) == (model.platt_coef, model.platt_intercept)
    assert loaded.feature_importance().equals(model.feature_importance())
    assert card["n_markets"] == 288 and card["data_window"] == CARD["data_window"]
    assert card["features"] == NO_PATH_FEATURES
    assert card["versions"]["artifact"] == ARTIFACT_VERSION
    assert card["versions"]["xgboost"] == xgb.__version__
    assert card["versions"]["btc_tracker"]
    assert card["created_at"].endswith("+00:00")
    assert card["info"]["n_train_markets"] == model.info["n_train_markets"]


def test_newest_folder_wins_and_staging_is_ignored(trained, tmp_path):
    model, _ = trained
    first = save_model(model, {"n": 1}, tmp_path)
    second = save_model(model, {"n": 2}, tmp_path)
    assert first.name < second.name
    (tmp_path / ".tmp-99999999T000000000000Z-abcd").mkdir()  # a crashed save
    (tmp_path / "notes").mkdir()
    assert model_dirs(tmp_path) == [first, second]
    assert load_latest(tmp_path)[1]["n"] == 2


def test_failed_save_leaves_nothing(trained, tmp_path, monkeypatch):
    model, _ = trained

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifact, "_write_json", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, CARD, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_no_model_yet(tmp_path):
    with pytest.raises(ModelArtifactError, match="run price_model first"):
        load_latest(tmp_path / "missing")
    with pytest.raises(ModelArtifactError, match="run price_model first"):
        load_latest(tmp_path)


def edit_card(folder: Path, **changes) -> None:
    card = json.loads((folder / "card.json").read_text())
    card.update(changes)
    (folder / "card.json").write_text(json.dumps(card))


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_other_artifact_version(trained, tmp_path):
    folder = save_model(trained[0], CARD, tmp_path)
    edit_card(folder, versions={"artifact": ARTIFACT_VERSION + 1})
    with pytest.raises(ModelArtifactError) as exc:
        load_latest(tmp_path)
    message = one_line(exc)
    assert f"artifact version {ARTIFACT_VERSION + 1}" in message
    assert "retrain: btc-tracker" in message


def test_unknown_features(trained, tmp_path):
    folder = save_model(trained[0], CARD, tmp_path)
    edit_card(folder, features=[*FEATURES[:-1], "moon_phase"])
    with pytest.raises(ModelArtifactError, match=r"moon_phase.*retrain: btc-tracker") as exc:
        load_latest(tmp_path)
    one_line(exc)


@pytest.mark.parametrize(
    ("name", "content"),
    [("booster.json", "{not json"), ("calibrator.json", "{}"), ("card.json", "[")],
)
def test_unreadable_files(trained, tmp_path, name, content):
    folder = save_model(trained[0], CARD, tmp_path)
    (folder / name).write_text(content)
    with pytest.raises(ModelArtifactError, match="unreadable") as exc:
        load_latest(tmp_path)
    one_line(exc)


def test_missing_booster(trained, tmp_path):
    folder = save_model(trained[0], CARD, tmp_path)
    (folder / "booster.json").unlink()
    with pytest.raises(ModelArtifactError, match="unreadable") as exc:
        load_latest(tmp_path)
    one_line(exc)
