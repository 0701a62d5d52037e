"""``btc-tracker``: the command line next to the Dagster UI and the ``dagster`` CLI."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

import click
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from btc_tracker_pipeline import (
    cli_health,
    cli_paper,
    cli_read,
    environment,
    market_selection,
    stopping,
)
from btc_tracker_pipeline.cli_output import (
    PORT,
    SEED,
    OneLineErrors,
    PipeConsole,
    bad_value,
    interval,
    positive,
    print_error,
    show_version,
)
from btc_tracker_pipeline.partitions import (
    ENV_FIRST_PARTITION,
    PARTITION_START,
    WINDOW,
    floor_to_window,
    key_of,
    window_of,
)

if TYPE_CHECKING:
    from btc_tracker_pipeline.failures import Cause

app = typer.Typer(
    name="btc-tracker",
    help="Track every Polymarket Bitcoin market every 15 minutes beside BTC spot.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Full width when stdout/stderr is a pipe or a file: no value is cut with "…" in a log.
console = PipeConsole()
err_console = PipeConsole(stderr=True)

# replay.simulated's MAX_STRIKES, bias, noise and lag ranges, repeated so `--help` does
# not import numpy (test_cli_output checks that they agree).
MAX_STRIKES = 4000
BIAS_RANGE = interval(-1.0, 1.0)
MAX_NOISE = 2.0
NOISE_RANGE = interval(0.0, MAX_NOISE, include_low=True, include_high=True)
NOISE_HELP = (
    "Persistent logit noise of the market mid around the fair value "
    "(0 = none; 0.12 = the old default world)."
)
MAX_LAG_S = 3600.0
LAG_RANGE = interval(0.0, MAX_LAG_S, include_low=True, include_high=True)
LAG_HELP = (
    "Seconds the market price follows its fair value late "
    "(a known effect on short up/down markets); 0: none"
)
UPDOWN_5M_HELP = "List Polymarket's 5-minute up/down markets too (288 a day)"
MIN_EDGE_RANGE = interval(0.0, 1.0, include_low=True)


@app.callback()
def _options(
    _version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    pass


def _fail(message: str, code: int = 1) -> typer.Exit:
    print_error(err_console, message)
    return typer.Exit(code)


def _check_configuration() -> None:
    """Refuse a bad BTC_TRACKER_* variable with one line, before any file or request."""
    try:
        environment.check_configuration()
    except environment.ConfigurationError as exc:
        raise _fail(str(exc)) from exc


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_value("--now", f"{value!r} is not an ISO time like 2026-03-01T00:00:00Z") from exc
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _build_world(
    seed: int,
    days: float,
    now: datetime | None,
    bias: float,
    noise: float,
    data: Path | None,
    strikes: int,
    lag_s: float = 0.0,
    updown_5m: bool = False,
):
    from btc_tracker_pipeline.replay.recorded import RecordedDataError, RecordedWorld
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld

    if data is not None:
        try:
            world = RecordedWorld(data, now=now)
            world.check_for_pipeline()
            return world
        except RecordedDataError as exc:
            raise _fail(str(exc)) from exc
    return SimulatedWorld(
        seed=seed,
        days=days,
        now=now,
        bias=bias,
        noise=noise,
        strikes_per_ladder=strikes,
        lag_s=lag_s,
        updown_5m=updown_5m,
    )


@app.command()
def replay(
    port: Annotated[int, typer.Option(**PORT, help="Loopback port (0 picks a free one).")] = 8765,
    seed: Annotated[int, typer.Option(**SEED, help="Seed of the simulated world.")] = 7,
    days: Annotated[
        float, typer.Option(callback=positive, help="Days of simulated history before --now.")
    ] = 5.0,
    now: Annotated[
        str | None, typer.Option(help="World clock, ISO UTC; default: follow the wall clock.")
    ] = None,
    bias: Annotated[
        float,
        typer.Option(
            callback=BIAS_RANGE, help="Favourite-longshot distortion in (-1, 1) (0 = efficient)."
        ),
    ] = 0.0,
    noise: Annotated[float, typer.Option(callback=NOISE_RANGE, help=NOISE_HELP)] = 0.0,
    lag_s: Annotated[float, typer.Option(callback=LAG_RANGE, help=LAG_HELP)] = 0.0,
    updown_5m: Annotated[
        bool, typer.Option("--updown-5m/--no-updown-5m", help=UPDOWN_5M_HELP)
    ] = False,
    data: Annotated[
        Path | None, typer.Option(help="Serve recorded history from this directory instead.")
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(help="Fault injection, e.g. '429=0.05,5xx=0.05,slow=0.02,malformed=0.01'."),
    ] = None,
    strikes: Annotated[
        int, typer.Option(min=1, max=MAX_STRIKES, help="Strikes per daily 'above K' ladder.")
    ] = 11,
) -> None:
    """Serve Gamma (/gamma), CLOB (/clob) and Binance (/binance) on one loopback port.

    Example: btc-tracker replay --port 8765 --seed 7 --days 2 --now 2026-03-01T00:00:00Z
    """
    from btc_tracker_pipeline.replay import FaultSpec, ReplayServer

    try:
        spec = FaultSpec.parse(faults) if faults else None
    except ValueError as exc:
        raise _fail(f"--faults: {exc}") from exc
    world_now = _parse_now(now)
    if data is None:
        _check_days(days, floor_to_window(world_now or datetime.now(UTC)))
    world = _build_world(seed, days, world_now, bias, noise, data, strikes, lag_s, updown_5m)
    server = ReplayServer(world, port=port, faults=spec)
    url = server.url if hasattr(server, "url") else f"http://127.0.0.1:{port}"
    console.print(f"replay server on [bold]{url}[/] (world now: {world.now():%Y-%m-%d %H:%M} UTC)")
    # One line, never wrapped: a pasted half would leave CLOB and Binance on the real APIs.
    variables = environment.replay_variables(url)
    console.print(
        "  export " + " ".join(f"{name}={value}" for name, value in variables.items()),
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    server.serve_forever()


def _check_days(days: float, last_window_start: datetime) -> None:
    """Refuse a --days that reaches before the first partition (PARTITION_START)."""
    first_partition = window_of(PARTITION_START)[0]
    windows = (last_window_start - first_partition) // WINDOW + 1
    if windows < 1:
        raise bad_value("--days", f"the world ends before the first partition {PARTITION_START}")
    if int(days * 24 * 4) > windows:
        most = math.floor(windows / (24 * 4) * 100) / 100
        raise bad_value(
            "--days",
            f"{days:g} reaches before the first partition {PARTITION_START}: at most {most:g} days",
        )


def _window_keys(last_window_start: datetime, days: float) -> list[str]:
    count = max(1, int(days * 24 * 4))
    first = last_window_start - (count - 1) * WINDOW
    return [key_of(first + i * WINDOW) for i in range(count)]


def _print_summary(path: Path) -> None:
    from btc_tracker_pipeline.queries import warehouse_summary
    from btc_tracker_pipeline.warehouse import warehouse

    with warehouse(path, read_only=True) as conn:
        s = warehouse_summary(conn)
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


def _announce_stop(name: str) -> None:
    console.print(
        f"[yellow]{name}: finishing the write in progress, then stopping "
        "(press Ctrl+C again to stop at once)[/]"
    )


def _announce_orphan(orphan) -> None:
    console.print(
        f"[yellow]run {orphan.run_id[:8]} ({orphan.job_name}) was orphaned: {orphan.why}; "
        "marked failed and its pool slot freed[/]"
    )


VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Show Dagster's log and the full trace of a failure."),
]


def _quiet_logs(verbose: bool) -> str:
    """Without --verbose, keep library log lines (API retries, Dagster's warnings) off the
    terminal; returns the level for Dagster's console logger."""
    from btc_tracker_pipeline.runner import QUIET, VERBOSE

    if verbose:
        return VERBOSE
    # A handler on the root logger stops Python's last-resort printing to stderr.
    root = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
    logging.getLogger("dagster").setLevel(logging.CRITICAL)
    return QUIET


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def _error(message: str) -> None:
    print_error(err_console, message)


def _hint(message: str | None, verbose: bool = False) -> None:
    from btc_tracker_pipeline.failures import TRACE_HINT

    # With --verbose the trace is already on screen.
    if message and not (verbose and message == TRACE_HINT):
        err_console.print(f"hint: {escape(message)}", soft_wrap=True)


@contextlib.contextmanager
def _one_line_errors(verbose: bool) -> Iterator[None]:
    """An exception outside a run (the instance, a setting, the warehouse summary) becomes
    one ``error:`` line; --verbose prints its trace first."""
    try:
        yield
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException):
        raise
    except Exception as exc:
        from btc_tracker_pipeline.failures import exception_cause

        if verbose:
            err_console.print_exception()
        cause = exception_cause(exc)
        _error(cause.text)
        _hint(cause.hint, verbose)
        raise typer.Exit(1) from exc


