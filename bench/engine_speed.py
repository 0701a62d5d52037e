"""The window engine against the old code, side by side in one run on the same world.

Compares ``--base`` (default d9a4aad, checked out with ``git worktree add --detach``
under a temporary folder and removed at the end) with ``--head`` (default: the tree this
script runs from; a path is used as it is, a ref gets its own worktree). Every
measurement runs each version in its own subprocess of this venv's Python with
``PYTHONPATH=<that version's tree>`` (a one-line import print checks that each really
imports its own tree's code, and every answer names the package it imported), driven by
this tree's ``bench/engine_probe.py``. The replay server is ``bench/world_server.py``,
alone in a third process built from ``--world`` (default: the head's tree), so the
fake's CPU is never the pipeline's; both versions get a server with the same world
parameters (the same ``World.identity``, listed in the notes).

* backfill: ``--days`` days of windows (one Dagster run per day, ``run_windows``): wall
  s, windows/s, the pipeline process's CPU s, rows of every table for both versions,
  requests against the minimums of ``request_minimums.py``; then the flat-cost check:
  a live tick on that warehouse against one on an empty warehouse (``--ticks``).
* live tick in process at ``--markets`` open markets (``tick_latency.py``'s worlds): a
  warm-up tick, then the median of ``--ticks``.
* ``btc-tracker collect`` as a whole process at the same sizes: a warm-up, then the
  median of ``--collect-runs`` fresh processes, each collecting one live window.
* ``--daemon``: ``dagster dev`` on a temporary instance and a world following the wall
  clock at 1,000 markets; the schedule's natural quarter-hour tick to the run's
  RUN_SUCCESS (waits for the next quarter hour, per version: slow).
* ``--days-only N``: an N-day backfill of the head only, and a year extrapolated.

Full run, on a quiet machine (about 1 h if the head meets its targets, 2 h if it runs at
d9a4aad's speed: the old 30-day backfill alone is ~15-20 min, ``--daemon`` waits up to
15 min per version for a quarter hour):

    nohup .venv/bin/python bench/engine_speed.py --days 30 --days-only 90 --daemon \\
        > /tmp/engine_speed.log 2>&1 &

``--head PATH_OR_REF`` measures another tree (a worktree of the engine branch, or a ref);
``--world base`` serves the old tree's world instead of the head's; ``--own-scripts``
drives both versions with their own backfill_30d.py and tick_latency.py. Development
size: ``--quick`` (1 day, 10 markets, 1 tick, 1 collect: ~3.5 min; with ``--daemon``
and ``--days 0 --markets``, the daemon alone at 10 markets: ~30 min, mostly waiting).
Writes bench/results/engine_speed.md (``--json PATH``: every measurement as JSON too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from bench_report import ResultTable, write_results  # bench/ is on sys.path
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(1, str(ROOT))  # the e2e helpers (process groups, GraphQL) of this tree
from btc_tracker_pipeline_tests.e2e.helpers import (  # noqa: E402
    FINISHED_RUN,
    LOCATION,
    REPOSITORY,
    DagsterGraphQL,
    free_port,
    start_process_group,
    stop_process_group,
    tail,
    wait_for,
)

WINDOW = timedelta(minutes=15)
TICK_DELAY = timedelta(minutes=1)  # live_tick.py: the clock a minute past the window end
WINDOWS_PER_YEAR = 365 * 96
DEFAULT_BASE = "d9a4aad"
SCHEDULE = "collect_job_schedule"
# tick_latency.py's world sizes (live_tick.SIZES): strikes per ladder, up/down lead (h).
SIZES = {10: (1, 1.0), 100: (2, 18.0), 1000: (220, 24.0), 5000: (1220, 24.0)}
ENV_DROPPED = ("PYTHONPATH", "DAGSTER_HOME")
log = Console(stderr=True, highlight=False)


# --- versions -----------------------------------------------------------------------


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class Version:
    """One side of the comparison: a tree of the pipeline and where it came from."""

    label: str  # "old" or "new"
    spec: str
    tree: Path
    commit: str
    worktree: bool  # made by this run (removed at the end)
    dirty: bool = False
    probe_error: str | None = None  # why engine_probe.py cannot drive it (then: own scripts)

    @property
    def name(self) -> str:
        return f"{self.commit[:7]}{'+' if self.dirty else ''}"


def resolve(spec: str, label: str, tmp: Path) -> Version:
    """A path is used as it is; a ref gets a detached worktree under ``tmp``."""
    path = Path(spec)
    if path.is_dir():
        tree = path.resolve()
        commit = git("rev-parse", "HEAD", cwd=tree)
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", cwd=tree))
        return Version(label, spec, tree, commit, False, dirty)
    commit = git("rev-parse", "--verify", f"{spec}^{{commit}}")
    tree = tmp / f"tree-{label}"
    git("worktree", "add", "--detach", str(tree), commit)
    return Version(label, spec, tree, commit, True)


def remove_worktree(version: Version) -> None:
    if version.worktree:
        with contextlib.suppress(subprocess.CalledProcessError):
            git("worktree", "remove", "--force", str(version.tree))
        git("worktree", "prune")


def version_env(tree: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without any BTC_TRACKER_*, DAGSTER_HOME or PYTHONPATH, then
    ``PYTHONPATH=tree`` (it wins over the venv's editable install) and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROPPED and not k.startswith("BTC_")}
    env["PYTHONPATH"] = str(tree)
    return env | (extra or {})


def check_import(version: Version) -> str:
    """The package file a subprocess of ``version`` imports; it must be in its tree."""
    out = subprocess.run(
        [sys.executable, "-c", "import btc_tracker_pipeline; print(btc_tracker_pipeline.__file__)"],
        cwd=version.tree,
        env=version_env(version.tree),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    check_package(version, out)
    return out


def check_package(version: Version, package: str) -> None:
    if not Path(package).resolve().is_relative_to(version.tree):
        raise SystemExit(f"{version.label} imported {package}, not its tree {version.tree}")


def check_probe(version: Version) -> None:
    """Can this tree's ``engine_probe.py`` (its imports: runner.run_windows,
    partition_keys, replay.clock, live_tick's names …) drive ``version``? If not, its
    backfill and ticks are measured with its own bench scripts (``own_backfill``,
    ``own_ticks``)."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "engine_probe.py"), "--help"],
        cwd=version.tree,
        env=version_env(version.tree),
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        version.probe_error = lines[-1] if lines else f"exit {done.returncode}"


