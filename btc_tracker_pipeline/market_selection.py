"""A collection for chosen markets (the CLI's ``--market-ids``): the Dagster run config
that asks for one, and reading it back.

The ids go to ``tracked_markets``' config; every asset of the run reads them from the
run config to add or replace only those markets' rows. No Dagster import: the CLI
builds the config before loading any definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def run_config(market_ids: Sequence[str]) -> dict[str, Any]:
    """The Dagster run config that restricts a collection to ``market_ids``."""
    return {"ops": {"tracked_markets": {"config": {"market_ids": list(market_ids)}}}}


def market_ids(config: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The market ids a run config (``run_config``) asks for; ``()`` for every market."""
    ops = (config or {}).get("ops") or {}
    tracked = (ops.get("tracked_markets") or {}).get("config") or {}
    return tuple(str(i) for i in tracked.get("market_ids") or ())
