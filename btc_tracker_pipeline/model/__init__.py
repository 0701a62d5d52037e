"""The price model's pure core: dataset, walk-forward splits, metrics, training, artifacts.

No Dagster and no DuckDB here: every function takes and returns polars frames, numpy
arrays and paths, so the assets only read the warehouse and call these.

- ``dataset``: labelled rows (one per market × snapshot) and the model's FEATURES.
- ``splits``: walk-forward folds by resolution time, grouped by event, purged.
- ``metrics``: Brier, log loss, skill scores, ECE/reliability, AUC, cluster bootstrap.
- ``train``: the calibrated XGBoost model, walk-forward evaluation, the final fit.
- ``artifact``: saving and loading a model (JSON only) with its card.
"""