# --- the machine's load ---------------------------------------------------------------


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class Load:
    """How busy the whole machine was during one measurement."""

    what: str
    wall_s: float = 0.0
    busy_cores: float = 0.0
    load1: float = 0.0
    ours_cpu_s: float = 0.0  # CPU of this bench's processes: its waited children + server


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def machine_load(what: str, loads: list[Load]) -> Iterator[Load]:
    load = Load(what, load1=os.getloadavg()[0])
    busy, total = _cpu_jiffies()
    children = _children_cpu_s()
    started = time.perf_counter()
    try:
        yield load
    finally:
        busy2, total2 = _cpu_jiffies()
        load.wall_s = time.perf_counter() - started
        load.ours_cpu_s += _children_cpu_s() - children
        cores = os.cpu_count() or 1
        load.busy_cores = (busy2 - busy) / max(total2 - total, 1) * cores
        loads.append(load)


# --- the replay server --------------------------------------------------------------


@dataclass
class Server:
    """``world_server.py`` in its own process."""

    url: str
    world: str
    process: subprocess.Popen
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=600))

    def set_now(self, now: datetime) -> None:
        stamp = now.replace(tzinfo=UTC).timestamp()
        self.client.post(f"{self.url}/__bench/now", params={"t": stamp}).raise_for_status()

    def warm(self) -> None:
        """Build the world's current minute (the fake's cost, not the pipeline's)."""
        self.client.get(f"{self.url}/gamma/markets/keyset", params={"limit": 1})

    def reset(self) -> None:
        self.client.post(f"{self.url}/__bench/reset").raise_for_status()

    def report(self) -> dict[str, Any]:
        response = self.client.get(f"{self.url}/__bench/report")
        response.raise_for_status()
        return response.json()

    def cpu_s(self) -> float:
        """CPU seconds the server process has spent since it started."""
        return self.report()["cpu_total_s"]


@contextlib.contextmanager
def world_server(
    tree: Path,
    folder: Path,
    *,
    days: float,
    seed: int,
    now: datetime | None,
    markets: int | None = None,
) -> Iterator[Server]:
    """Serve a simulated world from ``tree`` in a child process (clock fixed at ``now``
    and moved by the probe, or following the wall clock when ``now`` is None)."""
    cmd = [sys.executable, str(BENCH / "world_server.py"), "--seed", str(seed)]
    cmd += ["--days", str(days)]
    if markets is not None:
        strikes, lead_h = SIZES[markets]
        cmd += ["--strikes-per-ladder", str(strikes), "--updown-lead-h", str(lead_h)]
    if now is not None:
        cmd += ["--now", now.isoformat()]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "world_server.log").open("wb") as err:
        process = subprocess.Popen(
            cmd,
            cwd=folder,
            env=version_env(tree),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        line = process.stdout.readline() if process.stdout else b""
        if not line:
            process.wait(timeout=30)
            raise RuntimeError(f"world server exited: {tail(folder / 'world_server.log')}")
        info = json.loads(line)
        server = Server(info["url"], info["world"], process)
        yield server
    finally:
        with contextlib.suppress(OSError):
            if process.stdin:
                process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=30)


# --- one version's measurements -------------------------------------------------------


def probe(version: Version, command: str, server: Server, folder: Path, **options: Any) -> dict:
    """Run ``engine_probe.py command`` for ``version``; its JSON answer."""
    out = folder.with_suffix(".json")
    cmd = [sys.executable, str(BENCH / "engine_probe.py"), command, "--url", server.url]
    cmd += ["--folder", str(folder), "--out", str(out)]
    for name, value in options.items():
        cmd += [f"--{name}", str(value)]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=version.tree, env=version_env(version.tree), check=False)
    if done.returncode:
        raise RuntimeError(f"engine_probe.py {command} exited {done.returncode}")
    answer = json.loads(out.read_text(encoding="utf-8"))
    check_package(version, answer["package"])
    answer["process_s"] = time.perf_counter() - started
    answer["world"] = server.world
    return answer


def md_tables(text: str) -> list[list[dict[str, str]]]:
    """The Markdown tables of a results file, each a list of {header: cell}."""
    tables: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            headers = [h.strip() for h in line.strip("|").split(" | ")]
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip("|").split(" | ")]
                rows.append(dict(zip(headers, cells, strict=False)))
            tables.append(rows)
    return tables


def number(cell: str | None) -> float | None:
    try:
        return float(cell.replace(",", "")) if cell else None
    except ValueError:
        return None


def own_script(version: Version, tmp: Path, script: str, result: str, *options: str) -> str:
    """Run ``version``'s own ``bench/<script>`` from a copy of its bench folder (so its
    results file lands in the copy); the results file's text."""
    bench = tmp / f"bench-{version.label}"
    if not bench.exists():
        shutil.copytree(version.tree / "bench", bench, ignore=shutil.ignore_patterns("results"))
    cmd = [sys.executable, str(bench / script), *options]
    with (bench / f"{result}.log").open("ab") as out:
        done = subprocess.run(
            cmd, cwd=version.tree, env=version_env(version.tree), stdout=out, check=False
        )
    path = bench / "results" / f"{result}.md"
    if not path.exists():
        raise RuntimeError(f"{version.label}'s own {script} exited {done.returncode}, no {path}")
    return path.read_text(encoding="utf-8")


def own_backfill(version: Version, tmp: Path, args: argparse.Namespace, days: int) -> dict:
    """``version``'s own backfill_30d.py (its replay server in a child process of its own
    world), read back from its results file in the shape of engine_probe's answer."""
    ticks = str(args.ticks if days == args.days else 0)
    text = own_script(
        version, tmp, "backfill_30d.py", "backfill_30d", "--days", str(days), "--server",
        "process", "--ticks", ticks, "--now", args.now.isoformat(), "--seed", str(args.seed),
    )  # fmt: skip
    tables = md_tables(text)
    cells = {r["measure"]: r for r in tables[0]}

    def value(name: str, column: str = "value") -> float | None:
        return number(cells.get(name, {}).get(column))

    answer: dict[str, Any] = {
        "package": str(version.tree / "btc_tracker_pipeline" / "__init__.py"),
        "windows": days * 96,
        "runs_failed": int(value("runs failed") or 0),
        "wall_s": value("wall time (s)"),
        "cpu_s": value("CPU time of this process (s)"),
        "server_cpu_s": None,
        "warehouse_mb": value("warehouse size (MB)"),
        "rows": {
            name[5:]: int(number(r["value"]) or 0)
            for name, r in cells.items()
            if name[:5] == "rows "
        },
        "server": {
            "routes": {
                "/clob/prices-history": int(value("CLOB prices-history requests") or 0),
                "/binance/api/v3/klines": int(value("Binance klines requests") or 0),
                "/gamma/markets/keyset": int(value("Gamma keyset pages") or 0),
            }
        },
        "minimums": {
            "prices_history_whole": value("CLOB prices-history requests", "minimum whole range"),
            "klines_whole": value("Binance klines requests", "minimum whole range"),
        },
        "world": f"its own process server (seed {args.seed})",
    }
    if len(tables) > 1:
        for row in tables[1]:
            side = "empty_ticks" if row["warehouse"] == "empty warehouse" else "history_ticks"
            if row["warehouse"] == "ratio":
                continue
            tick = {
                "wall_s": number(row["tick wall s"]),
                "cpu_s": number(row["tick CPU s"]),
                "open_markets": number(row["open markets"]),
            }
            answer[side] = {"ticks": [tick]}
    return answer


