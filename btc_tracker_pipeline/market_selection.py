"""A collection for chosen markets (the CLI's ``--market-ids``, the schedule's
``BTC_TRACKER_MARKET_IDS``) or chosen families (``BTC_TRACKER_FAMILIES``): the Dagster run
config that asks for one, and reading it back.

The ids go to ``tracked_markets``' config; every asset of the run reads them from the
run config to add or replace only those markets' rows. No Dagster import: the CLI
builds the config before loading any definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def run_config(market_ids: Sequence[str], families: Sequence[str] = ()) -> dict[str, Any]:
    """The Dagster run config that restricts a collection to ``market_ids``, or to the
    markets of ``families`` (each window's markets of those families)."""
    selection: dict[str, list[str]] = {"market_ids": list(market_ids)}
    if families:
        selection["families"] = list(families)
    return {"ops": {"tracked_markets": {"config": selection}}}


def _selection(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    ops = (config or {}).get("ops") or {}
    return (ops.get("tracked_markets") or {}).get("config") or {}


def market_ids(config: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The market ids a run config (``run_config``) asks for; ``()`` for every market."""
    return tuple(str(i) for i in _selection(config).get("market_ids") or ())


def families(config: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The market families a run config asks for; ``()`` for every family."""
    return tuple(str(f) for f in _selection(config).get("families") or ())
