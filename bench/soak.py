"""Soak: one simulated day of 15-minute live ticks through the schedule path, with faults.

For every quarter hour of the day, the real ``collect_job_schedule`` is evaluated at its
tick time; its run request (the window that just ended) is run in-process, as the
daemon's run would, with the pipeline's and the simulated world's clock one minute past
the window end (the live path). A failed run is retried at once, up to
``run_retries.max_retries`` of dagster.yaml, as the daemon does (within the same minute
of the world, so a retried window's quotes are the ones the first try would have had).
The same day is run without faults first (same seed); then every window of every table
is compared.

    .venv/bin/python bench/soak.py                       # 96 windows, two fault mixes
    .venv/bin/python bench/soak.py --windows 16 --faults "429=0.05,5xx=0.05"

Prints one table (and writes it to bench/results/soak.md with the machine).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import yaml
from rich.console import Console
from rich.table import Table

# Slow answers must outlast the client's timeout; read when resources are built.
os.environ.setdefault("BTC_TRACKER_HTTP_TIMEOUT_S", "1")

from btc_tracker_pipeline.definitions import defs
from btc_tracker_pipeline.environment import project_root
from btc_tracker_pipeline.partitions import WINDOW
from btc_tracker_pipeline.replay import FaultSpec
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.replay.session import replay_session
from btc_tracker_pipeline.replay.simulated import SimulatedWorld
from btc_tracker_pipeline.runner import run_windows

# Transport faults at ~10 % (all recoverable by retries), then the same with broken
# pages and looping cursors added (recorded as partial/failed, retried by run retries).
DEFAULT_FAULTS = (
    "429=0.03,5xx=0.04,slow=0.01,malformed=0.02,retry_after=1,slow_s=2,seed=3",
    "429=0.03,5xx=0.04,slow=0.01,malformed=0.01,missing=0.005,cursor=0.005,"
    "retry_after=1,slow_s=2,seed=3",
)
TABLES = {
    "tracked_markets": "window_start",
    "market_snapshots": "window_start",
    "btc_spot_prices": "open_time",
    "btc_spot_windows": "window_start",
    "market_resolutions": "window_start",
    "market_indicators": "window_start",
}
TICK_DELAY = timedelta(minutes=1)


@dataclass
class Soak:
    """What one day of ticks did."""

    label: str
    windows: int = 0
    first_try: int = 0
    after_retry: int = 0
    failed: list[str] = field(default_factory=list)
    run_retries: int = 0
    http_retries: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    not_ok: int = 0
    rows: dict[str, dict[datetime, list[tuple]]] = field(default_factory=dict)
    wall_s: float = 0.0


def max_run_retries() -> int:
    """``run_retries.max_retries`` of the repository's dagster.yaml."""
    config = yaml.safe_load((project_root() / "dagster.yaml").read_text())
    return int(config["run_retries"]["max_retries"])