def own_ticks(version: Version, tmp: Path, markets: int, args: argparse.Namespace) -> dict:
    """``version``'s own tick_latency.py at one size (process server), as engine_probe's
    ``ticks`` answer (the median tick only)."""
    text = own_script(
        version, tmp, "tick_latency.py", "tick_latency", "--markets", str(markets),
        "--ticks", str(args.ticks), "--server", "process", "--seed", str(args.seed),
    )  # fmt: skip
    (row,) = md_tables(text)[0]
    tick = {
        "wall_s": number(row["tick wall s"]),
        "cpu_s": number(row["tick CPU s"]),
        "load_s": None,
        "open_markets": number(row["open markets"]),
    }
    return {
        "warm": {"wall_s": number(row["first tick s"])},
        "ticks": [tick],
        "world": f"its own process server (seed {args.seed})",
    }


def measure_backfill(
    version: Version, world_tree: Path, tmp: Path, args: argparse.Namespace, loads: list[Load]
) -> dict:
    """Backfill ``args.days`` days, ticks on top, ticks on an empty warehouse."""
    if version.probe_error:
        with machine_load(f"backfill {args.days} d, {version.label} (own script)", loads):
            return own_backfill(version, tmp, args, args.days)
    folder = tmp / f"backfill-{args.days}d-{version.label}"
    with world_server(
        world_tree, folder / "server", days=args.days + 1, seed=args.seed, now=args.now
    ) as server:
        with machine_load(f"backfill {args.days} d, {version.label}", loads) as load:
            answer = probe(
                version,
                "backfill",
                server,
                folder / "history",
                now=args.now.isoformat(),
                days=args.days,
                ticks=args.ticks,
            )
            load.ours_cpu_s += answer["server_cpu_s"]
        if args.ticks:
            answer["empty_ticks"] = probe(
                version,
                "ticks",
                server,
                folder / "empty",
                start=args.now.isoformat(),
                ticks=args.ticks,
            )
    answer["warehouse"] = str(folder / "history" / "warehouse.duckdb")  # compared, deleted
    return answer


def measure_only_new(
    version: Version, world_tree: Path, tmp: Path, args: argparse.Namespace, loads: list[Load]
) -> dict:
    """The ``--days-only`` backfill (no ticks)."""
    if version.probe_error:
        with machine_load(f"backfill {args.days_only} d, {version.label} (own script)", loads):
            return own_backfill(version, tmp, args, args.days_only)
    folder = tmp / f"backfill-{args.days_only}d-{version.label}"
    with (
        world_server(
            world_tree, folder / "server", days=args.days_only + 1, seed=args.seed, now=args.now
        ) as server,
        machine_load(f"backfill {args.days_only} d, {version.label}", loads) as load,
    ):
        answer = probe(
            version,
            "backfill",
            server,
            folder / "history",
            now=args.now.isoformat(),
            days=args.days_only,
            ticks=0,
        )
        load.ours_cpu_s += answer["server_cpu_s"]
    shutil.rmtree(folder, ignore_errors=True)
    return answer


COLLECT = """\
import sys
from datetime import datetime
import btc_tracker_pipeline
print("package:", btc_tracker_pipeline.__file__, flush=True)
from btc_tracker_pipeline.replay.clock import assets_clock
from btc_tracker_pipeline.cli import main
now, key = datetime.fromisoformat(sys.argv[1]), sys.argv[2]
sys.argv = ["btc-tracker", "collect", "--partition", key]
with assets_clock(now):
    main()
"""


def run_collect(
    version: Version, server: Server, folder: Path, window_start: datetime
) -> dict[str, Any]:
    """One ``btc-tracker collect`` process for the window starting at ``window_start``,
    the world and the assets' clock a minute past its end; wall s from spawn to exit and
    the process's CPU s (its rusage)."""
    now = window_start + WINDOW + TICK_DELAY
    key = window_start.strftime("%Y-%m-%d-%H:%M")
    home = folder / "home"
    if not home.exists():
        home.mkdir(parents=True)
        shutil.copy(version.tree / "dagster.yaml", home / "dagster.yaml")
    env = version_env(
        version.tree,
        {
            "DAGSTER_HOME": str(home),
            "BTC_TRACKER_DAGSTER_STORAGE": str(folder / "dagster"),
            "BTC_TRACKER_WAREHOUSE": str(folder / "warehouse.duckdb"),
            "BTC_TRACKER_MODELS": str(folder / "models"),
            "BTC_TRACKER_GAMMA_URL": f"{server.url}/gamma",
            "BTC_TRACKER_CLOB_URL": f"{server.url}/clob",
            "BTC_TRACKER_BINANCE_URL": f"{server.url}/binance",
        },
    )
    server.set_now(now)
    server.warm()
    server.reset()
    with (folder / f"collect-{key.replace(':', '')}.log").open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", COLLECT, now.isoformat(), key],
            cwd=version.tree,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = Path(out.name)
    if process.returncode:
        raise RuntimeError(f"collect {key} exited {process.returncode}: {tail(output)}")
    first = output.read_text(errors="replace").splitlines()[0]
    check_package(version, first.removeprefix("package: "))
    report = server.report()
    import duckdb

    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        (markets,) = conn.execute(
            "SELECT count(*) FROM tracked_markets WHERE window_start = ?", [window_start]
        ).fetchone()
    return {
        "key": key,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "open_markets": markets,
        "requests": sum(report["routes"].values()),
        "server_cpu_s": report["cpu_s"],
    }


