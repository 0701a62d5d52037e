"""The code location: everything under ``defs/`` (docs/dagster.md §1.4)."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Load every asset, resource, job and schedule from the defs folder."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