def _prepare() -> None:
    """Check the ``BTC_TRACKER_*`` configuration, then ``environment.prepare_dagster_environment``
    with a folder that cannot be made said in one line."""
    _check_configuration()
    try:
        environment.prepare_dagster_environment()
    except OSError as exc:
        raise _fail(
            f"cannot create the Dagster storage folder {exc.filename}: {exc.strerror}; "
            f"set {environment.ENV_STORAGE} to a writable folder"
        ) from exc


def _check_models_folder() -> None:
    """Fail before any work when the models folder cannot be created or written."""
    folder = environment.models_path()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(
            f"cannot write models to {folder}: {exc.strerror}; "
            f"set {environment.ENV_MODELS} to a writable folder"
        ) from exc
    if not os.access(folder, os.W_OK):
        raise _fail(
            f"cannot write models to {folder}: not writable by this user; "
            f"set {environment.ENV_MODELS} to a writable folder"
        )


def _resume_command(first: str, last: str, run_config: dict | None) -> str:
    ids = market_selection.market_ids(run_config)
    return f"btc-tracker backfill --from {first} --to {last}" + (
        f" --market-ids {','.join(ids)}" if ids else ""
    )


class RunTally(NamedTuple):
    """Runs that failed and windows written by the runs that succeeded."""

    failed: int
    written: int