def measure_size(
    version: Version,
    world_tree: Path,
    tmp: Path,
    markets: int,
    args: argparse.Namespace,
    loads: list[Load],
) -> dict:
    """Live ticks in process, then ``btc-tracker collect`` processes, on one world."""
    folder = tmp / f"live-{markets}-{version.label}"
    first_start = args.now - WINDOW - args.ticks * WINDOW
    answer: dict[str, Any] = {}
    with world_server(
        world_tree,
        folder / "server",
        days=2,
        seed=args.seed,
        now=first_start + WINDOW,
        markets=markets,
    ) as server:
        with machine_load(f"ticks at {markets}, {version.label}", loads) as load:
            server_cpu = server.cpu_s()
            if version.probe_error:
                answer["ticks"] = own_ticks(version, tmp, markets, args)
            else:
                answer["ticks"] = probe(
                    version,
                    "ticks",
                    server,
                    folder / "ticks",
                    start=first_start.isoformat(),
                    ticks=args.ticks,
                )
            load.ours_cpu_s += server.cpu_s() - server_cpu
        runs = []
        with machine_load(f"collect at {markets}, {version.label}", loads) as load:
            server_cpu = server.cpu_s()
            for i in range(args.collect_runs + 1):
                runs.append(
                    run_collect(version, server, folder / "collect", first_start + i * WINDOW)
                )
                log.print(
                    f"  collect {runs[-1]['key']}: {runs[-1]['wall_s']:.2f} s wall, "
                    f"{runs[-1]['cpu_s']:.2f} s CPU"
                )
            load.ours_cpu_s += server.cpu_s() - server_cpu
        answer["collect"] = {"warm": runs[0], "runs": runs[1:], "world": server.world}
    shutil.rmtree(folder, ignore_errors=True)
    return answer


SCHEDULE_TICKS = """
query($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { ticks(limit: 10) {
      tickId status timestamp endTimestamp runIds error { message } } } }
  }
}"""
RUN_EVENTS = """
query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { eventConnection(limit: 1000) { events { __typename
    ... on MessageEvent { timestamp eventType } } } } } }"""
RUN_TIMES = """
query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { runId status creationTime startTime endTime tags { key value } } } }"""


def next_tick(after: datetime) -> datetime:
    """The first quarter hour after ``after`` (naive UTC), skipping 00:30, when the
    training schedule would fire beside it."""
    tick = after.replace(minute=after.minute - after.minute % 15, second=0, microsecond=0)
    tick += WINDOW
    return tick + WINDOW if (tick.hour, tick.minute) == (0, 30) else tick


def measure_daemon(
    version: Version,
    world_tree: Path,
    tmp: Path,
    markets: int,
    args: argparse.Namespace,
    loads: list[Load],
) -> dict:
    """``dagster dev`` for ``version``; the schedule's next natural tick to the run's
    RUN_SUCCESS, against a world following the wall clock."""
    folder = tmp / f"daemon-{version.label}"
    home = folder / "home"
    (home / ".nux").mkdir(parents=True)
    shutil.copy(version.tree / "dagster.yaml", home / "dagster.yaml")
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    with world_server(
        world_tree, folder / "server", days=1, seed=args.seed, now=None, markets=markets
    ) as server:
        env = version_env(
            version.tree,
            {
                "DAGSTER_HOME": str(home),
                "BTC_TRACKER_DAGSTER_STORAGE": str(folder / "dagster"),
                "BTC_TRACKER_WAREHOUSE": str(folder / "warehouse.duckdb"),
                "BTC_TRACKER_MODELS": str(folder / "models"),
                "BTC_TRACKER_GAMMA_URL": f"{server.url}/gamma",
                "BTC_TRACKER_CLOB_URL": f"{server.url}/clob",
                "BTC_TRACKER_BINANCE_URL": f"{server.url}/binance",
            },
        )
        port = free_port()
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(version.tree / "workspace.yaml")]
        cmd += ["-p", str(port), "-h", "127.0.0.1"]
        dev_log = folder / "dagster_dev.log"
        # From its folder, not the tree: a tree's .env would override DAGSTER_HOME.
        proc = start_process_group(cmd, env, dev_log, folder)
        gql = DagsterGraphQL(f"http://127.0.0.1:{port}")
        try:

            def up() -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"dagster dev exited {proc.returncode}:\n{tail(dev_log)}")
                return gql.is_up()

            wait_for("the Dagster webserver", up, timeout_s=300)
            wait_for("the code location", gql.location_loaded, timeout_s=300)
            # The daemon must have seen the schedule before the tick (a schedule on by
            # default counts from when the daemon first sees it).
            ready = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=90)
            tick = next_tick(ready)
            wait_s = (tick - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
            log.print(f"  {version.label}: waiting {wait_s:.0f} s for the {tick:%H:%M} tick")
            time.sleep(max(wait_s - 20, 0))
            server.reset()
            selector = {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "scheduleName": SCHEDULE,
            }
            tick_ts = tick.replace(tzinfo=UTC).timestamp()

            def tick_done() -> dict | None:
                data = gql.query(SCHEDULE_TICKS, selector=selector)["scheduleOrError"]
                mine = [t for t in data["scheduleState"]["ticks"] if t["timestamp"] == tick_ts]
                return mine[0] if mine and mine[0]["status"] != "STARTED" else None

            with machine_load(f"daemon tick at {markets}, {version.label}", loads):
                got = wait_for(f"the {tick:%H:%M} tick", tick_done, timeout_s=300, interval_s=0.5)
                if got["status"] != "SUCCESS" or not got["runIds"]:
                    raise RuntimeError(f"tick {got}")
                run_id = got["runIds"][0]

                def finished() -> dict | None:
                    run = gql.query(RUN_TIMES, id=run_id)["runOrError"]
                    return run if run["status"] in FINISHED_RUN else None

                run = wait_for(f"run {run_id}", finished, timeout_s=600, interval_s=0.5)
            if run["status"] != "SUCCESS":
                raise RuntimeError(f"run {run_id} {run['status']}:\n{tail(dev_log)}")
            report = server.report()
            events = gql.query(RUN_EVENTS, id=run_id)["runOrError"]["eventConnection"]["events"]
        finally:
            gql.close()
            stop_process_group(proc)
    first: dict[str, float] = {}
    for event in events:
        if event.get("eventType") and event.get("timestamp"):
            first.setdefault(event["eventType"], float(event["timestamp"]) / 1000)
    import duckdb

    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        (markets_n,) = conn.execute(
            "SELECT count(*) FROM tracked_markets WHERE window_start = ?", [tick - WINDOW]
        ).fetchone()
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "tick": tick.isoformat(),
        "tick_ts": tick_ts,
        "tick_end_ts": got["endTimestamp"],
        "created_ts": run["creationTime"],
        "start_ts": run["startTime"],
        "success_ts": run["endTime"],
        "events_ts": first,
        "open_markets": markets_n,
        "server_busy_s": report["busy_s"],
        "requests": sum(report["routes"].values()),
        "world": server.world,
    }


