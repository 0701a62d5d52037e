"""Regenerate ``docs/images/path_15m.png``: the README's minute path of a 15-minute market.

Offline and deterministic: the seed-7 simulated world (up/down markets listed 3 h ahead,
prices following their fair value 90 s late) is served on loopback, three windows
(2026-02-28 20:00–20:45 UTC) are collected through Dagster into a temporary warehouse,
and the real command draws the 15-minute up/down market that opens at 20:15::

    btc-tracker history <id> --plot docs/images/path_15m.png

Run from the repository root: ``python docs/images/make_path_plot.py [OUT.png]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import partition_keys, run_windows

OUT = Path(__file__).with_name("path_15m.png")
OPENS = datetime(2026, 2, 28, 20, 15)  # the market drawn: its window is 20:15–20:30 UTC


def main(out: Path = OUT) -> None:
    world = SimulatedWorld(
        seed=7,
        days=2,
        now=datetime(2026, 3, 1),
        updown_lead=timedelta(hours=3),
        lag_s=90,
    )
    with tempfile.TemporaryDirectory() as tmp:
        # 20:00 holds the candle of the open (20:14–20:15), 20:30 the resolution.
        with replay_session(world, Path(tmp)) as session:
            outcomes = run_windows(
                partition_keys("2026-02-28-20:00", "2026-02-28-20:30"), instance=session.instance
            )
            assert all(o.success for o in outcomes), outcomes
            warehouse = session.warehouse
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            (market_id,) = conn.execute(
                "SELECT market_id FROM market_paths "
                "WHERE family = 'updown_15m' AND offset_min = 0 AND minute_ts = ?",
                [OPENS],
            ).fetchone()
        env = {**os.environ, environment.ENV_WAREHOUSE: str(warehouse), "COLUMNS": "100"}
        command = ["history", market_id, "--plot", str(out.resolve())]
        print("$ btc-tracker " + " ".join(command), flush=True)
        subprocess.run(
            [sys.executable, "-m", "btc_tracker_pipeline.cli", *command], env=env, check=True
        )
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