def _run_with_progress(
    keys: list[str],
    run_config: dict | None = None,
    *,
    verbose: bool = False,
    resume: bool = False,
) -> RunTally:
    """Run windows with a progress bar; on Ctrl+C/SIGTERM stop cleanly and exit 130/143.

    A failed run prints one ``error:`` line (a cause already said is not repeated) and
    the bar counts the windows written; with ``resume`` the command that redoes the
    failed windows follows.
    """
    from btc_tracker_pipeline.runner import chunks, run_windows

    log_level = _quiet_logs(verbose)
    several = len(chunks(keys)) > 1
    failures, written = 0, 0
    first_failed: str | None = None
    stopped_at: str | None = None
    said: list[str] = []
    hints: list[str] = []
    with (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("windows, {task.fields[written]} written"),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
        stopping.graceful_signals(_announce_stop),
    ):
        task = progress.add_task("collecting", total=len(keys), written=0)

        def on_chunk(outcome) -> None:
            nonlocal failures, written, first_failed, stopped_at
            if stopping.requested() and not outcome.success:
                stopped_at = outcome.first_key
                return
            written += outcome.windows if outcome.success else 0
            progress.update(task, advance=outcome.windows, written=written)
            if outcome.unknown_market_ids:
                ids = ", ".join(outcome.unknown_market_ids)
                _warn(f"market {ids}: not found on Gamma (recorded in collection_runs)")
            if outcome.success:
                return
            failures += 1
            first_failed = first_failed or outcome.first_key
            if outcome.hint:
                hints.append(outcome.hint)
            if outcome.error not in said:
                said.append(outcome.error)
                where = f"{outcome.first_key} … {outcome.last_key}: " if several else ""
                _error(f"{where}{outcome.error}")

        outcomes = run_windows(
            keys,
            run_config=run_config,
            on_chunk=on_chunk,
            on_orphan=_announce_orphan,
            log_level=log_level,
        )
    if stopping.requested():
        done = sum(o.windows for o in outcomes if o.success)
        resume_at = stopped_at or (keys[done] if done < len(keys) else None)
        console.print(
            f"[yellow]stopped by {stopping.requested()}[/]: {done} of {len(keys)} "
            "windows written by complete runs; every window is whole (old or new rows)."
        )
        if resume_at is not None:
            # soft_wrap: a command or path stays on one line (copy-paste, logs).
            console.print(
                f"resume with: {_resume_command(resume_at, keys[-1], run_config)}",
                soft_wrap=True,
            )
        raise typer.Exit(stopping.exit_code())
    console.print(
        f"{len(chunks(keys))} run(s), {failures} failed; {written} of {len(keys)} windows written"
    )
    if failures and resume and first_failed is not None:
        console.print(
            f"resume with: {_resume_command(first_failed, keys[-1], run_config)}",
            soft_wrap=True,
        )
    _hint(hints[0] if hints else None, verbose)
    return RunTally(failures, written)


# A few days of the simulated world hold ~35 usable resolved markets a day.
DEMO_MIN_MARKETS = 40