# --- tables ---------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def ratio(new: float | None, old: float | None) -> str:
    return f"{new / old:.3f}" if new is not None and old else ""


def met(value: float | None, target: str) -> str:
    """``target`` like '≥ 10' or '≤ 0.5' against ``value``, with ✓ or ✗."""
    if value is None or not target:
        return target
    sign, bound = target.split(" ", 1)
    ok = value >= float(bound) if sign == "≥" else value <= float(bound)
    return f"{target} {'✓' if ok else '✗'}"


def dig(data: dict | None, *path: str | int) -> Any:
    for key in path:
        if data is None:
            return None
        try:
            data = data[key]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def median_of(ticks: list[dict] | None, key: str) -> float | None:
    return statistics.median(t[key] for t in ticks) if ticks else None


def compare_row(
    label: str, old: float | None, new: float | None, target: str = "", digits: int = 2
) -> list[str]:
    value = new / old if new is not None and old else None
    return [label, fmt(old, digits), fmt(new, digits), ratio(new, old), met(value, target)]


HEADERS = ["measure", "old", "new", "new ÷ old", "target (new ÷ old)"]


FLOATING = ("DOUBLE", "FLOAT", "REAL")


def column_digests(warehouse: Path) -> dict[str, dict[str, str]]:
    """Per table, per column: the sum of DuckDB's hash of every value (order-free);
    floating values as float32 (~7 significant digits), so that the last bits of a sum
    taken in another order do not count as another value."""
    import duckdb

    columns: dict[str, list[tuple[str, str]]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        for table, column, dtype in conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position"
        ).fetchall():
            columns.setdefault(table, []).append((column, dtype))
        digests = {}
        for table, names in columns.items():
            sums = ", ".join(
                f'sum(hash("{c}"{"::FLOAT" if dtype in FLOATING else ""}))::VARCHAR'
                for c, dtype in names
            )
            values = conn.execute(f'SELECT {sums} FROM "{table}"').fetchone()
            digests[table] = dict(zip((c for c, _ in names), values, strict=True))
    return digests


def compare_warehouses(sides: dict[str, dict | None], keep: Path | None) -> None:
    """Per table, the columns both versions have whose values differ (``content`` in each
    side's answer), then delete the warehouses (or move them into ``keep``)."""
    paths = {
        tag: Path(side["warehouse"])
        for tag, side in sides.items()
        if side and side.get("warehouse")
    }
    try:
        if set(paths) != {"old", "new"}:
            return
        old, new = (column_digests(paths[tag]) for tag in ("old", "new"))
        content = {}
        for table in set(old) & set(new):
            common = [c for c in old[table] if c in new[table]]
            content[table] = {
                "differ": [c for c in common if old[table][c] != new[table][c]],
                "common": len(common),
                "only_old": [c for c in old[table] if c not in new[table]],
                "only_new": [c for c in new[table] if c not in old[table]],
            }
        for side in sides.values():
            if side:
                side["content"] = content
    finally:
        for tag, path in paths.items():
            if keep and path.exists():
                keep.mkdir(parents=True, exist_ok=True)
                shutil.move(path, keep / f"{tag}.duckdb")
                sides[tag]["warehouse"] = str(keep / f"{tag}.duckdb")  # type: ignore[index]
            shutil.rmtree(path.parent.parent, ignore_errors=True)


def backfill_tables(old: dict | None, new: dict | None, days: int) -> list[ResultTable]:
    """Throughput and requests; rows per table; the flat-cost ticks."""

    def get(side: dict | None, *path: str) -> Any:
        return dig(side, *path)

    def windows_per_s(side: dict | None) -> float | None:
        return side["windows"] / side["wall_s"] if side else None

    def route(side: dict | None, name: str) -> int | None:
        return dig(side, "server", "routes", name) or (0 if side else None)

    rows = [
        compare_row("windows", get(old, "windows"), get(new, "windows"), digits=0),
        compare_row("runs failed", get(old, "runs_failed"), get(new, "runs_failed"), digits=0),
        compare_row("wall s", get(old, "wall_s"), get(new, "wall_s"), "≤ 0.1", 1),
        compare_row("windows per second", windows_per_s(old), windows_per_s(new), "≥ 10"),
        compare_row("pipeline process CPU s", get(old, "cpu_s"), get(new, "cpu_s"), digits=1),
        compare_row(
            "replay server CPU s (its own process)",
            get(old, "server_cpu_s"),
            get(new, "server_cpu_s"),
            digits=1,
        ),
        compare_row("warehouse MB", get(old, "warehouse_mb"), get(new, "warehouse_mb"), digits=1),
    ]
    for name, label, minimum in (
        ("/clob/prices-history", "CLOB prices-history requests", "prices_history_whole"),
        ("/binance/api/v3/klines", "Binance klines requests", "klines_whole"),
    ):
        rows.append(compare_row(label, route(old, name), route(new, name), digits=0))
        for side, tag in ((old, "old"), (new, "new")):
            least = dig(side, "minimums", minimum)
            if least:
                rows.append(
                    [
                        f"  {tag} ÷ minimum whole range ({least:,.0f})",
                        *([f"{route(side, name) / least:.3f}", ""] if tag == "old" else []),
                        *(["", f"{route(side, name) / least:.3f}"] if tag == "new" else []),
                        "",
                        met(route(side, name) / least, "≤ 1.1"),
                    ]
                )
    rows.append(
        compare_row(
            "Gamma keyset pages",
            route(old, "/gamma/markets/keyset"),
            route(new, "/gamma/markets/keyset"),
            digits=0,
        )
    )
    windows = get(new, "windows") or get(old, "windows") or days * 96
    throughput = ResultTable(
        f"Backfill of {windows:,} windows ({days} days), all families, server in its own process",
        HEADERS,
        rows,
    )
    tables = [throughput]
    old_rows, new_rows = get(old, "rows") or {}, get(new, "rows") or {}
    row_rows = []
    for table in sorted(set(old_rows) | set(new_rows)):
        a, b = old_rows.get(table), new_rows.get(table)
        same = "yes" if a == b else ("—" if a is None or b is None else f"no ({b - a:+,})")
        diff = dig(new, "content", table) or dig(old, "content", table)
        if diff is None:
            values = ""
        elif diff["differ"]:
            values = f"{len(diff['differ'])} of {diff['common']} differ: " + ", ".join(
                diff["differ"]
            )
        else:
            values = f"all {diff['common']} equal"
        row_rows.append([table, fmt(a, 0), fmt(b, 0), same, values])
    same_world = get(old, "world") == get(new, "world") and str(get(new, "world")).startswith(
        "simulated-"
    )
    tables.append(
        ResultTable(
            "Rows per table after the backfill "
            + ("(same world: they should match)" if same_world else "(not the same world)"),
            ["table", "old", "new", "same count", "columns in both (sum of value hashes)"],
            row_rows,
        )
    )
    flat = []
    for side, tag in ((old, "old"), (new, "new")):
        empty = median_of(dig(side, "empty_ticks", "ticks"), "wall_s")
        full = median_of(dig(side, "history_ticks", "ticks"), "wall_s")
        empty_cpu = median_of(dig(side, "empty_ticks", "ticks"), "cpu_s")
        full_cpu = median_of(dig(side, "history_ticks", "ticks"), "cpu_s")
        markets = dig(side, "history_ticks", "ticks", 0, "open_markets")
        value = full / empty if full is not None and empty else None
        flat.append(
            [
                tag,
                fmt(markets, 0),
                fmt(empty),
                fmt(full),
                ratio(full, empty),
                met(value, "≤ 1.2"),
                fmt(empty_cpu),
                fmt(full_cpu),
                ratio(full_cpu, empty_cpu),
            ]
        )
    if any(row[2] for row in flat):
        tables.append(
            ResultTable(
                f"Live tick on {days} days of history against an empty warehouse "
                "(median wall s, in process)",
                [
                    "version",
                    "open markets",
                    "empty wall s",
                    f"after {days} d wall s",
                    "ratio",
                    "target",
                    "empty CPU s",
                    f"after {days} d CPU s",
                    "CPU ratio",
                ],
                flat,
            )
        )
    return tables


