"""What the warehouse holds, as numbers a person can check at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from btc_tracker_pipeline.warehouse import warehouse


@dataclass(frozen=True)
class WarehouseSummary:
    """Counts per table and the covered window range."""

    windows: int
    first_window: str | None
    last_window: str | None
    markets: int
    tracked_rows: int
    snapshot_rows: int
    spot_klines: int
    spot_windows: int
    runs_by_status: dict[str, int]
    families: dict[str, int]
    labels_by_status: dict[str, int]
    indicator_rows: int
    mean_quality: float | None


def summarize(path: Path) -> WarehouseSummary:
    """Read the warehouse (read-only, waits for a writer's lock) and count what it holds."""
    with warehouse(path, read_only=True) as conn:

        def one(sql: str) -> tuple:
            row = conn.execute(sql).fetchone()
            return row if row is not None else ()

        windows, first, last = one(
            "SELECT count(DISTINCT window_start), min(window_start), max(window_start) "
            "FROM market_snapshots"
        )
        runs = dict(
            conn.execute(
                "SELECT status, count(*) FROM collection_runs GROUP BY status ORDER BY status"
            ).fetchall()
        )
        families = dict(
            conn.execute(
                "SELECT family, count(DISTINCT market_id) FROM tracked_markets "
                "GROUP BY family ORDER BY family"
            ).fetchall()
        )
        labels = dict(
            conn.execute(
                "SELECT status, count(*) FROM market_resolutions GROUP BY status ORDER BY status"
            ).fetchall()
        )
        indicator_rows, mean_quality = one(
            "SELECT count(*), avg(quality_score) FROM market_indicators"
        )
        return WarehouseSummary(
            windows=int(windows),
            first_window=f"{first:%Y-%m-%d %H:%M}" if first else None,
            last_window=f"{last:%Y-%m-%d %H:%M}" if last else None,
            markets=int(one("SELECT count(DISTINCT market_id) FROM tracked_markets")[0]),
            tracked_rows=int(one("SELECT count(*) FROM tracked_markets")[0]),
            snapshot_rows=int(one("SELECT count(*) FROM market_snapshots")[0]),
            spot_klines=int(one("SELECT count(*) FROM btc_spot_prices")[0]),
            spot_windows=int(one("SELECT count(*) FROM btc_spot_windows")[0]),
            runs_by_status={str(k): int(v) for k, v in runs.items()},
            families={str(k): int(v) for k, v in families.items()},
            labels_by_status={str(k): int(v) for k, v in labels.items()},
            indicator_rows=int(indicator_rows),
            mean_quality=float(mean_quality) if mean_quality is not None else None,
        )
