"""The read-only ``btc-tracker`` commands: ``markets``, ``stats``, ``history``, ``export``.

These are plain typer command functions; ``btc_tracker_pipeline.cli`` registers them::

    app.command(name="markets")(cli_read.markets_command)
    app.command(name="stats")(cli_read.stats_command)
    app.command(name="history")(cli_read.history_command)
    app.command(name="export")(cli_read.export_command)

They open the warehouse read-only (waiting for a running collection's write lock),
never write to it, print rich tables (or JSON with ``--json``) on stdout, progress
on stderr, and turn every expected failure into one ``error: …`` line and exit 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.cli_output import PipeConsole, finite, print_error
from btc_tracker_pipeline.partitions import key_of, window_of

if TYPE_CHECKING:  # the heavy imports (polars, duckdb, ccxt via sources) wait for a command
    import duckdb
    import polars as pl
    from matplotlib.figure import Figure

    from btc_tracker_pipeline import queries
    from btc_tracker_pipeline.sources.gamma import GammaClient

# Same default as defs.resources.DEFAULT_GAMMA_URL (not imported: it pulls in Dagster).
DEFAULT_GAMMA_URL = "https://gamma-api.polymarket.com"
READ_WAIT_S = 30.0
MAX_WAIT_S = 86_400.0  # a day: longer than any collection holds the write lock
GAPS_SHOWN = 20

# Full width when stdout/stderr is a pipe or a file: no value is cut with "…" in a log.
console = PipeConsole()
err_console = PipeConsole(stderr=True)

# features.market_terms.FAMILIES, repeated so `btc-tracker --help` does not import the API
# clients (ccxt); test_cli_read checks that the two agree.
FAMILY_NAMES = (
    "updown_5m",
    "updown_15m",
    "updown_1h",
    "updown_4h",
    "updown_daily",
    "above",
    "below",
    "range",
    "reach",
    "dip",
    "other",
)
Family = StrEnum("Family", [(f, f) for f in FAMILY_NAMES])  # type: ignore[misc]


class ExportFormat(StrEnum):
    """File formats of ``btc-tracker export``."""

    csv = "csv"
    json = "json"
    parquet = "parquet"


SUFFIX_FORMATS = {
    ".csv": ExportFormat.csv,
    ".json": ExportFormat.json,
    ".jsonl": ExportFormat.json,
    ".ndjson": ExportFormat.json,
    ".parquet": ExportFormat.parquet,
}

# The warehouse's user data, in the order `export --help` lists it (test_cli_read checks
# that these and INTERNAL_TABLES are every table of the schema).
EXPORT_TABLES = (
    "markets",
    "tracked_markets",
    "market_snapshots",
    "market_paths",
    "btc_spot_prices",
    "btc_spot_windows",
    "market_resolutions",
    "market_indicators",
    "collection_runs",
    "edge_report",
    "live_edges",
    "model_predictions",
    "paper_trades",
    "paper_ledger",
)
# Bookkeeping, not data: the backfill's caches and the schema version.
INTERNAL_TABLES = {
    "history_quotes": "a backfill cache",
    "history_spans": "a backfill cache",
    "kline_cache": "a backfill cache",
    "kline_spans": "a backfill cache",
    "schema_migrations": "the schema version",
}

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (for scripts) instead of tables.")
]
WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        max=MAX_WAIT_S,
        callback=finite,
        help="Seconds to wait for a running collection's write lock before giving up.",
    ),
]


# --------------------------------------------------------------------------- plumbing


def _fail(message: str, code: int = 1) -> typer.Exit:
    """One ``error: …`` line on stderr (never wrapped) and the exit to raise, as cli._fail."""
    print_error(err_console, message)
    return typer.Exit(code)


def _check_configuration() -> None:
    """Refuse a bad BTC_TRACKER_* variable with one line, before any file or request."""
    try:
        environment.check_configuration()
    except environment.ConfigurationError as exc:
        raise _fail(str(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def _emit_json(data: Any) -> None:
    """JSON on stdout, unstyled, one document."""
    typer.echo(json.dumps(data, default=_json_default, indent=2))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@contextlib.contextmanager
def _status(text: str) -> Iterator[Callable[[str], None]]:
    """A transient spinner with elapsed time on stderr while the body runs; yields a
    function that changes its text. Silent when stderr is not a terminal."""
    if not err_console.is_terminal:
        yield lambda _text: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(text)
        yield lambda new: progress.update(task, description=new)


# Table column: (header, "left" | "right", minimum width when it may wrap, None: never wraps).
Column = tuple[str, str, int | None]


def _table(title: str, columns: Sequence[Column], **kwargs: Any) -> Table:
    """A compact table; only columns with a minimum width wrap when the terminal is narrow."""
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        **kwargs,
    )
    for name, justify, wrap_min in columns:
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=wrap_min is None,
            min_width=wrap_min,
            overflow="fold",
        )
    return table


def _connect(path: Path, wait_s: float) -> duckdb.DuckDBPyConnection:
    """Open read-only; if a writer holds the lock, say so and wait up to ``wait_s``."""
    from btc_tracker_pipeline.warehouse import WarehouseBusyError, open_warehouse

    try:
        return open_warehouse(path, read_only=True, wait_s=0)
    except WarehouseBusyError:
        if wait_s <= 0:
            raise
    with _status(f"the warehouse is locked by a writer; waiting up to {wait_s:g} s"):
        return open_warehouse(path, read_only=True, wait_s=wait_s)


@contextlib.contextmanager
def _reading(wait_s: float) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    """The warehouse, read-only; WarehouseError and DuckDB errors become one-line exits."""
    import duckdb

    from btc_tracker_pipeline.warehouse import WarehouseError

    _check_configuration()
    path = environment.warehouse_path()
    try:
        conn = _connect(path, wait_s)
    except WarehouseError as exc:
        raise _fail(str(exc)) from exc
    try:
        yield conn, path
    except duckdb.Error as exc:
        raise _fail(f"cannot read the warehouse {path}: {_first_line(exc)}") from exc
    finally:
        conn.close()


def _fmt(value: Any, spec: str = "", none: str = "—") -> str:
    if value is None:
        return none
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return format(value, spec)


def _strike(row: dict[str, Any]) -> str:
    low, high = row.get("strike"), row.get("strike_high")
    if low is None:
        return "—"
    return f"{low:,.0f}–{high:,.0f}" if high is not None else f"{low:,.0f}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# --------------------------------------------------------------------------- markets


def _gamma_client() -> GammaClient:
    """A Gamma client on BTC_TRACKER_GAMMA_URL, with fewer retries than a collection run."""
    from btc_tracker_pipeline.sources.gamma import GammaClient
    from btc_tracker_pipeline.sources.http import HttpSettings, JsonHttp, make_client

    _check_configuration()
    settings = HttpSettings(timeout_s=environment.http_timeout_s(), max_attempts=3)
    url = os.environ.get(environment.ENV_GAMMA) or DEFAULT_GAMMA_URL
    return GammaClient(JsonHttp(make_client(settings), settings), url)


def _markets_table(frame: pl.DataFrame, closed: bool) -> Table:
    state = "closed" if closed else "open"
    table = _table(
        f"{frame.height} {state} BTC markets, largest volume first",
        [
            ("id", "right", None),
            ("question", "left", 16),
            ("family", "left", None),
            ("strike", "right", 6),
            ("expiry UTC", "left", 10),
            ("volume", "right", None),
            ("price", "right", None),
        ],
    )
    for row in frame.iter_rows(named=True):
        table.add_row(
            row["market_id"],
            escape(row["question"] or ""),
            row["family"],
            _strike(row),
            _fmt(row["expiry"]),
            _fmt(row["volume"], ",.0f"),
            _fmt(row["yes_price"], ".3f"),
        )
    return table


def _print_ids(ids: Sequence[str]) -> None:
    """The ids as run config and as a collect command, unwrapped so they paste cleanly."""
    from btc_tracker_pipeline import queries

    plain: dict[str, Any] = {"soft_wrap": True, "markup": False, "highlight": False}
    console.print(
        "\nRun config (Dagster launchpad) to collect just these markets (their rows are added "
        "or replaced; other markets' rows in the windows stay):"
    )
    console.print(queries.run_config_yaml(ids), **plain)
    console.print("\nOr collect them now:")
    console.print(queries.collect_command(ids), **plain)


def markets_command(
    keywords: Annotated[
        str, typer.Option(help="Comma-separated words; a market must name one of them.")
    ] = "bitcoin,btc",
    family: Annotated[
        list[Family] | None,
        typer.Option("--family", help="Only this family; repeat the option for several."),
    ] = None,
    active: Annotated[
        bool, typer.Option("--active/--closed", help="Open markets (default) or closed ones.")
    ] = True,
    min_volume: Annotated[
        float | None,
        typer.Option(min=0, callback=finite, help="Only markets with at least this volume (USDC)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Show the N largest by volume (0 = all).")] = 50,
    json_output: JsonOption = False,
) -> None:
    """Find Polymarket BTC markets on Gamma and print their ids ready to track.

    Lists Gamma by the bitcoin tag (235), filters by keyword, family and volume, and
    prints the run config and the `btc-tracker collect --market-ids` line for them.
    Gamma's address comes from BTC_TRACKER_GAMMA_URL (default: the real API).

    Example: btc-tracker markets --family above --family reach --min-volume 50000 --limit 20
    """
    from btc_tracker_pipeline import queries
    from btc_tracker_pipeline.collect.discovery import BITCOIN_TAG_ID
    from btc_tracker_pipeline.sources.errors import ApiError

    words = [w.strip() for w in keywords.split(",") if w.strip()]
    if not words:
        raise _fail("--keywords: give at least one word, e.g. bitcoin,btc")
    gamma = _gamma_client()
    listing = f"listing {gamma.base_url} (tag {BITCOIN_TAG_ID})"
    try:
        with _status(listing) as show:
            frame = queries.find_markets(
                gamma,
                keywords=words,
                families=[str(f) for f in family or ()],
                closed=not active,
                min_volume=min_volume,
                limit=limit or None,
                on_market=lambda n: show(f"{listing}: {n} markets"),
            )
    except ApiError as exc:
        raise _fail(f"Gamma listing failed: {exc}") from exc
    finally:
        gamma.http.close()
    ids = frame["market_id"].to_list()
    if json_output:
        _emit_json(
            {
                "gamma_url": gamma.base_url,
                "markets": frame.to_dicts(),
                "market_ids": ids,
                "run_config": queries.run_config(ids),
                "collect_command": queries.collect_command(ids) if ids else None,
            }
        )
        return
    if not ids:
        console.print("no markets matched; try other --keywords/--family or a lower --min-volume")
        return
    console.print(_markets_table(frame, closed=not active))
    _print_ids(ids)


# --------------------------------------------------------------------------- stats


def _overview_table(s: queries.WarehouseStats) -> Table:
    table = _table("", [("what", "left", None), ("value", "left", 20)])
    table.add_row("database size", _size(s.size_bytes))
    table.add_row("snapshots", f"{s.snapshots:,}")
    table.add_row("markets with snapshots", f"{s.markets:,}")
    covered = f"{s.windows:,}"
    if s.first_window is not None and s.last_window is not None:
        covered += f" ({key_of(s.first_window)} … {key_of(s.last_window)} UTC)"
    table.add_row("windows covered", covered)
    table.add_row("missing windows", f"{s.missing_windows:,} in {len(s.gaps)} gap(s)")
    table.add_row("thin windows", f"{len(s.thin_windows):,} (fewer markets than were open in them)")
    share = "—" if s.good_quality_share is None else f"{s.good_quality_share:.1%}"
    table.add_row("quality ≥ 0.8", f"{share} of {s.quality_rows:,} indicator rows")
    labels = ", ".join(f"{k}: {v}" for k, v in s.labels_by_status.items()) or "0"
    table.add_row("labels by status", labels)
    checks = ", ".join(f"{k}: {v}" for k, v in s.label_checks.items()) or "—"
    table.add_row("label checks (klines)", checks)
    return table


def _gaps_table(gaps: Sequence[queries.Gap]) -> Table:
    table = _table(
        f"{len(gaps)} gap(s) in market_snapshots",
        [
            ("first missing", "left", None),
            ("last missing", "left", None),
            ("windows", "right", None),
        ],
    )
    for gap in gaps[:GAPS_SHOWN]:
        table.add_row(key_of(gap.first), key_of(gap.last), str(gap.windows))
    if len(gaps) > GAPS_SHOWN:
        table.add_row(f"… {len(gaps) - GAPS_SHOWN} more", "(--json lists all)", "")
    return table


def _thin_table(thin: Sequence[queries.ThinWindow]) -> Table:
    table = _table(
        f"{len(thin)} thin window(s): rerun them with btc-tracker collect --partition KEY",
        [
            ("window", "left", None),
            ("open markets", "right", None),
            ("tracked", "right", None),
            ("quoted", "right", None),
        ],
    )
    for w in thin[:GAPS_SHOWN]:
        table.add_row(key_of(w.window_start), f"{w.expected:,}", f"{w.tracked:,}", f"{w.quoted:,}")
    if len(thin) > GAPS_SHOWN:
        table.add_row(f"… {len(thin) - GAPS_SHOWN} more", "(--json lists all)", "", "")
    return table


def _quality_table(s: queries.WarehouseStats) -> Table:
    table = _table(
        "quality_score distribution",
        [("quality_score", "right", None), ("rows", "right", None), ("share", "right", None)],
    )
    for bucket in s.quality:
        share = bucket.rows / s.quality_rows if s.quality_rows else 0.0
        table.add_row(_fmt(bucket.score, ".2f", "none"), f"{bucket.rows:,}", f"{share:.1%}")
    return table


def _runs_table(runs: Sequence[queries.RunRow]) -> Table:
    table = _table(
        f"last {len(runs)} collection_runs",
        [
            ("asset", "left", 8),
            ("window", "left", None),
            ("status", "left", None),
            ("tried/ok", "right", None),
            ("secs", "right", None),
            ("first error", "left", 12),
        ],
    )
    for r in runs:
        style = {"ok": "green", "partial": "yellow"}.get(r.status, "red")
        table.add_row(
            r.asset,
            r.window,
            f"[{style}]{escape(r.status)}[/]",
            f"{r.markets_tried}/{r.markets_ok}",
            f"{r.duration_s:.2f}",
            escape(r.first_error or ""),
        )
    return table


def stats_command(json_output: JsonOption = False, wait: WaitOption = READ_WAIT_S) -> None:
    """What the warehouse holds: coverage, gaps, data quality, labels and recent runs.

    Gaps are 15-minute windows with no snapshot between the first and the last one;
    thin windows have rows, but fewer markets than were open in them.
    Reads BTC_TRACKER_WAREHOUSE (default data/warehouse.duckdb) read-only.

    Example: btc-tracker stats --json
    """
    from btc_tracker_pipeline import queries

    with _reading(wait) as (conn, path), _status("reading the warehouse"):
        stats = queries.warehouse_stats(conn, path)
    if json_output:
        _emit_json(stats.to_json())
        return
    console.print(f"warehouse {stats.path}", markup=False, highlight=False, soft_wrap=True)
    console.print(_overview_table(stats))
    if stats.gaps:
        console.print(_gaps_table(stats.gaps))
    if stats.thin_windows:
        console.print(_thin_table(stats.thin_windows))
    console.print(_quality_table(stats))
    console.print(_runs_table(stats.recent_runs))


# --------------------------------------------------------------------------- history


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise _fail(
            "--plot needs matplotlib, which is not installed: pip install matplotlib"
        ) from exc


def _check_writable(path: Path, option: str) -> Path:
    path = path.expanduser().resolve()
    if path.is_dir():
        raise _fail(f"{option} {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise _fail(f"{option}: the folder {path.parent} does not exist")
    return path


def plot_history(frame: pl.DataFrame, info: queries.MarketInfo, out: Path) -> None:
    """Write a PNG of the YES price and structural probability over time, BTC spot on a
    second axis, the resolution (or else the expiry, when in range) marked. Needs
    matplotlib; draws on a bare Figure (no pyplot state, no display needed)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    x = frame["snapshot_ts"].to_list()
    fig = Figure(figsize=(11, 5.5), dpi=100)
    ax = fig.add_subplot()
    marker = "o" if len(x) <= 48 else None
    ax.plot(x, frame["yes_price"].to_list(), label="YES price", color="tab:blue", marker=marker)
    ax.plot(
        x,
        frame["structural_probability"].to_list(),
        label="structural probability",
        color="tab:green",
        linestyle="--",
    )
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("probability")
    ax.set_xlabel("window end (UTC)")
    spot = ax.twinx()
    spot.plot(x, frame["btc_spot"].to_list(), label="BTC spot", color="tab:orange", alpha=0.7)
    spot.set_ylabel("BTC/USDT")
    if info.settled_at is not None:
        label = f"resolved {info.winner_outcome or ''}".strip()
        ax.axvline(info.settled_at, color="tab:red", label=label)
    elif info.expiry is not None and x and x[0] <= info.expiry <= x[-1]:
        ax.axvline(info.expiry, color="tab:red", linestyle=":", label="expiry")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = spot.get_legend_handles_labels()
    ax.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize="small")
    ax.set_title(f"{info.market_id}: {info.question or ''}", fontsize="medium")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    fig.tight_layout()
    fig.savefig(out, format="png")


