"""Constants and small helpers every domain folder of ``defs`` uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from btc_tracker_pipeline.market_selection import families, market_ids
from btc_tracker_pipeline.partitions import (
    WINDOWS_PER_RUN,
    fifteen_minute_partitions,
)

# Every asset that writes DuckDB is in this pool; dagster.yaml limits pools to 1
# (docs/dagster.md §2: DuckDB has one writer).
DUCKDB_WRITE_POOL = "duckdb_write"
OWNERS = ["team:btc-tracker"]
DAILY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=WINDOWS_PER_RUN)


def window_asset(*, group_name: str, kinds: set[str], **kwargs: Any) -> Any:
    """``dg.asset`` for a 15-minute asset that writes DuckDB: the one partition
    definition, a day of windows per backfill run, the writer pool, the owners."""
    return dg.asset(
        partitions_def=fifteen_minute_partitions,
        backfill_policy=DAILY_BACKFILL,
        group_name=group_name,
        kinds=kinds,
        owners=OWNERS,
        pool=DUCKDB_WRITE_POOL,
        **kwargs,
    )


def naive_utc(ts: datetime) -> datetime:
    """Dagster hands out aware datetimes; the warehouse stores naive UTC."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


# The chosen markets of a run for families of which no market was found: an id no market
# has, so the run replaces nothing (``()`` would mean every market, whole windows).
NO_MARKET = "(no market of the chosen families)"


def chosen_markets(context: dg.AssetExecutionContext) -> tuple[str, ...]:
    """The markets this run was asked for (``tracked_markets``' ``market_ids`` in the run
    config, the CLI's ``--market-ids``), or ``()`` for every BTC market.

    Every asset of such a run adds or replaces only these markets' rows in its windows;
    the other markets' rows stay as they were (a run for chosen markets never shrinks a
    window)."""
    return market_ids(context.run.run_config)


def chosen_families(context: dg.AssetExecutionContext) -> tuple[str, ...]:
    """The market families this run was asked for (``tracked_markets``' ``families``, the
    schedule's BTC_TRACKER_FAMILIES), or ``()`` for every family."""
    return families(context.run.run_config)


def family_markets(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, chosen: tuple[str, ...]
) -> tuple[str, ...]:
    """The markets of the ``chosen`` families that ``tracked_markets`` holds in [start,
    end): the markets a run for those families replaces; ``(NO_MARKET,)`` when none."""
    rows = conn.execute(
        "SELECT DISTINCT market_id FROM tracked_markets WHERE window_start >= ? "
        "AND window_start < ? AND list_contains(?, family) ORDER BY market_id",
        [start, end, list(chosen)],
    ).fetchall()
    return tuple(r[0] for r in rows) or (NO_MARKET,)


def of_chosen(frame: pl.DataFrame, chosen: tuple[str, ...]) -> pl.DataFrame:
    """The rows of ``frame`` of the ``chosen`` markets; all of them when none is chosen."""
    return frame.filter(pl.col("market_id").is_in(list(chosen))) if chosen else frame


def selection_metadata(chosen: tuple[str, ...]) -> dict[str, dg.MetadataValue]:
    """Says in the run's metadata whether it replaced whole windows or chosen markets."""
    if not chosen:
        return {"scope": dg.MetadataValue.text("every BTC market: whole windows replaced")}
    return {
        "scope": dg.MetadataValue.text(
            f"{len(chosen)} chosen market(s) ({', '.join(chosen[:10])}"
            f"{', …' if len(chosen) > 10 else ''}): only their rows were added or replaced, "
            "other markets' rows in these windows are untouched"
        )
    }


def preview(frame: pl.DataFrame, rows: int = 8) -> dg.MetadataValue:
    """A small Markdown table of the first rows for the asset's metadata."""
    if frame.is_empty():
        return dg.MetadataValue.md("_no rows_")
    head = frame.head(rows)
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        cells = [f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))
