"""A process killed (SIGKILL) in the middle of a window write leaves the window whole:
its previous rows or the new ones, never a mix; the next write repairs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from btc_tracker_pipeline.warehouse import TableWrite, open_warehouse, write_window

pytestmark = pytest.mark.integration

W0 = datetime(2026, 3, 1, 10, 0)
W1 = W0 + timedelta(minutes=15)
BIG = 3_000_000

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta
    from pathlib import Path
    import polars as pl
    from btc_tracker_pipeline.warehouse import TableWrite, open_warehouse, write_window

    path, marker, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    w0 = datetime(2026, 3, 1, 10, 0)
    frame = pl.DataFrame({
        "window_start": pl.repeat(w0, n, eager=True),
        "open_time": pl.datetime_range(
            datetime(2020, 1, 1), datetime(2020, 1, 1) + timedelta(seconds=n - 1), "1s",
            eager=True),
        "open": pl.repeat(2.0, n, eager=True), "high": pl.repeat(2.0, n, eager=True),
        "low": pl.repeat(2.0, n, eager=True), "close": pl.repeat(2.0, n, eager=True),
        "volume": pl.repeat(2.0, n, eager=True),
    })
    conn = open_warehouse(path)
    marker.write_text("writing")
    write_window(conn, [TableWrite("btc_spot_prices", frame)], w0, w0 + timedelta(minutes=15))
    marker.write_text("committed")
    """
)


def old_rows() -> pl.DataFrame:
    times = [W0 + timedelta(minutes=i) for i in range(15)]
    return pl.DataFrame(
        {
            "window_start": [W0] * 15,
            "open_time": times,
            **{c: [1.0] * 15 for c in ("open", "high", "low", "close", "volume")},
        }
    )


def test_sigkill_during_a_window_write_leaves_old_or_new_rows(tmp_path):
    path = tmp_path / "w.duckdb"
    conn = open_warehouse(path)
    write_window(conn, [TableWrite("btc_spot_prices", old_rows())], W0, W1)
    conn.close()

    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(marker), str(BIG)])
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # inside the transaction (a 3M-row insert takes longer than this)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    state = marker.read_text()

    with duckdb.connect(str(path), read_only=True) as check:
        count, closes = check.execute(
            "SELECT count(*), list(DISTINCT close) FROM btc_spot_prices WHERE window_start = ?",
            [W0],
        ).fetchone()
    assert (count, closes) in ((15, [1.0]), (BIG, [2.0])), (count, closes, state)
    if state == "writing":
        assert count == 15  # killed before COMMIT returned: the old rows stand

    conn = open_warehouse(path)  # the next run repairs the window
    write_window(conn, [TableWrite("btc_spot_prices", old_rows())], W0, W1)
    assert conn.execute("SELECT count(*) FROM btc_spot_prices").fetchone() == (15,)
    conn.close()
