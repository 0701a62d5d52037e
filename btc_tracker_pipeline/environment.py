"""Process environment for the ``btc-tracker`` command: where Dagster and DuckDB live.

Only the CLI (and tests) call this; assets get their configuration from resources.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_GAMMA = "BTC_TRACKER_GAMMA_URL"
ENV_CLOB = "BTC_TRACKER_CLOB_URL"
ENV_BINANCE = "BTC_TRACKER_BINANCE_URL"
ENV_WAREHOUSE = "BTC_TRACKER_WAREHOUSE"
ENV_STORAGE = "BTC_TRACKER_DAGSTER_STORAGE"
ENV_MODELS = "BTC_TRACKER_MODELS"


def project_root() -> Path:
    """The repository root: the folder holding ``dagster.yaml`` and ``workspace.yaml``."""
    return Path(__file__).resolve().parents[1]


def warehouse_path() -> Path:
    """``BTC_TRACKER_WAREHOUSE`` or ``data/warehouse.duckdb`` under the project root."""
    value = os.environ.get(ENV_WAREHOUSE)
    return Path(value).expanduser().resolve() if value else project_root() / "data/warehouse.duckdb"


def models_path() -> Path:
    """``BTC_TRACKER_MODELS`` or ``data/models`` under the project root."""
    value = os.environ.get(ENV_MODELS)
    return Path(value).expanduser().resolve() if value else project_root() / "data/models"


def prepare_dagster_environment() -> None:
    """Point Dagster at the project's instance with absolute storage paths (idempotent).

    Sets DAGSTER_HOME to the project root (where dagster.yaml is),
    BTC_TRACKER_DAGSTER_STORAGE to ``data/dagster`` and BTC_TRACKER_WAREHOUSE to an
    absolute path, unless the user already set them.
    """
    root = project_root()
    os.environ.setdefault("DAGSTER_HOME", str(root))
    os.environ.setdefault(ENV_STORAGE, str(root / "data" / "dagster"))
    os.environ[ENV_WAREHOUSE] = str(warehouse_path())
    os.environ[ENV_MODELS] = str(models_path())
    Path(os.environ[ENV_STORAGE]).mkdir(parents=True, exist_ok=True)


def point_at_replay(base_url: str) -> None:
    """Send every API client to a replay server at ``base_url`` (http://127.0.0.1:PORT)."""
    os.environ[ENV_GAMMA] = f"{base_url}/gamma"
    os.environ[ENV_CLOB] = f"{base_url}/clob"
    os.environ[ENV_BINANCE] = f"{base_url}/binance"