def live_tables(
    sizes: dict[int, dict[str, dict | None]], ticks: int, runs: int
) -> list[ResultTable]:
    """Ticks in process and collect processes, per size."""
    tick_rows, collect_rows = [], []
    for markets, sides in sorted(sizes.items()):
        old, new = sides.get("old"), sides.get("new")
        n_old = dig(old, "ticks", "ticks", 0, "open_markets")
        n_new = dig(new, "ticks", "ticks", 0, "open_markets")
        label = f"{markets:,} ({fmt(n_old, 0) or '?'} / {fmt(n_new, 0) or '?'} open)"
        for key, name, target in (
            ("wall_s", "tick wall s", "≤ 0.5"),
            ("cpu_s", "tick CPU s", ""),
            ("load_s", "code load s (not in the tick)", ""),
        ):
            tick_rows.append(
                [
                    label,
                    *compare_row(
                        name,
                        median_of(dig(old, "ticks", "ticks"), key),
                        median_of(dig(new, "ticks", "ticks"), key),
                        target,
                    ),
                ]
            )
        tick_rows.append(
            [
                label,
                *compare_row(
                    "first (warm-up) tick wall s",
                    dig(old, "ticks", "warm", "wall_s"),
                    dig(new, "ticks", "warm", "wall_s"),
                ),
            ]
        )
        for key, name, target in (
            ("wall_s", "process wall s", "≤ 0.5"),
            ("cpu_s", "process CPU s", ""),
        ):
            collect_rows.append(
                [
                    label,
                    *compare_row(
                        name,
                        median_of(dig(old, "collect", "runs"), key),
                        median_of(dig(new, "collect", "runs"), key),
                        target,
                    ),
                ]
            )
        collect_rows.append(
            [
                label,
                *compare_row(
                    "first process wall s (new warehouse)",
                    dig(old, "collect", "warm", "wall_s"),
                    dig(new, "collect", "warm", "wall_s"),
                ),
            ]
        )
    return [
        ResultTable(
            f"Live tick in process (run_windows), median of {ticks} after 1 warm-up",
            ["markets", *HEADERS],
            tick_rows,
            left=2,
        ),
        ResultTable(
            f"`btc-tracker collect` as a whole process, median of {runs} after 1 warm-up",
            ["markets", *HEADERS],
            collect_rows,
            left=2,
        ),
    ]


def daemon_table(daemon: dict[str, dict | None], markets: int) -> ResultTable:
    def event(d: dict, name: str, since: str) -> float:
        return d["events_ts"][name] - d[f"{since}_ts"]

    def row(
        label: str, fn: Callable[[dict], float], target: str = "", digits: int = 2
    ) -> list[str]:
        values = {}
        for tag, d in daemon.items():
            try:
                values[tag] = fn(d) if d else None
            except (KeyError, TypeError):  # an event this version's run did not log
                values[tag] = None
        old, new = values.get("old"), values.get("new")
        return [label, fmt(old, digits), fmt(new, digits), ratio(new, old), met(new, target)]

    return ResultTable(
        f"Daemon tick under `dagster dev` at {markets:,} markets (natural quarter-hour tick)",
        ["measure", "old", "new", "new ÷ old", "target (new, s)"],
        [
            row("tick → RUN_SUCCESS s", lambda d: d["success_ts"] - d["tick_ts"], "≤ 5"),
            row("tick → tick done (run submitted) s", lambda d: d["tick_end_ts"] - d["tick_ts"]),
            row("tick → run created s", lambda d: d["created_ts"] - d["tick_ts"]),
            row("run created → RUN_START s", lambda d: d["start_ts"] - d["created_ts"]),
            row(
                "  created → RUN_STARTING (queue) s", lambda d: event(d, "RUN_STARTING", "created")
            ),
            row(
                "  RUN_STARTING → RUN_START (worker process, code load) s",
                lambda d: d["start_ts"] - d["events_ts"]["RUN_STARTING"],
            ),
            row("RUN_START → RUN_SUCCESS s", lambda d: d["success_ts"] - d["start_ts"]),
            row("  RUN_START → first STEP_START s", lambda d: event(d, "STEP_START", "start")),
            row("open markets", lambda d: d["open_markets"], digits=0),
            row("replay server busy s", lambda d: d["server_busy_s"]),
        ],
    )


