"""One version of the pipeline, measured in this process against a replay server in
another (``bench/world_server.py``); run by ``bench/engine_speed.py`` with
``PYTHONPATH=<that version's tree>``, never by hand.

It imports only what every compared version has (``runner.run_windows``,
``runner.partition_keys``, ``partitions.key_of``, ``replay.clock.assets_clock`` and the
bench helpers of the tree it runs from), so one driver measures the old code and the new
code the same way. Its answer is one JSON file (``--out``), which always names the
``btc_tracker_pipeline`` package it imported, so the caller can check that the version
it meant is the one that ran.

* ``backfill``: ``run_windows`` over ``--days`` days of windows before ``--now`` (one
  Dagster run per day, as ``btc-tracker backfill``): wall and CPU seconds of this
  process, rows of every warehouse table, requests and the minimums the APIs allow;
  then, with ``--ticks``, live ticks on top of it.
* ``ticks``: a warm-up live tick on ``--start``, then ``--ticks`` measured ones on the
  windows after it (``bench/live_tick.py``), in a new warehouse unless ``--folder``
  already holds one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", message=".*currently in beta")
import dagster as dg  # noqa: E402
import duckdb  # noqa: E402
import httpx  # noqa: E402
from live_tick import Bench, TickResult, run_live_tick  # noqa: E402  (bench/ is on sys.path)
from replay_backend import ReplayBackend, ServerReport  # noqa: E402

import btc_tracker_pipeline  # noqa: E402
from btc_tracker_pipeline import environment  # noqa: E402
from btc_tracker_pipeline.partitions import WINDOW, key_of  # noqa: E402
from btc_tracker_pipeline.replay.shapes import epoch_s  # noqa: E402
from btc_tracker_pipeline.runner import partition_keys, run_windows  # noqa: E402


class RemoteBackend(ReplayBackend):
    """``world_server.py`` in another process, driven over its ``/__bench`` routes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = httpx.Client(timeout=600)
        self.cpu_s = 0.0  # the server process's CPU seconds at the last report

    def set_now(self, now: datetime) -> None:
        self._client.post(f"{self.url}/__bench/now", params={"t": epoch_s(now)}).raise_for_status()

    def reset(self) -> None:
        self._client.post(f"{self.url}/__bench/reset").raise_for_status()

    def report(self) -> ServerReport:
        response = self._client.get(f"{self.url}/__bench/report")
        response.raise_for_status()
        body = response.json()
        self.cpu_s = body["cpu_s"]
        return ServerReport(
            routes=body["routes"],
            busy_s=body["busy_s"],
            peak_in_flight=body["peak_in_flight"],
            peak_10s=body["peak_10s"],
        )

    def close(self) -> None:
        self._client.close()


def open_bench(url: str, folder: Path) -> tuple[Bench, Callable[[], None]]:
    """Point the pipeline at the server and at ``folder`` (warehouse, models, a temporary
    Dagster instance), as ``replay_backend.replay_bench`` does; returns the bench and
    its closer."""
    folder.mkdir(parents=True, exist_ok=True)
    environment.point_at_replay(url)
    os.environ[environment.ENV_WAREHOUSE] = str(folder / "warehouse.duckdb")
    os.environ[environment.ENV_MODELS] = str(folder / "models")
    (folder / "dagster").mkdir(exist_ok=True)
    manager = dg.instance_for_test(temp_dir=str(folder / "dagster"))
    instance = manager.__enter__()
    backend = RemoteBackend(url)

    def close() -> None:
        manager.__exit__(None, None, None)
        backend.close()

    return Bench(backend, instance, folder / "warehouse.duckdb"), close


def table_rows(warehouse: Path) -> dict[str, int]:
    """Rows of every table in the warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in names}


def minimums(warehouse: Path, keys: list[str]) -> dict[str, Any]:
    """The request minimums of ``request_minimums.py``, or why they could not be read."""
    try:
        from request_minimums import kline_minimums, token_minimums
    except ImportError as exc:  # a version without the names it reads
        return {"error": f"request_minimums: {exc}"}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        per_run, needed = token_minimums(conn)
    kline_run, kline_all = kline_minimums(keys)
    return {
        "prices_history_per_run": per_run,
        "prices_history_whole": needed,
        "klines_per_run": kline_run,
        "klines_whole": kline_all,
    }


def tick_dict(result: TickResult) -> dict[str, Any]:
    """A tick as JSON."""
    data = dataclasses.asdict(result)
    data["open_markets"] = result.open_markets
    return data


def run_ticks(bench: Bench, start: datetime, ticks: int) -> dict[str, Any]:
    """A warm-up tick on the window starting at ``start``, then ``ticks`` on the next."""
    results = [run_live_tick(bench, start + i * WINDOW) for i in range(ticks + 1)]
    assert isinstance(bench.backend, RemoteBackend)
    return {"warm": tick_dict(results[0]), "ticks": [tick_dict(r) for r in results[1:]]}


def backfill(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    """``args.days`` days of windows before ``args.now``, then ticks on top."""
    now = datetime.fromisoformat(args.now)
    keys = partition_keys(key_of(now - timedelta(days=args.days)), key_of(now - WINDOW))
    bench.backend.set_now(now)
    bench.backend.reset()
    started, cpu = time.perf_counter(), time.process_time()

    def progress(outcome: Any) -> None:
        state = "ok" if outcome.success else f"FAILED {outcome.error}"
        took = time.perf_counter() - started
        print(
            f"  {outcome.first_key} … {outcome.last_key}: {state} ({took:.0f} s)", file=sys.stderr
        )

    outcomes = run_windows(keys, instance=bench.instance, on_chunk=progress, log_level="ERROR")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    server = bench.backend.report()
    assert isinstance(bench.backend, RemoteBackend)
    answer: dict[str, Any] = {
        "windows": len(keys),
        "runs": len(outcomes),
        "runs_failed": sum(not o.success for o in outcomes),
        "errors": [o.error for o in outcomes if not o.success][:3],
        "wall_s": wall,
        "cpu_s": cpu,
        "server": dataclasses.asdict(server),
        "server_cpu_s": bench.backend.cpu_s,
        "rows": table_rows(bench.warehouse),
        "minimums": minimums(bench.warehouse, keys),
        "warehouse_mb": bench.warehouse.stat().st_size / 2**20,
    }
    if args.ticks:
        answer["history_ticks"] = run_ticks(bench, now, args.ticks)
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("backfill", "ticks"))
    parser.add_argument("--url", required=True, help="world_server.py's URL")
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON answer")
    parser.add_argument("--now", help="backfill: end of the last window (naive UTC)")
    parser.add_argument("--days", type=float, default=1)
    parser.add_argument("--start", help="ticks: start of the warm-up window (naive UTC)")
    parser.add_argument("--ticks", type=int, default=0)
    args = parser.parse_args()
    answer: dict[str, Any] = {"package": btc_tracker_pipeline.__file__}
    bench, close = open_bench(args.url, args.folder)
    try:
        if args.command == "backfill":
            answer |= backfill(args, bench)
        else:
            answer |= run_ticks(bench, datetime.fromisoformat(args.start), args.ticks)
    finally:
        close()
    args.out.write_text(json.dumps(answer, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
