"""Windows that hold fewer markets than the warehouse knows were open in them.

A window can be complete in time (it has rows) and still thin: a collection that lost
most of its markets, or a run for chosen markets on a window nobody collected whole.
The ``markets`` dimension remembers every market ever found with its start and end
dates, so for each window it says how many markets were open then; a window whose
``tracked_markets`` (or ``market_snapshots``) rows fall short of that is thin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

# The share of the open markets a window must hold (the snapshot coverage check's bar).
MIN_SHARE = 0.9


@dataclass(frozen=True)
class ThinWindow:
    """A window holding fewer rows than the markets open during it."""

    window_start: datetime
    expected: int  # markets open during the window, by the ``markets`` dimension
    tracked: int  # its tracked_markets rows
    quoted: int  # its market_snapshots rows

    def label(self) -> str:
        """``2026-02-28 23:30 UTC: 1 of 166 open markets tracked, 1 quoted``."""
        return (
            f"{self.window_start:%Y-%m-%d %H:%M} UTC: {self.tracked} of {self.expected} open "
            f"markets tracked, {self.quoted} quoted"
        )


# A market counts as open in [ws, ws + 15 min) when it was created before the window
# ended, had not expired before it began (collect.discovery.open_during), and had not
# settled before it began (barriers settle weeks before their end date).
_THIN_SQL = """
WITH tracked AS (
    SELECT window_start AS ws, count(*) AS n FROM tracked_markets
    WHERE window_start >= ? AND window_start < ? GROUP BY 1
),
quoted AS (
    SELECT window_start AS ws, count(*) AS n FROM market_snapshots
    WHERE window_start >= ? AND window_start < ? GROUP BY 1
),
settled AS (
    SELECT market_id, min(settled_at) AS settled_at FROM market_resolutions
    WHERE settled_at IS NOT NULL GROUP BY 1
),
expected AS (
    SELECT t.ws, count(*) AS n
    FROM tracked AS t
    JOIN markets AS m
      ON (m.start_date IS NULL OR m.start_date < t.ws + INTERVAL 15 MINUTE)
     AND (m.end_date IS NULL OR m.end_date > t.ws)
    LEFT JOIN settled AS s ON s.market_id = m.market_id
    WHERE s.settled_at IS NULL OR s.settled_at >= t.ws
    GROUP BY 1
)
SELECT t.ws, e.n, t.n, coalesce(q.n, 0)
FROM tracked AS t
JOIN expected AS e USING (ws)
LEFT JOIN quoted AS q USING (ws)
WHERE t.n < ? * e.n OR (? AND coalesce(q.n, 0) < ? * t.n)
ORDER BY t.ws
"""


def thin_windows(
    conn: duckdb.DuckDBPyConnection,
    start: datetime = datetime.min,
    end: datetime = datetime.max,
    min_share: float = MIN_SHARE,
    *,
    quotes: bool = True,
) -> list[ThinWindow]:
    """Windows in [start, end) whose tracked markets are fewer than ``min_share`` of the
    markets open during them, or (with ``quotes``) whose snapshots are fewer than
    ``min_share`` of their tracked markets. Windows with no tracked rows at all are gaps,
    not thin (see ``queries.window_gaps``)."""
    params = [start, end, start, end, min_share, quotes, min_share]
    rows = conn.execute(_THIN_SQL, params).fetchall()
    return [ThinWindow(ws, int(e), int(t), int(q)) for ws, e, t, q in rows]