def only_new_table(new: dict, days: int, shorter: dict | None, shorter_days: int) -> ResultTable:
    """The head-only backfill, a year extrapolated, and its rate against the shorter
    backfill's (does throughput fall as history grows?)."""
    rate = new["windows"] / new["wall_s"]
    cpu_rate = new["windows"] / new["cpu_s"] if new["cpu_s"] else None
    ph, least = (
        dig(new, "server", "routes", "/clob/prices-history"),
        dig(new, "minimums", "prices_history_whole"),
    )
    rows = [
        ["windows", f"{new['windows']:,}"],
        ["runs failed", str(new["runs_failed"])],
        ["wall s", fmt(new["wall_s"], 1)],
        ["windows per second", fmt(rate)],
        [
            f"windows per second ÷ the {shorter_days}-day backfill's",
            ratio(rate, shorter["windows"] / shorter["wall_s"]) if shorter else "",
        ],
        ["pipeline process CPU s", fmt(new["cpu_s"], 1)],
        ["replay server CPU s", fmt(new["server_cpu_s"], 1)],
        ["warehouse MB", fmt(new["warehouse_mb"], 1)],
        ["prices-history requests ÷ minimum whole range", ratio(ph, least)],
        ["a year (35,040 windows) at this rate, h", fmt(WINDOWS_PER_YEAR / rate / 3600)],
        [
            "a year at the pipeline's CPU rate (no waiting at all), h",
            fmt(WINDOWS_PER_YEAR / cpu_rate / 3600) if cpu_rate else "",
        ],
    ]
    rows += [[f"rows {t}", f"{n:,}"] for t, n in new["rows"].items() if n]
    return ResultTable(f"Backfill of {days} days, new code only", ["measure", "new"], rows)


# --- main -----------------------------------------------------------------------------


def run_both(
    what: str, versions: list[Version], measure: Callable[[Version], dict], errors: list[str]
) -> dict[str, dict | None]:
    """``measure`` for each version in turn; a failure is recorded, not fatal."""
    results: dict[str, dict | None] = {}
    for version in versions:
        log.print(f"[bold]{what}[/]: {version.label} ({version.name})")
        started = time.perf_counter()
        try:
            results[version.label] = measure(version)
        except Exception as exc:
            results[version.label] = None
            errors.append(f"{what}, {version.label} ({version.name}): {exc}")
            log.print(f"[red]  failed: {exc}[/]")
        log.print(f"  {time.perf_counter() - started:.0f} s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="old version: a ref or a path")
    parser.add_argument("--head", default=str(ROOT), help="new version: a path or a ref")
    parser.add_argument("--world", choices=("head", "base"), default="head", help="world's tree")
    parser.add_argument("--days", type=int, default=30, help="backfill days (0: none)")
    parser.add_argument("--days-only", type=int, default=0, help="head-only backfill days")
    parser.add_argument("--markets", type=int, nargs="*", default=[10, 1000], choices=SIZES)
    parser.add_argument("--ticks", type=int, default=3, help="measured ticks (median)")
    parser.add_argument("--collect-runs", type=int, default=3, help="collect processes (median)")
    parser.add_argument("--daemon", action="store_true", help="dagster dev ticks (slow)")
    parser.add_argument("--daemon-markets", type=int, default=1000, choices=SIZES)
    parser.add_argument("--now", default="2026-03-01T00:00:00", help="world clock (UTC)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--keep", action="store_true", help="keep both backfilled warehouses (path printed)"
    )
    parser.add_argument(
        "--own-scripts",
        action="store_true",
        help="measure backfills and in-process ticks with each version's own bench scripts "
        "(what happens anyway for a version engine_probe.py cannot import against)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="development size: 1 day, 10 markets, 1 tick, 1 collect, daemon and --days-only "
        "at 10 markets and 1 day (flags given explicitly still win)",
    )
    if "--quick" in sys.argv[1:]:
        parser.set_defaults(days=1, markets=[10], ticks=1, collect_runs=1, daemon_markets=10)
    args = parser.parse_args()
    if args.quick and args.days_only:
        args.days_only = 1
    args.now = datetime.fromisoformat(args.now)
    console = Console(width=160)
    tmp = Path(tempfile.mkdtemp(prefix="engine-speed-"))
    started = time.perf_counter()
    versions: list[Version] = []
    loads: list[Load] = []
    errors: list[str] = []
    results: dict[str, Any] = {}
    try:
        versions = [resolve(args.base, "old", tmp), resolve(args.head, "new", tmp)]
        for version in versions:
            log.print(f"{version.label}: {version.name} imports {check_import(version)}")
            check_probe(version)
            if args.own_scripts and not version.probe_error:
                version.probe_error = "--own-scripts"
            if version.probe_error:
                log.print(f"[yellow]  engine_probe.py cannot drive it: {version.probe_error}[/]")
        old, new = versions
        world_tree = new.tree if args.world == "head" else old.tree
        tables: list[ResultTable] = []
        if args.days:
            results["backfill"] = run_both(
                f"backfill {args.days} d",
                versions,
                lambda v: measure_backfill(v, world_tree, tmp, args, loads),
                errors,
            )
            keep = Path(tempfile.mkdtemp(prefix="engine-speed-kept-")) if args.keep else None
            compare_warehouses(results["backfill"], keep)
            if keep:
                log.print(f"backfilled warehouses kept in {keep}")
            tables += backfill_tables(
                results["backfill"]["old"], results["backfill"]["new"], args.days
            )
        if args.markets:
            results["live"] = {
                m: run_both(
                    f"live at {m} markets",
                    versions,
                    lambda v, m=m: measure_size(v, world_tree, tmp, m, args, loads),
                    errors,
                )
                for m in args.markets
            }
            tables += live_tables(results["live"], args.ticks, args.collect_runs)
        if args.daemon:
            results["daemon"] = run_both(
                f"daemon at {args.daemon_markets} markets",
                versions,
                lambda v: measure_daemon(v, world_tree, tmp, args.daemon_markets, args, loads),
                errors,
            )
            tables.append(daemon_table(results["daemon"], args.daemon_markets))
        if args.days_only:
            only = run_both(
                f"backfill {args.days_only} d (new only)",
                [new],
                lambda v: measure_only_new(v, world_tree, tmp, args, loads),
                errors,
            )
            results["days_only"] = only
            if only["new"]:
                shorter = dig(results, "backfill", "new")
                tables.append(only_new_table(only["new"], args.days_only, shorter, args.days))
        for table in tables:
            console.print(table.rich())
        notes = report_notes(versions, world_tree, results, loads, errors, args)
        notes.append(f"This run took {(time.perf_counter() - started) / 60:.1f} min in all.")
        for note in notes:
            console.print(f"- {note}", highlight=False)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        if tables:
            first = tables[0]
            path = write_results(
                "engine_speed",
                f"Engine speed, new ({new.name}) against old ({old.name}). {first.title}",
                first.headers,
                first.rows,
                notes,
                more_tables=tables[1:],
            )
            console.print(f"wrote {path}")
    finally:
        for version in versions:
            remove_worktree(version)
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if errors else 0)


