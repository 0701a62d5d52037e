"""The window engine: one run of a partitioned asset over its range of 15-minute windows.

Every partitioned asset is a short shell around it::

    with WindowRun.start(context, "market_snapshots", warehouse, clock.now()) as run:
        with run.api_calls():      # an API failure: a failed collection_runs row per window
            frames = core(run.windows, ...)
        return run.finish([TableWrite(...)], Tally(...), metadata={...})

Inside the ``with`` the warehouse stays open: the asset's reads, the backfill caches and
the final write share one connection (one open and one checkpoint per asset and run).

``finish`` writes every window of the run in ONE transaction (each window's rows replaced
exactly, keys checked, the ``collection_runs`` rows in the same commit, a window with no
rows kept as it was and reported), fails the run when every window came back empty, and
returns the standard metadata (``dagster/row_count``, a table preview, the run's
windows and scope).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from btc_tracker_pipeline import stopping
from btc_tracker_pipeline.collect.runs import RUNS_SCHEMA, RunRecord, is_live, utcnow
from btc_tracker_pipeline.defs.shared import (
    NO_MARKET,
    chosen_families,
    chosen_markets,
    family_markets,
    naive_utc,
    selection_metadata,
)
from btc_tracker_pipeline.partitions import windows_between
from btc_tracker_pipeline.sources.errors import ApiError
from btc_tracker_pipeline.warehouse import TableAppend, TableUpsert, TableWrite, write_windows
from btc_tracker_pipeline.warehouse.write import append_rows, windows_without_rows

Window = tuple[datetime, datetime]
# Rows shown in an asset's preview table in the UI.
PREVIEW_ROWS = 8


@dataclass
class Tally:
    """What each window of a run tried and got, for its ``collection_runs`` row.

    ``tried`` and ``ok``: rows per window (frames with a ``window_start`` column, or
    None for "one per window"); ``errors``: a frame of (window_start, error) messages;
    ``run_errors``: messages about the whole run, kept on its first window.
    """

    tried: pl.DataFrame | None = None
    ok: pl.DataFrame | None = None
    errors: pl.DataFrame | None = None
    run_errors: list[str] = field(default_factory=list)


@dataclass
class WindowRun:
    """One run of ``asset`` over consecutive windows: its range, its scope and its clock."""

    asset: str
    context: dg.AssetExecutionContext
    warehouse: Any
    windows: list[Window]
    chosen: tuple[str, ...]
    live: bool
    started_at: datetime
    meter: Callable[[], tuple[int, int]] | None = None
    _before: tuple[int, int] = (0, 0)
    _hold: contextlib.AbstractContextManager[None] | None = None

    @classmethod
    def start(
        cls,
        context: dg.AssetExecutionContext,
        asset: str,
        warehouse: Any,
        now: datetime,
        meter: Callable[[], tuple[int, int]] | None = None,
    ) -> WindowRun:
        """The run ``context`` asks for: its windows (one for a tick, up to a day in a
        backfill), the chosen markets, and whether it is live (one window that ended at
        most ``collect.runs.LIVE_MAX_LAG`` before ``now``). ``meter`` returns the
        (requests, retries) counters of the asset's API client, read now and at the end.
        A stop requested before the run began (Ctrl+C, SIGTERM) fails it at once."""
        tw = context.partition_time_window
        windows = windows_between(naive_utc(tw.start), naive_utc(tw.end))
        chosen = chosen_markets(context)
        if chosen_families(context) and not chosen:
            # The families' markets tracked_markets wrote for these windows (before it
            # has run, in its own step, the ones an earlier run wrote: metadata only).
            with warehouse.connect() as conn:
                chosen = family_markets(
                    conn, windows[0][0], windows[-1][1], chosen_families(context)
                )
        run = cls(
            asset,
            context,
            warehouse,
            windows,
            chosen,
            len(windows) == 1 and is_live(windows[-1][1], now),
            now,
            meter,
        )
        run._before = meter() if meter else (0, 0)
        run.check_stop()
        return run

    def __enter__(self) -> WindowRun:
        """Hold the warehouse open while the asset works on the run (its reads, caches
        and the final write share one connection)."""
        self._hold = self.warehouse.held()
        self._hold.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hold.__exit__(*exc)

    @property
    def nothing_chosen(self) -> bool:
        """A run for chosen families none of whose markets is in its windows: every
        asset writes nothing and succeeds."""
        return self.chosen == (NO_MARKET,)

    @property
    def start_at(self) -> datetime:
        """The first window's start."""
        return self.windows[0][0]

    @property
    def end_at(self) -> datetime:
        """The last window's end."""
        return self.windows[-1][1]

    @property
    def mode(self) -> str:
        """``live`` (the window that just ended, live quotes) or ``history``."""
        return "live" if self.live else "history"

    def check_stop(self) -> None:
        """Fail the run if a stop was requested (see ``stopping``): nothing of it is
        written, every window keeps its previous rows."""
        signal_name = stopping.requested()
        if signal_name is not None:
            raise dg.Failure(
                description=(
                    f"stopped by {signal_name} before writing windows "
                    f"{self.start_at:%Y-%m-%d %H:%M} - {self.end_at:%H:%M} UTC; "
                    "they keep their previous rows"
                ),
                allow_retries=False,
            )

    @contextlib.contextmanager
    def api_calls(self) -> Iterator[None]:
        """An API call in the block that still fails after its retries (service down,
        cursor loop, malformed answer) leaves one ``failed`` collection_runs row per
        window with the reason and fails the asset; the windows keep their previous
        rows, and other assets of the tick (independent of this one) still run."""
        try:
            yield
        except ApiError as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
            errors = window_errors([ws for ws, _ in self.windows], reason)
            nothing = errors.clear()  # nothing tried, nothing landed: status "failed"
            tally = Tally(tried=nothing, ok=nothing, errors=errors)
            with self.warehouse.connect() as conn:
                append_rows(conn, "collection_runs", self.runs_frame(tally))
            raise dg.Failure(
                description=f"{reason}; existing rows were kept (recorded in collection_runs)"
            ) from exc

    def finish(
        self,
        writes: Sequence[TableWrite],
        tally: Tally,
        *,
        upserts: Sequence[TableUpsert] = (),
        empty_error: str | None = None,
        all_empty: str | None = None,
        preview: pl.DataFrame | None = None,
        metadata: dict[str, Any] | None = None,
        check_results: Sequence[dg.AssetCheckResult] = (),
        checks: Callable[[duckdb.DuckDBPyConnection], list[dg.AssetCheckResult]] | None = None,
    ) -> dg.MaterializeResult:
        """Write every window of the run in one transaction and report it.

        ``writes[0]`` is the asset's main table: a window it has no rows for gets
        ``empty_error`` in its collection_runs row, and when no window has any row the
        run fails with ``all_empty`` (if given) after recording that. ``preview``: the
        rows to show (default: the main table's last window). ``checks`` runs on the
        warehouse after the commit (checks that read what the run wrote).
        """
        main = writes[0].frame
        empty = windows_without_rows(main, [ws for ws, _ in self.windows])
        if self.nothing_chosen:  # no market of the chosen families: empty is not an outage
            empty_error = all_empty = None
        if empty_error is not None and empty:
            extra = window_errors(empty, empty_error)
            tally.errors = extra if tally.errors is None else pl.concat([tally.errors, extra])
        self.check_stop()
        with self.warehouse.connect() as conn:
            write_windows(
                conn,
                writes,
                self.windows,
                appends=[TableAppend("collection_runs", lambda: self.runs_frame(tally))],
                upserts=upserts,
            )
            if checks is not None:
                check_results = [*check_results, *checks(conn)]
        if all_empty is not None and len(empty) == len(self.windows):
            raise dg.Failure(all_empty)
        shown = preview if preview is not None else self.last_window(main)
        return dg.MaterializeResult(
            check_results=list(check_results),
            metadata={
                **self.standard_metadata(sum(w.frame.height for w in writes)),
                "preview": table_preview(shown),
                **(metadata or {}),
            },
        )

    def last_window(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``frame`` in the run's last window."""
        if frame.is_empty() or "window_start" not in frame.columns:
            return frame
        return frame.filter(pl.col("window_start") == self.windows[-1][0])

    def standard_metadata(self, rows: int) -> dict[str, dg.MetadataValue]:
        """Rows written, the run's windows, its mode and scope."""
        return {
            "dagster/row_count": dg.MetadataValue.int(rows),
            "window_start": dg.MetadataValue.text(f"{self.start_at:%Y-%m-%d %H:%M} UTC"),
            "window_end": dg.MetadataValue.text(f"{self.end_at:%Y-%m-%d %H:%M} UTC"),
            "windows": dg.MetadataValue.int(len(self.windows)),
            "mode": dg.MetadataValue.text(self.mode),
            **selection_metadata(self.chosen),
        }

    def runs_frame(self, tally: Tally) -> pl.DataFrame:
        """One ``collection_runs`` row per window of the run (the API requests and
        retries, and the run's own errors, are on the first window's row)."""
        finished = utcnow()
        tried, ok = _per_window(tally.tried), _per_window(tally.ok)
        errors: dict[datetime, list[str]] = {}
        if tally.errors is not None and not tally.errors.is_empty():
            grouped = tally.errors.group_by("window_start", maintain_order=True).agg("error")
            errors = dict(grouped.iter_rows())
        requests, retries = (0, 0)
        if self.meter is not None:
            now_requests, now_retries = self.meter()
            requests, retries = now_requests - self._before[0], now_retries - self._before[1]
        records = [
            RunRecord(
                self.asset,
                ws,
                we,
                self.context.run_id,
                self.started_at,
                markets_tried=tried.get(ws, 0) if tried is not None else 1,
                markets_ok=ok.get(ws, 0) if ok is not None else 1,
                requests=requests if i == 0 else 0,
                retries=retries if i == 0 else 0,
                errors=(list(tally.run_errors) if i == 0 else []) + errors.get(ws, []),
            )
            for i, (ws, we) in enumerate(self.windows)
        ]
        return pl.DataFrame([r.row(finished) for r in records], schema=RUNS_SCHEMA)


def window_errors(starts: Sequence[datetime], message: str) -> pl.DataFrame:
    """A (window_start, error) frame: ``message`` for each of ``starts``."""
    return pl.DataFrame(
        {"window_start": list(starts), "error": message},
        schema={"window_start": pl.Datetime("us"), "error": pl.String},
    )


def _per_window(frame: pl.DataFrame | None) -> dict[datetime, int] | None:
    """Rows per ``window_start`` of ``frame`` (None: one per window)."""
    if frame is None:
        return None
    if frame.is_empty():
        return {}
    return dict(frame.group_by("window_start").len().iter_rows())


def table_preview(frame: pl.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """The first ``rows`` rows of ``frame`` as a table the UI renders (numbers rounded)."""
    head = frame.head(rows)
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, _column_type(dtype)) for name, dtype in head.schema.items()]
    )
    records = [
        dg.TableRecord({k: _cell(v) for k, v in row.items()}) for row in head.iter_rows(named=True)
    ]
    return dg.MetadataValue.table(records, schema)


def _column_type(dtype: pl.DataType) -> str:
    if dtype.is_float():
        return "float"
    if dtype.is_integer():
        return "int"
    if dtype == pl.Boolean:
        return "bool"
    return "string"


def _cell(value: object) -> str | int | float | bool | None:
    if isinstance(value, float):
        return round(value, 6)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
