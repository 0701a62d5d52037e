"""The demo's simulated world, recorded beside the warehouse so ``ui --replay`` serves it.

``btc-tracker demo`` writes ``<warehouse>.world.json`` (``data/warehouse.world.json`` by
default): the world's ``parameters()`` and identity. ``ui --replay`` rebuilds that world
following the wall clock: the same data for every instant the demo saw, extended forward,
so the schedule keeps collecting the world the warehouse already holds.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from btc_tracker_pipeline.replay.simulated import SimulatedWorld


def world_file(warehouse: Path) -> Path:
    """Where the demo records its world: ``<warehouse stem>.world.json`` beside it."""
    return warehouse.with_name(f"{warehouse.stem}.world.json")


def save_world(world: SimulatedWorld, warehouse: Path) -> Path:
    """Record ``world`` as the one the warehouse at ``warehouse`` was collected from."""
    path = world_file(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"identity": world.identity(), "parameters": world.parameters()}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def load_world(warehouse: Path, now: datetime | None = None) -> SimulatedWorld | None:
    """The world the demo recorded for ``warehouse``, at ``now`` (None: following the wall
    clock), or None if no demo recorded one.

    Raises ValueError if the record cannot be read or no longer names the same world.
    """
    path = world_file(warehouse)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        world = SimulatedWorld.from_parameters(record["parameters"], now=now)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a recorded demo world ({exc})") from exc
    if world.identity() != record.get("identity"):
        raise ValueError(f"{path}: the parameters no longer give world {record.get('identity')}")
    return world
