"""A simulated world on the replay server, alone in its own process, for
``bench/engine_speed.py``.

The pipeline versions compared there run in other processes, so the fake's CPU is never
the pipeline's, and each version talks to a server built from the same tree and the same
world parameters (one ``World.identity``). Prints one JSON line on stdout (``url``,
``world``, ``pid``), then serves until its standard input closes or it is terminated.

Besides the replay routes it answers three control routes, never counted:

* ``POST /__bench/now?t=EPOCH_S`` moves the world's clock (``--clock fixed`` only);
* ``POST /__bench/reset`` zeroes the request counters, the meter and the CPU mark;
* ``GET /__bench/report`` returns routes, busy seconds, peak in flight, peak requests
  per 10 s on the rate-limited routes and the CPU seconds this process spent since
  the last reset (``cpu_s``) and since it started (``cpu_total_s``).

    PYTHONPATH=. .venv/bin/python bench/world_server.py --days 2 --now 2026-03-01T00:00:00
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from replay_backend import RATE_LIMITED, ServerMeter  # bench/ is on sys.path

from btc_tracker_pipeline.replay.server import ReplayServer, json_response
from btc_tracker_pipeline.replay.shapes import from_epoch_s
from btc_tracker_pipeline.replay.simulated import SimulatedWorld


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, default=2, help="simulated history")
    parser.add_argument("--strikes-per-ladder", type=int, default=11)
    parser.add_argument("--updown-lead-h", type=float, default=24.0)
    parser.add_argument(
        "--now", default=None, help="world clock (naive UTC ISO); default: the wall clock"
    )
    args = parser.parse_args()
    world_args: dict[str, Any] = {
        "seed": args.seed,
        "days": args.days,
        "strikes_per_ladder": args.strikes_per_ladder,
        "updown_lead": timedelta(hours=args.updown_lead_h),
    }
    fixed = args.now is not None
    state = {"now": datetime.fromisoformat(args.now) if fixed else None}
    if fixed:
        world = SimulatedWorld(**world_args, clock=lambda: state["now"])
    else:  # follows the wall clock, like the daemon's ticks
        world = SimulatedWorld(**world_args)
    server = ReplayServer(world)
    meter = ServerMeter(server)
    metered = server.handle
    cpu_mark = [time.process_time()]

    def handle(method: str, raw_path: str) -> Any:
        split = urlsplit(raw_path)
        if not split.path.startswith("/__bench/"):
            return metered(method, raw_path)
        command = split.path.rstrip("/").rsplit("/", 1)[-1]
        if command == "now" and fixed:
            state["now"] = from_epoch_s(float(parse_qs(split.query)["t"][0]))
            return json_response(200, {"now": state["now"].isoformat()})
        if command == "reset":
            server.reset_stats()
            meter.reset()
            cpu_mark[0] = time.process_time()
            return json_response(200, {})
        if command == "report":
            return json_response(
                200,
                {
                    "routes": server.stats()["routes"],
                    "busy_s": meter.busy_s,
                    "peak_in_flight": meter.peak_in_flight,
                    "peak_10s": {p: meter.peak_per_10s(p) for p in RATE_LIMITED},
                    "cpu_s": time.process_time() - cpu_mark[0],
                    "cpu_total_s": time.process_time(),
                },
            )
        return json_response(404, {"error": f"unknown bench control {split.path}"})

    server.handle = handle  # type: ignore[method-assign]
    server.start()
    now = state["now"] or datetime.now(UTC).replace(tzinfo=None)
    print(
        json.dumps(
            {"url": server.url, "world": server.world_id, "pid": os.getpid(), "now": str(now)}
        ),
        flush=True,
    )
    stopped = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stopped.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
