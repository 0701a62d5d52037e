"""What Dagster itself costs per partition: storing the events of a day's backfill run.

A ranged run of ``collect_job`` over 96 windows stores, for each of its six assets and
each window, one ASSET_MATERIALIZATION_PLANNED event (when the run is created) and one
ASSET_MATERIALIZATION event (when the step ends): 1,152 events, plus ~45 for the run and
its steps. This script times storing such events in a fresh instance of the project's
kind (SQLite under a temporary folder, as ``dagster.yaml`` configures), with nothing else
running: that time is a floor under every day of backfill, whatever the assets do.

    .venv/bin/python bench/dagster_event_floor.py --events 576

Prints seconds per event and the floor per day of windows (no results file: the
numbers go into bench/results/engine_speed.md's notes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message=".*currently in beta")
import dagster as dg  # noqa: E402

ASSETS_PER_RUN = 6
WINDOWS_PER_DAY = 96


def time_events(count: int) -> float:
    """Seconds per stored materialization event in a fresh SQLite instance."""
    with tempfile.TemporaryDirectory() as folder, dg.instance_for_test(temp_dir=folder) as inst:
        key = dg.AssetKey("market_snapshots")
        inst.report_runless_asset_event(dg.AssetMaterialization(key, partition="warm-up"))
        start = time.perf_counter()
        for i in range(count):
            inst.report_runless_asset_event(
                dg.AssetMaterialization(key, partition=f"2026-02-28-{i:05d}")
            )
        return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=576, help="events to store")
    args = parser.parse_args()
    per_event = time_events(args.events)
    events_per_day = 2 * ASSETS_PER_RUN * WINDOWS_PER_DAY
    print(f"{per_event * 1000:.1f} ms per stored asset event ({args.events} events)")
    print(
        f"{events_per_day} per-window events per day of backfill: "
        f"{per_event * events_per_day:.1f} s per day of windows, "
        f"{WINDOWS_PER_DAY / (per_event * events_per_day):.1f} windows/s at most"
    )


if __name__ == "__main__":
    main()
