"""The replay server behind a benchmark, in this process or in a child process.

``thread`` is ``replay_session``'s server (a thread of this process): what the tests
use, but the fake's own work (filtering and paging every Gamma listing in Python)
competes for the GIL with the pipeline it serves. ``process`` serves the same
simulated world from a child process, as a real API would be elsewhere. Both count
requests per route and measure the server: time spent answering (summed over server
threads), the most requests in flight at once, request start times for rate limits.
Not run directly.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.replay.server import ReplayServer
from btc_tracker_pipeline.replay.shapes import epoch_s, from_epoch_s
from btc_tracker_pipeline.replay.simulated import SimulatedWorld

ServerMode = Literal["thread", "process"]


class ServerMeter:
    """Wraps a replay server's ``handle``: request start times per path, time spent
    answering (summed over server threads) and the most requests in flight at once."""

    def __init__(self, server: ReplayServer) -> None:
        self._lock = threading.Lock()
        self._inner = server.handle
        self.reset()
        server.handle = self._handle  # type: ignore[method-assign]

    def reset(self) -> None:
        """Forget everything measured so far."""
        with self._lock:
            self.starts: list[tuple[float, str]] = []
            self.busy_s = 0.0
            self.in_flight = 0
            self.peak_in_flight = 0

    def _handle(self, method: str, raw_path: str) -> Any:
        started = time.perf_counter()
        with self._lock:
            self.starts.append((started, raw_path.split("?", 1)[0]))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return self._inner(method, raw_path)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.busy_s += time.perf_counter() - started

    def peak_per_10s(self, prefix: str) -> int:
        """Most requests whose path starts with ``prefix`` begun within any 10 s."""
        times = sorted(t for t, path in self.starts if path.startswith(prefix))
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= 10.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


@dataclass(frozen=True)
class ServerReport:
    """What the server saw since its last reset."""

    routes: dict[str, int]
    busy_s: float
    peak_in_flight: int
    peak_10s: dict[str, int]


# Paths whose requests are counted against a documented limit (docs/apis.md §1.1, §2).
RATE_LIMITED = {"/gamma/markets": 300, "/clob/prices-history": 1000}


def _report(server: ReplayServer, meter: ServerMeter) -> ServerReport:
    return ServerReport(
        routes=server.stats()["routes"],
        busy_s=meter.busy_s,
        peak_in_flight=meter.peak_in_flight,
        peak_10s={prefix: meter.peak_per_10s(prefix) for prefix in RATE_LIMITED},
    )


class ReplayBackend:
    """A running replay server over a simulated world with a settable clock."""

    url: str

    def set_now(self, now: datetime) -> None:
        """Move the world's clock (naive UTC)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Zero the request counters and the meter."""
        raise NotImplementedError

    def report(self) -> ServerReport:
        """Counters and meter since the last reset."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the server."""
        raise NotImplementedError


class _ThreadBackend(ReplayBackend):
    def __init__(self, world_args: dict[str, Any], now: datetime) -> None:
        self._now = now
        self.world = SimulatedWorld(**world_args, clock=lambda: self._now)
        self.server = ReplayServer(self.world).start()
        self.meter = ServerMeter(self.server)
        self.url = self.server.url

    def set_now(self, now: datetime) -> None:
        self._now = now

    def reset(self) -> None:
        self.server.reset_stats()
        self.meter.reset()

    def report(self) -> ServerReport:
        return _report(self.server, self.meter)

    def close(self) -> None:
        self.server.stop()


def _serve(world_args: dict[str, Any], clock: Synchronized, conn: Connection) -> None:
    """Child process: serve the world until told to stop; answer reset/report."""
    world = SimulatedWorld(**world_args, clock=lambda: from_epoch_s(clock.value))
    with ReplayServer(world) as server:
        meter = ServerMeter(server)
        conn.send(server.url)
        while (command := conn.recv()) != "stop":
            if command == "reset":
                server.reset_stats()
                meter.reset()
                conn.send(None)
            elif command == "report":
                conn.send(_report(server, meter))


class _ProcessBackend(ReplayBackend):
    def __init__(self, world_args: dict[str, Any], now: datetime) -> None:
        context = mp.get_context("spawn")
        self._clock = context.Value("d", epoch_s(now))
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(world_args, self._clock, child), daemon=True
        )
        self._process.start()
        self.url = self._conn.recv()

    def set_now(self, now: datetime) -> None:
        self._clock.value = epoch_s(now)

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def report(self) -> ServerReport:
        self._conn.send("report")
        return self._conn.recv()

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=30)


@dataclass(frozen=True)
class Bench:
    """What a benchmark runs against: the server, a Dagster instance, the warehouse."""

    backend: ReplayBackend
    instance: dg.DagsterInstance
    warehouse: Path


@contextlib.contextmanager
def replay_bench(
    mode: ServerMode,
    folder: Path,
    now: datetime,
    *,
    seed: int = 7,
    days: float = 2,
    strikes_per_ladder: int = 11,
    updown_lead: timedelta = timedelta(days=1),
    bias: float = 0.0,
    updown_5m: bool = False,
    lag_s: float = 0.0,
) -> Iterator[Bench]:
    """Serve a simulated world (clock at ``now``) and point the pipeline at it, like
    ``replay_session``: BTC_TRACKER_* variables, a warehouse and a temporary Dagster
    instance in ``folder``. Everything is restored and stopped on exit."""
    world_args = {
        "seed": seed,
        "days": days,
        "strikes_per_ladder": strikes_per_ladder,
        "updown_lead": updown_lead,
        "bias": bias,
        **({"updown_5m": True} if updown_5m else {}),
        **({"lag_s": lag_s} if lag_s else {}),
    }
    backend = (_ThreadBackend if mode == "thread" else _ProcessBackend)(world_args, now)
    saved = dict(os.environ)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        environment.point_at_replay(backend.url)
        os.environ[environment.ENV_WAREHOUSE] = str(folder / "warehouse.duckdb")
        os.environ[environment.ENV_MODELS] = str(folder / "models")
        (folder / "dagster").mkdir(exist_ok=True)
        with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
            yield Bench(backend, instance, folder / "warehouse.duckdb")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        backend.close()
