"""A replay server with a throwaway warehouse and Dagster instance, for tests and benches."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.replay.demo_world import save_world
from btc_tracker_pipeline.replay.faults import FaultSpec
from btc_tracker_pipeline.replay.server import ReplayServer
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.replay.world import World


@dataclass(frozen=True)
class ReplaySession:
    """What a session runs against: the server, the instance, the warehouse and models."""

    server: ReplayServer
    instance: dg.DagsterInstance
    warehouse: Path
    models: Path


@contextlib.contextmanager
def replay_session(
    world: World, folder: Path, faults: FaultSpec | None = None, port: int = 0
) -> Iterator[ReplaySession]:
    """Serve ``world`` on loopback ``port`` (0: any free one) with ``faults`` injected,
    if given, point the BTC_TRACKER_* variables at it and at ``folder`` (warehouse,
    models), and open a temporary Dagster instance in ``folder``. The environment is
    restored and the server stopped on exit. A simulated world is recorded beside the
    warehouse (``<stem>.world.json``), so price_model scores its fair values (oracle)."""
    folder = Path(folder)
    saved = dict(os.environ)
    with ReplayServer(world, port=port, faults=faults) as server:
        environment.point_at_replay(server.url)
        os.environ[environment.ENV_WAREHOUSE] = str(folder / "warehouse.duckdb")
        os.environ[environment.ENV_MODELS] = str(folder / "models")
        (folder / "dagster").mkdir(parents=True, exist_ok=True)
        if isinstance(world, SimulatedWorld):  # its fair values score the model (oracle)
            save_world(world, folder / "warehouse.duckdb")
        try:
            with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
                yield ReplaySession(
                    server, instance, folder / "warehouse.duckdb", folder / "models"
                )
        finally:
            os.environ.clear()
            os.environ.update(saved)