def path_figure(path: pl.DataFrame, info: queries.MarketInfo) -> Figure:
    """The minute path: the YES price as of each minute (a step per minute, held to the
    next) on [0, 1], the BTC 1-minute close on a second axis with a line at the open's
    close (the price to beat), the open and the expiry marked when in the path's span,
    the winner in the title and legend when resolved. Draws on a bare Figure."""
    from datetime import timedelta

    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    minute = timedelta(minutes=1)
    x = path["minute_ts"].to_list()
    prices = path["price"].cast(float).to_numpy()
    fig = Figure(figsize=(10, 5.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    # Each price holds for its minute: the last one is drawn to the end of its minute.
    ax.step(
        [*x, x[-1] + minute],
        [*prices, prices[-1]],
        where="post",
        color="tab:blue",
        label="YES price",
    )
    if len(x) <= 120:  # a marker per minute, up to two hours
        ax.plot(x, prices, linestyle="none", marker="o", markersize=4, color="tab:blue")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("YES price")
    ax.set_xlabel("minute (UTC)")
    spot = ax.twinx()
    spot.plot(
        x,
        path["btc_close"].cast(float).to_numpy(),
        label="BTC 1-minute close",
        color="tab:orange",
        marker=".",
    )
    spot.set_ylabel("BTC/USDT")
    open_btc = path["open_btc"][0]
    if open_btc is not None:
        spot.axhline(
            open_btc, color="tab:gray", linestyle="--", label=f"price to beat {open_btc:,.2f}"
        )
    first, end = x[0], x[-1] + minute
    opened = first - path["offset_min"][0] * minute
    if first <= opened <= end:
        ax.axvline(opened, color="tab:green", linestyle=":", label=f"open {opened:%H:%M}")
    if info.expiry is not None and first <= info.expiry <= end:
        ax.axvline(info.expiry, color="tab:red", linestyle=":", label=f"expiry {info.expiry:%H:%M}")
    if info.winner_outcome:
        ax.plot([], [], linestyle="none", label=f"winner: {info.winner_outcome}")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = spot.get_legend_handles_labels()
    fig.legend(
        handles + more_handles,
        labels + more_labels,
        loc="outside lower center",
        ncols=6,
        fontsize="small",
        frameon=False,
    )
    outcome = (
        f"{info.resolution_status} {info.winner_outcome or ''}".strip()
        if info.resolution_status
        else "not resolved yet"
    )
    ax.set_title(
        f"{info.market_id}: {info.question or ''}\nminute path, {outcome}", fontsize="medium"
    )
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return fig


def plot_path(path: pl.DataFrame, info: queries.MarketInfo, out: Path) -> None:
    """Write :func:`path_figure` as a PNG titled (in its metadata) as a minute path."""
    path_figure(path, info).savefig(
        out, format="png", metadata={"Title": f"minute path of market {info.market_id}"}
    )


HISTORY_COLUMNS = [
    # (header, frame column, format)
    ("window", "window_start", "key"),
    ("source", "source", ""),
    ("yes", "yes_price", ".3f"),
    ("bid", "best_bid", ".3f"),
    ("ask", "best_ask", ".3f"),
    ("volume", "volume", ",.0f"),
    ("BTC", "btc_spot", ",.0f"),
    ("struct p", "structural_probability", ".3f"),
    ("quality", "quality_score", ".1f"),
]


def _market_header(info: queries.MarketInfo) -> str:
    """Two lines: the id and question, then the terms and how it settled."""
    terms = f"{info.family}, strike {_strike(asdict(info))}, expiry {_fmt(info.expiry)} UTC"
    if info.resolution_status:
        terms += f"; {info.resolution_status} {info.winner_outcome or ''}"
        terms += f" at {_fmt(info.settled_at)} UTC"
    return f"{info.market_id}: {info.question or ''}\n{terms}"


def _history_table(frame: pl.DataFrame) -> Table:
    # Columns with no value at all (book and volume on history rows) are left out.
    shown = [
        c for c in HISTORY_COLUMNS if frame.is_empty() or frame[c[1]].null_count() < len(frame)
    ]
    table = _table(
        f"{frame.height} window(s)",
        [
            (h, "left" if col in ("window_start", "source") else "right", None)
            for h, col, _ in shown
        ],
    )
    for r in frame.iter_rows(named=True):
        table.add_row(
            *(key_of(r[col]) if spec == "key" else _fmt(r[col], spec) for _, col, spec in shown)
        )
    return table


def _path_table(path: pl.DataFrame) -> Table:
    open_btc = path["open_btc"][0] if path.height else None
    title = f"minute path: {path.height} minute(s)"
    if open_btc is not None:
        title += f", price to beat {open_btc:,.2f}"  # BTC at the open; short: no wrap
    table = _table(
        title,
        [
            ("minute UTC", "left", None),
            ("offset", "right", None),
            ("YES", "right", None),
            ("quote age s", "right", None),
            ("BTC close", "right", None),
            ("move $", "right", None),
        ],
    )
    for r in path.iter_rows(named=True):
        table.add_row(
            f"{r['minute_ts']:%H:%M}",
            str(r["offset_min"]),
            _fmt(r["price"], ".3f"),
            _fmt(r["quote_age_s"], ".0f"),
            _fmt(r["btc_close"], ",.2f"),
            _fmt(r["btc_move"], "+,.2f"),
        )
    return table


def history_command(
    market_id: Annotated[str, typer.Argument(help="Gamma market id (see btc-tracker markets).")],
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG chart to this file (needs matplotlib).")
    ] = None,
    tail: Annotated[int, typer.Option(min=0, help="Only the newest N windows (0 = all).")] = 0,
    minutes: Annotated[
        int, typer.Option(min=0, help="Only the newest N minutes of the minute path (0 = all).")
    ] = 0,
    json_output: JsonOption = False,
    wait: WaitOption = READ_WAIT_S,
) -> None:
    """One market's snapshots window by window, beside BTC spot and its structural probability;
    then, for an up/down market, its minute path: the YES price every minute of its window
    beside the BTC 1-minute close and its move since the open (the price to beat).

    --plot draws the minute path when there is one, else the windows.

    Example: btc-tracker history 3225108200 --plot market.png
    """
    from btc_tracker_pipeline import queries

    out = None
    if plot is not None:
        _require_matplotlib()
        out = _check_writable(plot, "--plot")
    with _reading(wait) as (conn, _path):
        info = queries.market_info(conn, market_id)
        if info is None:
            raise _fail(
                f"unknown market id {market_id}: not in tracked_markets "
                "(run btc-tracker markets to find ids)"
            )
        frame = queries.market_history(conn, market_id, tail=tail or None)
        path = queries.market_path(conn, market_id, tail=minutes or None)
    if out is not None:
        if not path.is_empty():
            plot_path(path, info, out)
        elif frame.is_empty():
            raise _fail(f"market {market_id} has no snapshots or minute path to plot yet")
        else:
            plot_history(frame, info, out)
    if json_output:
        _emit_json(
            {
                "market": info.to_json(),
                "plot": str(out) if out else None,
                "windows": frame.height,
                "rows": frame.to_dicts(),
                "open_btc": path["open_btc"][0] if path.height else None,
                "path": path.drop("open_btc").to_dicts(),
            }
        )
        return
    console.print(_market_header(info), markup=False, highlight=False)
    console.print(_history_table(frame))
    if not path.is_empty():
        console.print(_path_table(path))
    if out is not None:
        console.print(f"chart written to {out}", soft_wrap=True)


# --------------------------------------------------------------------------- export


def _window_start(key: str | None, option: str) -> datetime | None:
    if key is None:
        return None
    try:
        return window_of(key)[0]
    except ValueError as exc:
        raise _fail(f"{option}: {exc}") from exc


def _export_format(fmt: ExportFormat | None, out: Path) -> ExportFormat:
    """--format, else the format --out's suffix names; a mismatch of the two is refused."""
    found = SUFFIX_FORMATS.get(out.suffix.lower())
    if fmt is None and found is None:
        raise _fail(f"--format is needed: cannot tell csv, json or parquet from {out.name!r}")
    if fmt is not None and found is not None and fmt != found:
        raise _fail(
            f"--format {fmt.value} does not match --out {out.name!r} ({found.value}): "
            "drop --format or rename the file"
        )
    return fmt or found  # type: ignore[return-value]


def _check_table(table: str, present: Sequence[str]) -> None:
    """Refuse an internal table or one this warehouse does not have."""
    valid = ", ".join(t for t in EXPORT_TABLES if t in present)
    if table in INTERNAL_TABLES:
        raise _fail(f"{table} is {INTERNAL_TABLES[table]}, not data to export; tables: {valid}")
    if table not in EXPORT_TABLES or table not in present:
        raise _fail(f"unknown table {table!r}; valid tables: {valid}")


def export_command(
    table: Annotated[
        str, typer.Option("--table", help=f"Table to export: {', '.join(EXPORT_TABLES)}.")
    ],
    out: Annotated[Path, typer.Option("--out", help="File to write (replaced if it exists).")],
    fmt: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            help="csv, json (one object per line) or parquet; default: from --out's suffix.",
        ),
    ] = None,
    from_key: Annotated[
        str | None, typer.Option("--from", help="First window key YYYY-MM-DD-HH:MM (inclusive).")
    ] = None,
    to_key: Annotated[
        str | None, typer.Option("--to", help="Last window key YYYY-MM-DD-HH:MM (inclusive).")
    ] = None,
    json_output: JsonOption = False,
    wait: WaitOption = READ_WAIT_S,
) -> None:
    """Export a warehouse table to CSV, newline-delimited JSON or Parquet (the format
    from --out's suffix: .csv, .json/.jsonl/.ndjson, .parquet; or --format).

    DuckDB streams the rows straight to the file (COPY … TO), so a table of any size
    exports in constant memory. --from/--to select windows by window_start (open_time
    for the 1-minute btc_spot_prices).

    Example: btc-tracker export --table market_snapshots --format parquet --out snaps.parquet
    """
    from btc_tracker_pipeline import queries

    start = _window_start(from_key, "--from")
    last = _window_start(to_key, "--to")
    if start is not None and last is not None and start > last:
        raise _fail(f"--from {from_key} is after --to {to_key}")
    fmt = _export_format(fmt, out)
    target = _check_writable(out, "--out")
    with _reading(wait) as (conn, _path):
        _check_table(table, queries.table_names(conn))
        if (start or last) and queries.time_column(conn, table) is None:
            raise _fail(f"table {table} has no window column: drop --from/--to to export it all")
        begin, end = queries.window_bounds(start, last)
        started = time.monotonic()
        with _status(f"exporting {table} to {target.name}"):
            try:
                rows = queries.export_table(conn, table, fmt.value, target, begin, end)
            except OSError as exc:
                raise _fail(f"cannot write {target}: {exc.strerror or exc}") from exc
        elapsed = time.monotonic() - started
    if json_output:
        _emit_json({"table": table, "format": fmt.value, "out": str(target), "rows": rows})
        return
    # soft_wrap: the path stays on one line however narrow the terminal (or none).
    console.print(
        f"{rows:,} rows of {table} written to {target} ({fmt.value}, {elapsed:.1f} s)",
        soft_wrap=True,
    )