@app.command()
def demo(
    days: Annotated[
        float, typer.Option(callback=positive, help="Days of 15-minute windows to collect.")
    ] = 4.0,
    seed: Annotated[int, typer.Option(**SEED, help="Seed of the simulated world.")] = 7,
    bias: Annotated[
        float,
        typer.Option(
            callback=BIAS_RANGE, help="Favourite-longshot distortion in (-1, 1) (0 = efficient)."
        ),
    ] = 0.0,
    noise: Annotated[float, typer.Option(callback=NOISE_RANGE, help=NOISE_HELP)] = 0.0,
    lag_s: Annotated[float, typer.Option(callback=LAG_RANGE, help=LAG_HELP)] = 0.0,
    updown_5m: Annotated[
        bool, typer.Option("--updown-5m/--no-updown-5m", help=UPDOWN_5M_HELP)
    ] = False,
    port: Annotated[int, typer.Option(**PORT, help="Replay server port (0 = any free port).")] = 0,
    now: Annotated[
        str | None,
        typer.Option(help="The world's clock, ISO UTC (a date to replay); default: now."),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Run the pipeline offline: a replay server, `days` of windows through Dagster, then
    the model (walk-forward evaluated), its paper backtest and the newest window's edge report.

    Default world (--bias 0 --noise 0 --lag-s 0): efficient, any skill shown would be a leak.

    Example: btc-tracker demo --days 4
    """
    world_now = _parse_now(now)
    wall = datetime.now(UTC).replace(tzinfo=None)
    if world_now is not None and world_now > wall:
        raise bad_value("--now", f"{now} is in the future (partitions end at the present)")
    _check_days(days, floor_to_window(world_now or wall) - WINDOW)
    _prepare()
    _check_models_folder()
    with _one_line_errors(verbose):
        failures, trained = _demo_runs(
            seed, days, bias, noise, port, verbose, world_now, lag_s=lag_s, updown_5m=updown_5m
        )
        _print_summary(environment.warehouse_path())
        if trained:
            _print_model_card()
            _print_edges(min_edge=None, limit=10)
        cli_health.print_health(console, cli_health.read_health(world_now or wall))
    console.print(
        "Open the Dagster UI on these runs, with a replay server behind the schedule: "
        "[bold]btc-tracker ui --replay[/] (then http://127.0.0.1:3000)"
    )
    if failures:
        raise typer.Exit(1)


def world_line(bias: float, noise: float, lag_s: float = 0.0) -> str:
    """The demo's one line saying which world it collects: efficient or beatable (any
    bias, noise or lag)."""
    if bias == 0 and noise == 0 and lag_s == 0:
        return (
            "world: efficient (bias 0, noise 0): no model can beat this market; "
            "any skill shown would be a leak"
        )
    lag = f", lag {lag_s:g} s" if lag_s else ""
    return f"world: bias {bias:g}, noise {noise:g}{lag} (distorted: the market is beatable)"


def _demo_runs(
    seed: int,
    days: float,
    bias: float,
    noise: float,
    port: int,
    verbose: bool,
    world_now: datetime | None = None,
    *,
    lag_s: float = 0.0,
    updown_5m: bool = False,
) -> tuple[int, bool]:
    """The demo's runs against its replay server: (failed runs, whether a model was trained).

    Stops with exit code 1 when no window of the history could be written."""
    from btc_tracker_pipeline.replay import ReplayServer
    from btc_tracker_pipeline.replay.demo_world import save_world
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld

    now = (world_now or datetime.now(UTC).replace(tzinfo=None)).replace(second=0, microsecond=0)
    world = SimulatedWorld(
        seed=seed,
        days=days + 2,
        now=now,
        bias=bias,
        noise=noise,
        lag_s=lag_s,
        updown_5m=updown_5m,
    )
    save_world(world, environment.warehouse_path())  # what `ui --replay` serves
    with ReplayServer(world, port=port) as server:
        environment.point_at_replay(server.url)
        console.print(
            f"replay server (seed {seed}) on {server.url}; world clock {now:%Y-%m-%d %H:%M} UTC"
        )
        console.print(world_line(bias, noise, lag_s), markup=False, highlight=False)
        last = floor_to_window(now) - WINDOW
        keys = _window_keys(last, days)
        console.print(f"collecting {len(keys)} windows {keys[0]} … {keys[-1]} through Dagster")
        started = time.monotonic()
        # History (CLOB prices-history) for the past, then the newest window as a live tick
        # (it is live when it ended at most 10 minutes ago).
        history = _run_with_progress(keys[:-1], verbose=verbose) if len(keys) > 1 else None
        if history is not None and history.written == 0:
            raise typer.Exit(1)
        console.print(
            f"training with a minimum of {DEMO_MIN_MARKETS} resolved markets (a small demo "
            "world; the default for real data is 200)"
        )
        not_trained = _train(DEMO_MIN_MARKETS, verbose)
        if not_trained is not None:
            _warn(not_trained.text)
        live = _run_with_progress(keys[-1:], verbose=verbose)
        console.print(f"done in {time.monotonic() - started:.1f} s")
    return (history.failed if history else 0) + live.failed, not_trained is None


def _train(min_markets: int | None = None, verbose: bool = False) -> Cause | None:
    """Run train_job (price_model + the paper_trades backtest), then recompute the newest
    window's edge report with the new model; None when it trained, else why not."""
    from btc_tracker_pipeline.failures import run_cause
    from btc_tracker_pipeline.runner import refresh_newest_edges, run_job

    log_level = _quiet_logs(verbose)
    config = None
    if min_markets is not None:
        config = {"ops": {"price_model": {"config": {"min_resolved_markets": min_markets}}}}
    with (
        console.status("training and evaluating the model (walk-forward)…"),
        stopping.graceful_signals(_announce_stop),
    ):
        result = run_job("train_job", run_config=config, log_level=log_level)
        refreshed = refresh_newest_edges(log_level=log_level) if result.success else None
    if stopping.requested():
        console.print(f"[yellow]stopped by {stopping.requested()}[/] after training")
        raise typer.Exit(stopping.exit_code())
    if not result.success:
        return run_cause(result)
    if refreshed is not None and not refreshed.success:
        _warn(f"trained, but the edge report of {refreshed.first_key} failed: {refreshed.error}")
    elif refreshed is not None:
        console.print(f"edge report of window {refreshed.first_key} refreshed with the new model")
    return None


def _print_model_card() -> None:
    from btc_tracker_pipeline.model.artifact import ModelArtifactError, load_latest
    from btc_tracker_pipeline.model.skill_text import (
        interval_text,
        oracle_cell,
        skill_cell,
        skill_test_line,
    )

    try:
        _, card = load_latest(environment.models_path())
    except ModelArtifactError as exc:
        raise _fail(str(exc)) from exc
    table = Table(title="model (walk-forward, out of sample)")
    report = card["metrics"]
    blocks = [("overall", report["overall"]), *sorted(report["by_family"].items())]
    # Simulated worlds only: the fair value's skill (the ceiling) and the share captured.
    oracle = any(b.get("bss_oracle") is not None for _, b in blocks)
    columns = [
        "slice",
        "markets",
        "Brier model",
        "Brier market",
        "BSS vs market [95 % CI]",
        "skill proven [corrected CI]",
        *(["oracle BSS [95 % CI], captured"] if oracle else []),
        "ECE",
        "AUC model / market",
    ]
    for col in columns:
        table.add_column(col, justify="right")
    for name, b in blocks:
        bss = b.get("bss_vs_market")
        table.add_row(
            name,
            str(b["n_markets"]),
            f"{b['brier_model']:.4f}",
            f"{b['brier_market']:.4f}",
            f"{bss:+.3f}{interval_text(b)}" if bss is not None else "",
            skill_cell(b),
            *([oracle_cell(b)] if oracle else []),
            f"{b['ece_model']:.3f}" if b.get("ece_model") is not None else "",
            f"{b['auc_model'] or 0:.3f} / {b['auc_market'] or 0:.3f}",
        )
    console.print(table)
    console.print(skill_test_line(report))
    shift = (report.get("shift") or {}).get("mean_shift")
    if shift is not None:
        console.print(
            f"Mean shift of the predictions from the market: {100 * shift:+.2f} points "
            "(per fold and family in `btc-tracker model --json`)."
        )
    excluded = card.get("excluded_families") or {}
    if excluded:
        listed = "; ".join(f"{family}: {why}" for family, why in excluded.items())
        console.print(f"No model for families below the minimums ({listed}).")


def _latest_edges(min_edge: float | None) -> tuple[str | None, list[dict]]:
    from btc_tracker_pipeline.warehouse import WarehouseError, warehouse

    try:
        with warehouse(environment.warehouse_path(), read_only=True, wait_s=30) as conn:
            latest = conn.execute("SELECT max(window_start) FROM edge_report").fetchone()[0]
            if latest is None:
                return None, []
            frame = conn.execute(
                "SELECT * FROM edge_report WHERE window_start = ? ORDER BY net_edge DESC",
                [latest],
            ).pl()
    except WarehouseError as exc:
        raise _fail(str(exc)) from exc
    if min_edge is not None:
        # Recompute from the stored inputs: PASS for other reasons (expired, touched) stays
        # PASS, and so does a family the rows' model proved no skill on (no_proven_skill).
        from btc_tracker_pipeline.model.edges import REPORT_INPUTS, EdgeConfig, edge_report

        versions = frame["model_version"].drop_nulls().unique().to_list()
        proven = _proven_families(versions[0] if len(versions) == 1 else None)
        frame = edge_report(frame.select(REPORT_INPUTS), EdgeConfig(min_edge=min_edge), proven)
    return f"{latest:%Y-%m-%d %H:%M}", frame.to_dicts()


def _proven_families(version: str | None) -> frozenset[str]:
    """The families the card of model ``version`` (the one that scored the stored rows)
    proved skill on; none when that model is gone or its card has no skill test."""
    import json

    from btc_tracker_pipeline.model.artifact import CARD_FILE, model_dirs
    from btc_tracker_pipeline.model.edges import proven_families

    folder = next((d for d in model_dirs(environment.models_path()) if d.name == version), None)
    if folder is None:
        return frozenset()
    try:
        card = json.loads((folder / CARD_FILE).read_text())
    except (OSError, ValueError):
        return frozenset()
    return proven_families(card if isinstance(card, dict) else None)


def _print_edges(min_edge: float | None, limit: int) -> None:
    window, rows = _latest_edges(min_edge)
    if window is None:
        console.print("no edge report yet: run a collection after price_model has trained")
        return
    buys = [r for r in rows if r["recommendation"] != "PASS"]
    table = Table(title=f"edge report, window {window} UTC: {len(buys)} of {len(rows)} markets")
    for col in (
        "market",
        "question",
        "family",
        "side",
        "mid",
        "ask/bid",
        "model",
        "struct",
        "net edge",
        "EV/$",
        "stake",
        "flags",
    ):
        # Ids and numbers are never cut; on a narrow terminal the question wraps.
        wraps = col == "question"
        table.add_column(col, no_wrap=not wraps, min_width=12 if wraps else None)
    for r in (buys or rows)[:limit]:
        price = r["ask"] if r["side"] == "YES" else r["bid"]
        table.add_row(
            r["market_id"],
            escape(r.get("question") or ""),
            r["family"] or "",
            r["recommendation"],
            f"{r['market_prob']:.3f}",
            f"{price:.3f}" if price is not None else "",
            f"{r['model_prob']:.3f}" if r["model_prob"] is not None else "",
            f"{r['structural_probability']:.3f}" if r["structural_probability"] is not None else "",
            f"{r['net_edge']:+.3f}" if r["net_edge"] is not None else "",
            f"{r['ev_per_dollar']:+.3f}" if r.get("ev_per_dollar") is not None else "",
            f"{r['stake']:.2f}" if r["stake"] is not None else "",
            r["flags"] or "",
        )
    console.print(table)
    gated = sorted({r["family"] or "" for r in rows if "no_proven_skill" in (r["flags"] or "")})
    if gated:
        console.print(
            f"PASS with no_proven_skill: the model's walk-forward test proved no skill "
            f"against the market in {', '.join(gated)} (btc-tracker model: skill test)"
        )


@app.command()
def model(
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """The newest trained model's card: features, data window, walk-forward metrics with
    95 % intervals, versions.

    Example: btc-tracker model --json
    """
    import json

    from btc_tracker_pipeline.model.artifact import ModelArtifactError, load_latest, model_dirs

    _check_configuration()
    try:
        fitted, card = load_latest(environment.models_path())
    except ModelArtifactError as exc:
        raise _fail(str(exc)) from exc
    # The booster's own gain per feature: what price_model's metadata shows in the UI.
    importance = fitted.feature_importance().to_dicts()
    card = {
        "model_version": model_dirs(environment.models_path())[-1].name,
        **card,
        "feature_importance": importance,
    }
    if as_json:
        print(json.dumps(card, indent=2, default=str))
        return
    console.print(
        f"model {card['model_version']}: {card['n_markets']} markets, {card['n_rows']} rows, "
        f"data {card['data_window']['first_snapshot']} … {card['data_window']['last_snapshot']}"
    )
    _print_model_card()
    backtest = cli_paper.backtest_line()
    if backtest:
        console.print(backtest, soft_wrap=True, markup=False, highlight=False)
    _print_feature_importance(importance)


def _print_feature_importance(importance: list[dict]) -> None:
    """Gain share per feature, largest first; unused features on one line."""
    used = [row for row in importance if row["gain"] > 0]
    if not used:
        console.print("feature importance: no tree was grown (the model is the market price)")
        return
    table = Table(title="feature importance (gain share)")
    for col in ("feature", "gain share", "splits"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for row in used:
        table.add_row(row["feature"], f"{row['gain_share']:.3f}", str(row["splits"]))
    console.print(table)
    unused = [row["feature"] for row in importance if row["gain"] <= 0]
    if unused:
        console.print(f"unused by the trees: {', '.join(unused)}", soft_wrap=True)


@app.command()
def train(
    min_markets: Annotated[
        int | None,
        typer.Option(
            min=1, help="Train with fewer resolved markets than the default 200 (small data)."
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Retrain and evaluate the model now (train_job: price_model + the paper_trades backtest).

    Example: btc-tracker train
    """
    _prepare()
    _check_models_folder()
    with _one_line_errors(verbose):
        not_trained = _train(min_markets, verbose)
    if not_trained is not None:
        _error(not_trained.text)
        _hint(not_trained.hint, verbose)
        raise typer.Exit(1)
    _print_model_card()


# The APIs' defaults, as in defs.resources (not imported: it loads Dagster).
DEFAULT_CLOB_URL = "https://clob.polymarket.com"
DEFAULT_BINANCE_URL = "https://api.binance.com"


def live_edges_now(min_edge: float | None = None):
    """The live view at the CLOB's current minute (``model.live_edges``), reading the
    warehouse read-only; one-line exits for no warehouse, no open market, APIs down."""
    from btc_tracker_pipeline.model.edges import EdgeConfig
    from btc_tracker_pipeline.model.live_edges import (
        LiveEdgesError,
        compute_live_edges,
        live_clients,
        minute_of,
        read_inputs,
    )
    from btc_tracker_pipeline.sources.errors import ApiError
    from btc_tracker_pipeline.warehouse import WarehouseError, warehouse

    # API retries stay off the terminal (a handler on the root logger stops Python's
    # last-resort printing); what failed is on its row, or the one error line.
    root = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
    path = environment.warehouse_path()
    if not path.exists():
        raise _fail(f"no warehouse at {path}: run a collection first (btc-tracker collect)")
    clob_url = os.environ.get(environment.ENV_CLOB) or DEFAULT_CLOB_URL
    binance_url = os.environ.get(environment.ENV_BINANCE) or DEFAULT_BINANCE_URL
    clob, binance = live_clients(clob_url, binance_url, environment.http_timeout_s())
    try:
        try:
            minute = minute_of(clob.server_time())
        except ApiError as exc:
            raise _fail(f"the CLOB at {clob_url} does not answer: {exc}") from exc
        try:
            with warehouse(path, read_only=True, wait_s=30) as conn:
                inputs = read_inputs(conn, minute)
        except WarehouseError as exc:
            raise _fail(str(exc)) from exc
        config = EdgeConfig() if min_edge is None else EdgeConfig(min_edge=min_edge)
        return compute_live_edges(
            inputs,
            clob,
            binance,
            environment.models_path(),
            config=config,
            max_age=timedelta(minutes=environment.max_quote_age_min()),
        )
    except LiveEdgesError as exc:
        raise _fail(str(exc)) from exc
    finally:
        clob.http.close()


def _pct(value: float | None, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


def _print_live_edges(live, limit: int) -> None:
    rows = live.rows.to_dicts()
    buys = [r for r in rows if r["recommendation"] != "PASS"]
    minute = rows[0]["minute_ts"] if rows else None
    scored = (
        f"model {live.model_version}"
        if live.model_version
        else "no model: structural probabilities (prob_source)"
    )
    table = Table(
        title=f"live edges at {minute:%Y-%m-%d %H:%M} UTC: {len(buys)} of {len(rows)} "
        f"open up/down markets to buy; {scored}"
    )
    for col in (
        "market",
        "family",
        "left",
        "spot",
        "open",
        "mid",
        "bid/ask",
        "struct",
        "prob",
        "side",
        "net edge",
        "fee",
        "stake",
        "rec",
        "flags / error",
    ):
        wraps = col == "flags / error"
        table.add_column(col, no_wrap=not wraps, min_width=12 if wraps else None)
    for r in rows[:limit]:
        bid_ask = (
            f"{r['best_bid']:.3f}/{r['best_ask']:.3f}"
            if r["best_bid"] is not None and r["best_ask"] is not None
            else ""
        )
        table.add_row(
            r["market_id"],
            r["family"] or "",
            f"{r['minutes_left']:.0f}m" if r["minutes_left"] is not None else "",
            _pct(r["btc_spot"], ",.2f"),
            _pct(r["open_price"], ",.2f"),
            _pct(r["market_prob"]),
            bid_ask,
            _pct(r["structural_probability"]),
            _pct(r["model_prob"]) + ("" if r["prob_source"] != "structural" else " s"),
            r["side"] or "",
            _pct(r["net_edge"], "+.3f"),
            _pct(r["fee"], ".4f"),
            _pct(r["stake"], ".2f"),
            r["recommendation"] or "",
            escape("; ".join(x for x in (r["flags"], r["error"]) if x)),
        )
    console.print(table)
    if any(r["prob_source"] == "structural" for r in rows):
        console.print("prob marked s: the structural probability (no model, or none for it)")


@app.command()
def edges(
    min_edge: Annotated[
        float | None,
        typer.Option(
            callback=MIN_EDGE_RANGE, help="Only recommend net edges at least this large, in [0, 1)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON.")] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Now, for every open up/down market: the live book, spot, model and "
            "structural probabilities, net edge, side and stake (reads the warehouse, "
            "writes nothing).",
        ),
    ] = False,
) -> None:
    """The newest edge report: each market's question, market vs model, net edge after
    fees, EV per $ on the better side (net edge / all-in price), recommendation, stake.
    With --live, the edges of the open up/down markets at the current minute instead.

    Example: btc-tracker edges --min-edge 0.05
    """
    import json

    _check_configuration()
    if live:
        result = live_edges_now(min_edge)
        if as_json:
            rows = result.rows.to_dicts()
            minute = rows[0]["minute_ts"] if rows else None
            payload = {"minute_ts": minute, "model_version": result.model_version}
            print(json.dumps(payload | {"rows": rows[:limit]}, default=str, indent=2))
            return
        _print_live_edges(result, limit)
        return
    if as_json:
        window, rows = _latest_edges(min_edge)
        print(json.dumps({"window_start": window, "rows": rows[:limit]}, default=str, indent=2))
        return
    _print_edges(min_edge, limit)


@app.command()
def dataset(
    out: Annotated[Path, typer.Option(help="Output file: .parquet or .csv.")],
) -> None:
    """Write the ML dataset the model trains on (features + labels, one row per
    market snapshot, the price_model rules applied).

    Example: btc-tracker dataset --out dataset.parquet
    """
    from btc_tracker_pipeline.defs.model.inputs import training_paths, training_tables
    from btc_tracker_pipeline.model.dataset import build_dataset
    from btc_tracker_pipeline.warehouse import WarehouseError, warehouse

    if out.suffix not in (".parquet", ".csv"):
        raise _fail(f"--out {out}: use a .parquet or .csv file name")
    _check_configuration()
    try:
        with warehouse(environment.warehouse_path(), read_only=True, wait_s=30) as conn:
            frame = build_dataset(*training_tables(conn), training_paths(conn))
    except WarehouseError as exc:
        raise _fail(str(exc)) from exc
    if out.suffix == ".parquet":
        frame.write_parquet(out)
    else:
        frame.write_csv(out)
    console.print(
        f"{frame.height:,} rows, {frame['market_id'].n_unique():,} resolved markets, "
        f"{frame.width} columns written to {out}",
        soft_wrap=True,
    )


def _market_config(market_ids: str | None) -> dict | None:
    if not market_ids:
        return None
    ids = [i.strip() for i in market_ids.split(",") if i.strip()]
    bad = [i for i in ids if not i.isdigit()]
    if bad or not ids:
        raise _fail(
            f"--market-ids: not Gamma market ids (digits only): {', '.join(bad) or '(none)'}"
        )
    console.print(
        f"collecting {len(ids)} chosen market(s): only their rows are added or replaced; "
        "the other markets' rows in these windows stay as they are"
    )
    return market_selection.run_config(ids)


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
    verbose: VerboseOption = False,
) -> None:
    """Collect one window now, in this process (the schedule's tick, by hand).

    Example: btc-tracker collect --partition 2026-02-28-23:30 --market-ids 1344329,1344330
    """
    run_config = _market_config(market_ids)
    key = partition or key_of(floor_to_window(datetime.now(UTC)) - WINDOW)
    keys = _keys(key, key)
    _prepare()
    with _one_line_errors(verbose):
        tally = _run_with_progress(keys, run_config, verbose=verbose)
        if tally.written:
            _print_summary(environment.warehouse_path())
    if tally.failed:
        raise typer.Exit(1)


@app.command()
def backfill(
    from_key: Annotated[str, typer.Option("--from", help="First window key YYYY-MM-DD-HH:MM.")],
    to_key: Annotated[str, typer.Option("--to", help="Last window key (inclusive).")],
    market_ids: Annotated[str | None, typer.Option(help=MARKET_IDS_HELP)] = None,
    verbose: VerboseOption = False,
) -> None:
    """Backfill a range of windows through Dagster: one run per day of windows.

    Same job, assets and runs as a UI backfill (BackfillPolicy of 96 windows), run in
    this process and recorded in the instance. Rerunning a range replaces its windows.

    Example: btc-tracker backfill --from 2026-02-25-00:00 --to 2026-02-28-23:45
    """
    run_config = _market_config(market_ids)
    keys = _keys(from_key, to_key)
    _prepare()
    started = time.monotonic()
    with _one_line_errors(verbose):
        tally = _run_with_progress(keys, run_config, verbose=verbose, resume=True)
        elapsed = time.monotonic() - started
        console.print(
            f"{len(keys)} windows in {elapsed:.1f} s "
            f"({len(keys) / max(elapsed, 1e-9):.1f} windows/s)"
        )
        if tally.written:
            _print_summary(environment.warehouse_path())
    if tally.failed:
        raise typer.Exit(1)


def _ui_world(seed: int | None):
    """The world `ui --replay` serves and how to name it: the demo's recorded world, or a
    new one of ``seed`` (default 7) with 7 days of history."""
    from btc_tracker_pipeline.replay.demo_world import load_world, world_file
    from btc_tracker_pipeline.replay.simulated import SimulatedWorld

    if seed is None:
        warehouse = environment.warehouse_path()
        try:
            world = load_world(warehouse)
        except ValueError as exc:
            raise _fail(f"{exc}; delete it or pass --seed") from exc
        if world is not None:
            return world, (
                f"the demo's world (seed {world.seed}, bias {world.bias:g}, noise "
                f"{world.noise:g}, {f'lag {world.lag_s:g} s, ' if world.lag_s else ''}from "
                f"{world.start:%Y-%m-%d} UTC; {world.identity()}, {world_file(warehouse).name})"
            )
    world = SimulatedWorld(seed=7 if seed is None else seed, days=7)
    return world, f"a new world (seed {world.seed}, 7 days; {world.identity()})"


@app.command()
def ui(
    port: Annotated[int, typer.Option(**PORT, help="Web UI port on 127.0.0.1.")] = 3000,
    replay: Annotated[
        bool, typer.Option(help="Also serve a simulated world and point the APIs at it.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(**SEED, help="Seed of a new --replay world (default: the last demo's world)."),
    ] = None,
) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this project's instance.

    With --replay, the schedule and backfills read a simulated world that follows the
    wall clock instead of the real APIs (offline use): the world the last `btc-tracker
    demo` collected into this warehouse, else (or with --seed) a new one of 7 days.

    Example: btc-tracker ui --replay --port 3000
    """
    _prepare()
    root = environment.project_root()
    if replay:
        from btc_tracker_pipeline.replay import ReplayServer

        world, described = _ui_world(seed)
        server = ReplayServer(world)
        server.start()
        environment.point_at_replay(server.url)
        console.print(f"replay server on {server.url}: {described}, following the wall clock")
    _show_partitions_from_first_window()
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
    # Not from the root: Dagster would read the root's .env there, and its DAGSTER_HOME
    # would override the instance and paths this command chose.
    raise typer.Exit(_run_stoppable(cmd, Path(os.environ[environment.ENV_STORAGE])))


def _show_partitions_from_first_window() -> None:
    """Unless BTC_TRACKER_FIRST_PARTITION is set, start the UI's partitions at the day of
    the warehouse's first collected window, so that the UI counts the windows the user
    has rather than every window since 2025 (a demo would read "0 % of 67,000")."""
    if os.environ.get(ENV_FIRST_PARTITION, "").strip():
        return
    from btc_tracker_pipeline.warehouse import warehouse

    path = environment.warehouse_path()
    if not path.exists():
        return
    try:
        with warehouse(path, read_only=True, wait_s=5) as conn:
            row = conn.execute("SELECT min(window_start) FROM collection_runs").fetchone()
    except Exception as exc:  # a busy or unreadable warehouse only costs the nicer view
        console.print(f"partitions start at {PARTITION_START} (warehouse not read: {exc})")
        return
    if row is None or row[0] is None:
        return
    os.environ[ENV_FIRST_PARTITION] = f"{row[0]:%Y-%m-%d}"
    console.print(
        f"partitions start at {row[0]:%Y-%m-%d} 00:00 UTC, the day of the warehouse's first "
        f"window (set {ENV_FIRST_PARTITION} to change)"
    )


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


app.command(name="markets")(cli_read.markets_command)
app.command(name="stats")(cli_read.stats_command)
app.command(name="history")(cli_read.history_command)
app.command(name="export")(cli_read.export_command)
app.command(name="paper")(cli_paper.paper_command)
app.command(name="health")(cli_health.health_command)


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for ``python -m btc_tracker_pipeline.cli``."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