def window_rows(warehouse: Path) -> dict[str, dict[datetime, list[tuple]]]:
    """Every row of the window tables, grouped by the 15-minute window it belongs to."""
    grouped: dict[str, dict[datetime, list[tuple]]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        for table, column in TABLES.items():
            by_window: dict[datetime, list[tuple]] = defaultdict(list)
            cursor = conn.execute(
                f"SELECT time_bucket(INTERVAL 15 MINUTE, {column}) AS w, * FROM {table} "
                "ORDER BY ALL"
            )
            for row in cursor.fetchall():
                by_window[row[0]].append(row[1:])
            grouped[table] = dict(by_window)
    return grouped


def run_day(label: str, faults: FaultSpec | None, start: datetime, windows: int, seed: int) -> Soak:
    """Tick through ``windows`` quarter hours from ``start`` against a fresh world."""
    clock = [start]
    world = SimulatedWorld(seed=seed, days=2, clock=lambda: clock[0])
    loaded = defs()
    schedule = loaded.resolve_schedule_def("collect_job_schedule")
    repository = loaded.get_repository_def()
    retries = max_run_retries()
    soak = Soak(label, windows=windows)
    folder = Path(tempfile.mkdtemp(prefix="btc-soak-"))
    began = time.perf_counter()
    with replay_session(world, folder, faults) as session:
        for i in range(windows):
            tick = start + (i + 1) * WINDOW
            with dg.build_schedule_context(
                scheduled_execution_time=tick.replace(tzinfo=UTC),
                instance=session.instance,
                repository_def=repository,
            ) as context:
                [request] = schedule.evaluate_tick(context).run_requests
            clock[0] = tick + TICK_DELAY
            for attempt in range(retries + 1):
                with assets_clock(clock[0]):
                    [outcome] = run_windows(
                        [request.partition_key], instance=session.instance, log_level="CRITICAL"
                    )
                if outcome.success:
                    break
                soak.run_retries += attempt < retries
            if outcome.success and attempt == 0:
                soak.first_try += 1
            elif outcome.success:
                soak.after_retry += 1
            else:
                soak.failed.append(f"{request.partition_key}: {outcome.error}")
            print(f"{label}: {i + 1}/{windows} {request.partition_key} attempts {attempt + 1}")
        soak.faults = dict(session.server.stats()["faults"])
    soak.wall_s = time.perf_counter() - began
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        soak.http_retries = conn.execute("SELECT sum(retries) FROM collection_runs").fetchone()[0]
        # Rows of the final state of each asset and window (a retried run supersedes).
        soak.not_ok = conn.execute(
            "SELECT count(*) FROM (SELECT asset, window_start, arg_max(status, started_at) AS s "
            "FROM collection_runs GROUP BY ALL) WHERE s <> 'ok'"
        ).fetchone()[0]
    soak.rows = window_rows(folder / "warehouse.duckdb")
    return soak


def differing_windows(soak: Soak, clean: Soak) -> dict[datetime, list[str]]:
    """Windows where any table's rows differ from the fault-free day, with the tables."""
    differ: dict[datetime, list[str]] = defaultdict(list)
    for table, by_window in clean.rows.items():
        got = soak.rows.get(table, {})
        for window in set(by_window) | set(got):
            if by_window.get(window) != got.get(window):
                differ[window].append(table)
    return dict(differ)


def report(results: list[Soak], clean: Soak, command: str) -> str:
    """Print the table; return it as Markdown with the machine it ran on."""
    table = Table(title="soak: one simulated day of live ticks", show_lines=False)
    headers = [
        "faults",
        "windows",
        "ok 1st try",
        "ok after run retry",
        "failed",
        "faults injected",
        "HTTP retries",
        "run retries",
        "asset-windows not ok",
        "snapshots / window",
        "windows ≠ fault-free",
        "wall s",
    ]
    for h in headers:
        table.add_column(h, overflow="fold")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for soak in [clean, *results]:
        snapshots = sum(len(v) for v in soak.rows.get("market_snapshots", {}).values())
        cells = [
            soak.label,
            str(soak.windows),
            str(soak.first_try),
            str(soak.after_retry),
            str(len(soak.failed)),
            ", ".join(f"{k} {v}" for k, v in sorted(soak.faults.items()) if v) or "0",
            str(soak.http_retries),
            str(soak.run_retries),
            str(soak.not_ok),
            f"{snapshots / max(soak.windows, 1):.1f}",
            "—" if soak is clean else str(len(differing_windows(soak, clean))),
            f"{soak.wall_s:.0f}",
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console(width=200).print(table)
    notes = []
    for soak in results:
        notes += [f"- {soak.label}: failed {failure}" for failure in soak.failed]
        for window, tables in sorted(differing_windows(soak, clean).items()):
            notes.append(f"- {soak.label}: {window:%Y-%m-%d %H:%M} differs in {', '.join(tables)}")
    print("\n".join(notes))
    machine = (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
        f"`{command}`"
    )
    return "\n".join([*lines, "", *notes, "", f"Machine: {machine}", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=96, help="ticks (96 = one day)")
    parser.add_argument("--start", default="2026-03-01T00:00:00", help="first window (UTC)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated world")
    parser.add_argument(
        "--faults", action="append", help="fault spec (repeatable); default: two mixes"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "soak.md")
    args = parser.parse_args()

    logging.getLogger("btc_tracker_pipeline").setLevel(logging.ERROR)  # per-retry warnings
    start = datetime.fromisoformat(args.start)
    specs = args.faults or list(DEFAULT_FAULTS)
    clean = run_day("none", None, start, args.windows, args.seed)
    results = [run_day(s, FaultSpec.parse(s), start, args.windows, args.seed) for s in specs]
    command = "python bench/soak.py " + (
        " ".join(f'--faults "{s}"' for s in args.faults) if args.faults else ""
    )
    if args.windows != 96:
        command += f" --windows {args.windows}"
    markdown = report(results, clean, command.strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown)


if __name__ == "__main__":
    main()
