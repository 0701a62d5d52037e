"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The recorded API responses: ``$BTC_TRACKER_FIXTURES``, else ``shared/fixtures``
    beside the repository (CI clones the repo next to a read-only ``shared/``)."""
    configured = os.environ.get("BTC_TRACKER_FIXTURES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