def worlds(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Each measurement's world identity per version (the same world must serve both)."""
    lines = []

    def add(what: str, sides: dict[str, dict | None], *path: str) -> None:
        ids = {tag: dig(side, *path) for tag, side in sides.items() if side}
        if ids:
            same = len(set(ids.values())) == 1
            names = ", ".join(f"{t} {w}" for t, w in ids.items())
            lines.append(f"{what}: {names}{'' if same else ' (DIFFERENT worlds)'}")

    if "backfill" in results:
        add("backfill", results["backfill"], "world")
    for markets, sides in results.get("live", {}).items():
        add(f"{markets} markets", sides, "ticks", "world")
    if "daemon" in results:
        add("daemon", results["daemon"], "world")
    if "days_only" in results:
        add(f"{args.days_only}-day backfill", results["days_only"], "world")
    return lines


def report_notes(
    versions: list[Version],
    world_tree: Path,
    results: dict[str, Any],
    loads: list[Load],
    errors: list[str],
    args: argparse.Namespace,
) -> list[str]:
    old, new = versions
    notes = [
        f"old = `{old.spec}` ({old.name}), new = `{new.spec}` ({new.name}"
        + (", with uncommitted changes" if new.dirty else "")
        + "). Each version runs in its own subprocess with PYTHONPATH=its tree (checked: "
        "each imported btc_tracker_pipeline from its own tree), driven by this tree's "
        "bench/engine_probe.py; refs are checked out with `git worktree add --detach` "
        "and removed at the end. Versions run one after the other (old first).",
        f"Replay server: bench/world_server.py in its own process, built from the "
        f"{'new' if world_tree == new.tree else 'old'} tree, seed {args.seed}, a fresh server "
        "(same parameters, so the same world) per version and measurement. World "
        "identities: " + "; ".join(worlds(results, args)) + ".",
    ]
    if args.days or args.days_only:
        notes.append(
            "Backfill: `run_windows` over the days before "
            f"{args.now:%Y-%m-%d %H:%M} UTC, one Dagster run per day, all families (default "
            "strikes), as `btc-tracker backfill`. `pipeline process CPU s` is the CPU time of "
            "the process running the pipeline (all its threads); the server's is its own. "
            "The minimums are request_minimums.py's whole-range minimums (one prices-history "
            "call per YES token per 15 days of needed history, one klines page per 1,000 "
            "minutes of the range plus 24 h); target ≤ 1.1×. Rows: `same count` compares the "
            "counts; the last column compares, per column both versions have, the sum of DuckDB's "
            "hash of every value (order-free; floating values to float32, ~7 significant "
            "digits; run ids and times in collection_runs, "
            "`fetched_at`, `applied_at` and the caches' `source` (the server's URL, a new "
            "port per server) differ by nature, any other differing column is a "
            "different row content). Flat-cost ticks: on the default world (seed "
            f"{args.seed}, ~170 open markets), live ticks after the backfill on its warehouse "
            "and on an empty one, against the same server (a warm-up, then the median)."
        )
    if args.markets:
        notes += [
            "Live tick in process: tick_latency.py's worlds (10 markets: 1 strike per ladder, "
            "up/down listed 1 h ahead; 1,000: 220 strikes, 24 h), clock a minute past the "
            "window end; a warm-up tick, then the median of the measured ticks; `tick wall s` "
            "is `run_windows([key])` without loading the code location (live_tick.py).",
            "`btc-tracker collect`: a new Python process per window (`python -c` that points "
            "the assets' clock at a minute past the window end with replay.clock.assets_clock, "
            "then calls btc_tracker_pipeline.cli.main for `collect --partition KEY`; it prints the "
            "package it imported, checked against its tree), timed "
            "from spawn to exit, its CPU from its rusage; a temporary DAGSTER_HOME with the "
            "version's dagster.yaml and one warehouse, the first process (which creates it) "
            "reported apart.",
        ]
    for version in versions:
        if version.probe_error:
            why = (
                "asked by --own-scripts"
                if version.probe_error == "--own-scripts"
                else f"this tree's engine_probe.py cannot import against it: {version.probe_error}"
            )
            notes.append(
                f"{version.label} ({why}): its backfill and in-process ticks are its own "
                "bench/backfill_30d.py and bench/tick_latency.py (`--server process`: the "
                "server is a child process serving that tree's world), read back from their "
                "results files (median ticks only; no server CPU)."
            )
    if args.daemon:
        notes.append(
            "Daemon: `dagster dev` of the version's tree on a temporary instance (its "
            "dagster.yaml), the world following the wall clock; after the code location "
            "loads, the next quarter-hour tick of collect_job_schedule (on by default) is "
            "waited for; tick = the tick's scheduled time (the daemon evaluates schedules "
            "at each minute boundary), RUN_SUCCESS = the run's end time (GraphQL), the "
            "steps between from the run's event log: created → RUN_STARTING is the queued "
            "run coordinator, RUN_STARTING → RUN_START the run worker process starting and "
            "loading the code location. The world is not warmed before the tick: its "
            "server's busy time is listed."
        )
    cores = os.cpu_count() or 1
    notes.append(
        "Load: the machine was shared; busy cores (of "
        f"{cores}, from /proc/stat) and the 1-min load average at the start, per "
        "measurement, with this bench's own CPU where known: "
        + "; ".join(
            f"{ld.what}: {ld.busy_cores:.2f} busy over {ld.wall_s:.0f} s"
            + (f" (ours {ld.ours_cpu_s / ld.wall_s:.2f})" if ld.ours_cpu_s else "")
            + f", load {ld.load1:.1f}"
            for ld in loads
        )
        + "."
    )
    if errors:
        notes.append("FAILED: " + "; ".join(errors))
    return notes


if __name__ == "__main__":
    main()
