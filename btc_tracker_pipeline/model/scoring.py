"""Scoring rows with the newest saved model: what ``edge_report`` and ``live_edges`` share.

No Dagster here: the ``btc-tracker edges --live`` command scores its rows with the same
functions as the assets, without loading the code location.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from btc_tracker_pipeline.model.dataset import add_features


def newest_model(
    models_dir: Path, log: Any
) -> tuple[Any, dict | None, str | None, datetime | None]:
    """The newest saved model, its card, version and last training snapshot; all None
    (and a warning on ``log``) when there is none or it cannot be read."""
    if not models_dir.is_dir() or not any(p.is_dir() for p in models_dir.iterdir()):
        # Before the first training a tick need not load XGBoost (~1 s) to learn that.
        log.warning(
            f"edge_report without a model: no model in {models_dir} yet: run price_model first"
        )
        return None, None, None, None
    # XGBoost loads only here, when a report runs with a model (not with the code location).
    from btc_tracker_pipeline.model.artifact import ModelArtifactError, load_latest, model_dirs

    try:
        model, card = load_latest(models_dir)
        version = model_dirs(models_dir)[-1].name
        return model, card, version, datetime.fromisoformat(card["data_window"]["last_snapshot"])
    except ModelArtifactError as exc:
        log.warning(f"edge_report without a model: {exc}")
        return None, None, None, None


def with_model_probabilities(rows: pl.DataFrame, model: Any, card: dict | None) -> pl.DataFrame:
    """``rows`` with the model's ``model_prob``: null without a model and where the model
    has no say (``outside_training``)."""
    if model is None or card is None or rows.is_empty():
        return rows.with_columns(pl.lit(None, dtype=pl.Float64).alias("model_prob"))
    featured = add_features(rows)
    no_say = featured.select(outside_training(card)).to_series()
    predicted = pl.Series("model_prob", model.predict(featured), dtype=pl.Float64)
    return rows.with_columns(pl.when(no_say).then(None).otherwise(predicted).alias("model_prob"))


def outside_training(card: dict) -> pl.Expr:
    """Rows (``add_features`` output) the model has no say on (their model_prob is null:
    no_model → PASS): up/down rows before their window opens, which it never trains on
    (a fair coin, dataset rule 5), and families it learned from no market of (e.g.
    barriers while none has ended, dataset rule 6): there it would only carry over what
    it learned elsewhere."""
    updown = pl.col("family").str.starts_with("updown")
    unopened = updown & pl.col("reference_price").is_null()
    trained = card.get("trained_families")
    if trained is None:  # a model saved before the card listed its families
        return unopened
    return unopened | ~pl.col("family").is_in(list(trained))
