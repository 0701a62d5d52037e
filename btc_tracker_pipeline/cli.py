"""``btc-tracker``: the command line next to the Dagster UI and the ``dagster`` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.partitions import WINDOW, floor_to_window, key_of

app = typer.Typer(
    name="btc-tracker",
    help="Track every Polymarket Bitcoin market every 15 minutes beside BTC spot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(f"--now {value!r} is not an ISO time like 2026-03-01T00:00:00Z") from exc
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _build_world(
    seed: int, days: float, now: datetime | None, bias: float, data: Path | None, strikes: int
):
    from btc_tracker_pipeline.replay.recorded import RecordedDataError, RecordedWorld
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld

    if data is not None:
        try:
            return RecordedWorld(data, now=now)
        except RecordedDataError as exc:
            raise _fail(str(exc)) from exc
    return SimulatedWorld(seed=seed, days=days, now=now, bias=bias, strikes_per_ladder=strikes)


@app.command()
def replay(
    port: Annotated[int, typer.Option(help="Loopback port (0 picks a free one).")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 7,
    days: Annotated[float, typer.Option(help="Days of simulated history before --now.")] = 5.0,
    now: Annotated[
        str | None, typer.Option(help="World clock, ISO UTC; default: follow the wall clock.")
    ] = None,
    bias: Annotated[
        float, typer.Option(help="Favourite-longshot distortion (0 = efficient market).")
    ] = 0.0,
    data: Annotated[
        Path | None, typer.Option(help="Serve recorded history from this directory instead.")
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(help="Fault injection, e.g. '429=0.05,5xx=0.05,slow=0.02,malformed=0.01'."),
    ] = None,
    strikes: Annotated[int, typer.Option(help="Strikes per daily 'above K' ladder.")] = 11,
) -> None:
    """Serve Gamma (/gamma), CLOB (/clob) and Binance (/binance) on one loopback port.

    Example: btc-tracker replay --port 8765 --seed 7 --days 2 --now 2026-03-01T00:00:00Z
    """
    from btc_tracker_pipeline.replay import FaultSpec, ReplayServer

    try:
        spec = FaultSpec.parse(faults) if faults else None
    except ValueError as exc:
        raise _fail(f"--faults: {exc}") from exc
    world = _build_world(seed, days, _parse_now(now), bias, data, strikes)
    server = ReplayServer(world, port=port, faults=spec)
    url = server.url if hasattr(server, "url") else f"http://127.0.0.1:{port}"
    console.print(f"replay server on [bold]{url}[/] (world now: {world.now():%Y-%m-%d %H:%M} UTC)")
    console.print(
        f"  export {environment.ENV_GAMMA}={url}/gamma {environment.ENV_CLOB}={url}/clob "
        f"{environment.ENV_BINANCE}={url}/binance"
    )
    server.serve_forever()


def _window_keys(last_window_start: datetime, days: float) -> list[str]:
    count = max(1, int(days * 24 * 4))
    first = last_window_start - (count - 1) * WINDOW
    return [key_of(first + i * WINDOW) for i in range(count)]


def _print_summary(path: Path) -> None:
    from btc_tracker_pipeline.summary import summarize

    s = summarize(path)
    table = Table(title=f"warehouse {path}", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("windows with snapshots", f"{s.windows} ({s.first_window} … {s.last_window} UTC)")
    table.add_row("markets tracked", str(s.markets))
    table.add_row("tracked_markets rows", str(s.tracked_rows))
    table.add_row("market_snapshots rows", str(s.snapshot_rows))
    table.add_row("btc_spot_prices rows (1m klines)", str(s.spot_klines))
    table.add_row("btc_spot_windows rows", str(s.spot_windows))
    table.add_row("collection_runs", ", ".join(f"{k}: {v}" for k, v in s.runs_by_status.items()))
    table.add_row("families", ", ".join(f"{k}: {v}" for k, v in s.families.items()))
    table.add_row(
        "market_resolutions", ", ".join(f"{k}: {v}" for k, v in s.labels_by_status.items()) or "0"
    )
    quality = f", mean quality {s.mean_quality:.2f}" if s.mean_quality is not None else ""
    table.add_row("market_indicators rows", f"{s.indicator_rows}{quality}")
    console.print(table)


def _run_with_progress(keys: list[str], run_config: dict | None = None) -> int:
    from btc_tracker_pipeline.runner import chunks, run_windows

    failures = 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("windows"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("collecting", total=len(keys))

        def on_chunk(outcome) -> None:
            nonlocal failures
            progress.advance(task, outcome.windows)
            if not outcome.success:
                failures += 1
                progress.console.print(
                    f"[red]run {outcome.run_id[:8]} {outcome.first_key} … {outcome.last_key} "
                    f"failed:[/] {outcome.error}"
                )

        run_windows(keys, run_config=run_config, on_chunk=on_chunk)
    console.print(f"{len(chunks(keys))} run(s), {failures} failed")
    return failures


@app.command()
def demo(
    days: Annotated[float, typer.Option(help="Days of 15-minute windows to collect.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 7,
    port: Annotated[int, typer.Option(help="Replay server port (0 = any free port).")] = 0,
) -> None:
    """Run the pipeline offline: a replay server, then `days` of windows through Dagster.

    Example: btc-tracker demo --days 2
    """
    from btc_tracker_pipeline.replay import ReplayServer
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld

    if days <= 0:
        raise _fail("--days must be positive")
    environment.prepare_dagster_environment()
    now = datetime.now(UTC).replace(tzinfo=None).replace(second=0, microsecond=0)
    world = SimulatedWorld(seed=seed, days=days + 2, now=now)
    server = ReplayServer(world, port=port)
    server.start()
    try:
        environment.point_at_replay(server.url)
        console.print(
            f"replay server (seed {seed}) on {server.url}; world clock {now:%Y-%m-%d %H:%M} UTC"
        )
        last = floor_to_window(now) - WINDOW
        keys = _window_keys(last, days)
        console.print(f"collecting {len(keys)} windows {keys[0]} … {keys[-1]} through Dagster")
        started = time.monotonic()
        # History (CLOB prices-history) for the past, then the newest window as a live tick
        # (it is live when it ended at most 10 minutes ago).
        failures = _run_with_progress(keys[:-1]) if len(keys) > 1 else 0
        failures += _run_with_progress(keys[-1:])
        console.print(f"done in {time.monotonic() - started:.1f} s")
    finally:
        server.stop()
    _print_summary(environment.warehouse_path())
    console.print(
        "Open the Dagster UI on these runs, with a replay server behind the schedule: "
        "[bold]btc-tracker ui --replay[/] (then http://127.0.0.1:3000)"
    )
    if failures:
        raise typer.Exit(1)


def _market_config(market_ids: str | None) -> dict | None:
    if not market_ids:
        return None
    ids = [i.strip() for i in market_ids.split(",") if i.strip()]
    bad = [i for i in ids if not i.isdigit()]
    if bad or not ids:
        raise _fail(
            f"--market-ids: not Gamma market ids (digits only): {', '.join(bad) or '(none)'}"
        )
    return {"ops": {"tracked_markets": {"config": {"market_ids": ids}}}}


def _keys(first: str, last: str) -> list[str]:
    from btc_tracker_pipeline.runner import partition_keys

    try:
        return partition_keys(first, last)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


MARKET_IDS_HELP = "Comma-separated Gamma market ids instead of all BTC markets."


@app.command()
def collect(
    partition: Annotated[
        str | None, typer.Option(help="Window key YYYY-MM-DD-HH:MM (default: newest complete).")
    ] = None,
    market_ids: Annotated[str | None, typer.Option(help=MARKET_IDS_HELP)] = None,
) -> None:
    """Collect one window now, in this process (the schedule's tick, by hand).

    Example: btc-tracker collect --partition 2026-02-28-23:30 --market-ids 1344329,1344330
    """
    run_config = _market_config(market_ids)
    key = partition or key_of(floor_to_window(datetime.now(UTC)) - WINDOW)
    keys = _keys(key, key)
    environment.prepare_dagster_environment()
    failures = _run_with_progress(keys, run_config)
    _print_summary(environment.warehouse_path())
    if failures:
        raise typer.Exit(1)


@app.command()
def backfill(
    from_key: Annotated[str, typer.Option("--from", help="First window key YYYY-MM-DD-HH:MM.")],
    to_key: Annotated[str, typer.Option("--to", help="Last window key (inclusive).")],
    market_ids: Annotated[str | None, typer.Option(help=MARKET_IDS_HELP)] = None,
) -> None:
    """Backfill a range of windows through Dagster: one run per day of windows.

    Same job, assets and runs as a UI backfill (BackfillPolicy of 96 windows), run in
    this process and recorded in the instance. Rerunning a range replaces its windows.

    Example: btc-tracker backfill --from 2026-02-25-00:00 --to 2026-02-28-23:45
    """
    run_config = _market_config(market_ids)
    keys = _keys(from_key, to_key)
    environment.prepare_dagster_environment()
    started = time.monotonic()
    failures = _run_with_progress(keys, run_config)
    elapsed = time.monotonic() - started
    console.print(
        f"{len(keys)} windows in {elapsed:.1f} s ({len(keys) / max(elapsed, 1e-9):.1f} windows/s)"
    )
    _print_summary(environment.warehouse_path())
    if failures:
        raise typer.Exit(1)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Web UI port on 127.0.0.1.")] = 3000,
    replay: Annotated[
        bool, typer.Option(help="Also serve a simulated world and point the APIs at it.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the --replay world.")] = 7,
) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this project's instance.

    With --replay, the schedule and backfills read a simulated world that follows the
    wall clock instead of the real APIs (offline use).

    Example: btc-tracker ui --replay --port 3000
    """
    environment.prepare_dagster_environment()
    root = environment.project_root()
    if replay:
        from btc_tracker_pipeline.replay import ReplayServer
        from btc_tracker_pipeline.replay.simulated import SimulatedWorld

        server = ReplayServer(SimulatedWorld(seed=seed, days=7))
        server.start()
        environment.point_at_replay(server.url)
        console.print(f"replay server (seed {seed}, wall clock) on {server.url}")
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(root / "workspace.yaml"),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
    ]
    console.print(" ".join(cmd))
    raise typer.Exit(_run_stoppable(cmd, root))


def _reset_signals() -> None:
    # dagster dev started from a non-interactive shell ignores SIGINT/SIGTERM
    # (docs/dagster.md §3): give it default handlers and its own process group.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()


def _run_stoppable(cmd: list[str], cwd: Path) -> int:
    """Run ``cmd`` and stop its whole process group on Ctrl+C or SIGTERM."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=os.environ.copy(), preexec_fn=_reset_signals)

    def stop(signum: int, _frame: object) -> None:
        os.killpg(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m btc_tracker_pipeline.cli``."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
