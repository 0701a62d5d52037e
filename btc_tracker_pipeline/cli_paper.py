"""``btc-tracker paper``: the forward paper ledger, read-only (``cli`` registers it).

Open and settled positions, the bankroll and P&L, and predicted against realised edge.
Like the other read commands (``cli_read``): the warehouse opened read-only, rich
tables or ``--json`` on stdout, one ``error: …`` line on failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from btc_tracker_pipeline import environment
from btc_tracker_pipeline.cli_output import bad_value
from btc_tracker_pipeline.cli_read import (
    READ_WAIT_S,
    JsonOption,
    WaitOption,
    _emit_json,
    _fmt,
    _reading,
    _table,
    console,
)

if TYPE_CHECKING:
    import duckdb
    import polars as pl

EMPTY = (
    "the paper ledger is empty: a position opens when the edge report of a live window "
    "(the 15-minute schedule's tick) recommends a trade"
)


def _ledger(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every position; none when the warehouse predates the ledger (migration 12)."""
    from btc_tracker_pipeline.model.ledger import empty_ledger
    from btc_tracker_pipeline.warehouse.ledger import read_ledger

    found = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'paper_ledger'"
    ).fetchone()
    return read_ledger(conn) if found and found[0] else empty_ledger()


def _money(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{'+' if signed and value >= 0 else '-' if value < 0 else ''}${abs(value):,.2f}"


def comparison_line(c: dict[str, Any]) -> str:
    """Predicted against realised edge over the settled positions, and whether that is
    meaningful yet (at least ``c["min_positions"]`` of them)."""
    n = c["positions"]
    if n == 0:
        return (
            "predicted vs realised: no settled position yet "
            f"(meaningful from {c['min_positions']} settled positions)"
        )
    se = c["realised_edge_se"]
    spread = f" ± {1.96 * se:.3f}" if se is not None else ""
    verdict = (
        f"not meaningful yet (fewer than {c['min_positions']} settled positions)"
        if not c["meaningful"]
        else f"± is a 95 % interval over {n} positions"
    )
    return (
        f"predicted vs realised, {n} settled position{'s' if n != 1 else ''}: edge per share "
        f"{c['mean_predicted_edge']:+.3f} predicted, {c['mean_realised_edge']:+.3f}{spread} "
        f"realised; return per dollar {c['predicted_return_per_dollar']:+.3f} predicted, "
        f"{c['realised_return_per_dollar']:+.3f} realised — {verdict}"
    )


def _summary_lines(s: dict[str, Any]) -> list[str]:
    win = "—" if s["win_rate"] is None else f"{s['win_rate']:.1%}"
    return [
        f"paper ledger: {s['open']} open, {s['settled']} settled, {s['void']} void; "
        f"bankroll {_money(s['bankroll'])} = starting {_money(s['starting_bankroll'])} "
        f"{_money(s['realised_pnl'], signed=True)} realised P&L − {_money(s['open_stake'])} "
        "in open positions",
        f"realised P&L {_money(s['realised_pnl'], signed=True)}, win rate {win}, "
        f"max drawdown {s['max_drawdown']:.1%} (settled equity)",
        comparison_line(s["predicted_vs_realised"]),
    ]


def _shown(frame: pl.DataFrame, limit: int) -> str:
    return f"the newest {limit} of " if limit and frame.height > limit else ""


# The columns both tables open with: which position, and what it cost.
_POSITION_COLUMNS = [
    ("market", "right", None),
    ("question", "left", 16),
    ("side", "left", None),
    ("price paid", "right", None),
    ("stake", "right", None),
]


def _position_cells(r: dict) -> list[str]:
    """The cells of ``_POSITION_COLUMNS`` for position ``r``."""
    return [
        r["market_id"],
        escape(r["question"] or ""),
        r["side"],
        f"{r['price_paid']:.3f}",
        f"{r['stake']:,.2f}",
    ]


def _open_table(frame: pl.DataFrame, limit: int) -> Table:
    table = _table(
        f"{_shown(frame, limit)}{frame.height} open position(s), newest first",
        [
            *_POSITION_COLUMNS,
            ("model", "right", None),
            ("pred. edge", "right", None),
            ("model version", "left", None),
            ("opened UTC", "left", None),
        ],
    )
    for r in (frame.head(limit) if limit else frame).iter_rows(named=True):
        table.add_row(
            *_position_cells(r),
            _fmt(r["model_prob"], ".3f"),
            _fmt(r["predicted_edge"], "+.3f"),
            r["model_version"] or "—",
            _fmt(r["opened_at"]),
        )
    return table


def _settled_table(frame: pl.DataFrame, limit: int) -> Table:
    table = _table(
        f"{_shown(frame, limit)}{frame.height} settled or void position(s), newest first",
        [
            *_POSITION_COLUMNS,
            ("status", "left", None),
            ("YES won", "left", None),
            ("P&L", "right", None),
            ("pred. edge", "right", None),
            ("real. edge", "right", None),
            ("settled UTC", "left", None),
        ],
    )
    for r in (frame.head(limit) if limit else frame).iter_rows(named=True):
        table.add_row(
            *_position_cells(r),
            r["status"],
            {1: "yes", 0: "no"}.get(r["outcome"], "—"),
            _money(r["pnl"], signed=True),
            _fmt(r["predicted_edge"], "+.3f"),
            _fmt(r["realised_edge"], "+.3f"),
            _fmt(r["settled_at"]),
        )
    return table


def paper_command(
    only_open: Annotated[
        bool, typer.Option("--open", help="Only the open positions (the summary stays whole).")
    ] = False,
    only_settled: Annotated[
        bool, typer.Option("--settled", help="Only the settled and void positions.")
    ] = False,
    limit: Annotated[
        int, typer.Option(min=0, help="Show the N newest positions of each table (0 = all).")
    ] = 20,
    json_output: JsonOption = False,
    wait: WaitOption = READ_WAIT_S,
) -> None:
    """The forward paper ledger: every live recommendation traded once on paper, settled
    on the market's label — open and settled positions, P&L, predicted vs realised edge.

    Not the walk-forward backtest (paper_trades, redone by each training): positions
    here were taken live, before the outcome, and are never rewritten. Predicted vs
    realised is "not meaningful yet" below 30 settled positions.
    Reads BTC_TRACKER_WAREHOUSE (default data/warehouse.duckdb) read-only.

    Example: btc-tracker paper --settled --json
    """
    import polars as pl

    from btc_tracker_pipeline.model.ledger import LEDGER_CONFIG, OPEN, summary

    if only_open and only_settled:
        raise bad_value("--open", "--open and --settled exclude each other; give one or none")
    with _reading(wait) as (conn, _path):
        ledger = _ledger(conn)
    figures = summary(ledger, LEDGER_CONFIG)
    newest = ledger.sort(["opened_at", "position_id"], descending=True)
    is_open = pl.col("status") == OPEN
    opened = newest.filter(is_open)
    done = newest.filter(~is_open).sort(["settled_at", "position_id"], descending=True)
    if json_output:
        _emit_json(
            {
                "warehouse": str(environment.warehouse_path()),
                "summary": figures,
                "open": [] if only_settled else opened.to_dicts(),
                "settled": [] if only_open else done.to_dicts(),
            }
        )
        return
    if ledger.is_empty():
        console.print(EMPTY, soft_wrap=True)
        return
    for line in _summary_lines(figures):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    if not only_settled:
        console.print(_open_table(opened, limit) if opened.height else "no open position")
    if not only_open:
        console.print(_settled_table(done, limit) if done.height else "no settled position yet")


def backtest_line() -> str | None:
    """One line on the walk-forward paper backtest (``paper_trades``) for ``btc-tracker
    model``, named as a backtest and pointing at the forward ledger; None when the
    warehouse cannot be read or holds no backtest."""
    import duckdb

    from btc_tracker_pipeline.warehouse import WarehouseError, warehouse

    try:
        with warehouse(environment.warehouse_path(), read_only=True, wait_s=5) as conn:
            row = conn.execute(
                "SELECT count(won), count(*) - count(won), sum(pnl) FILTER (won IS NOT NULL), "
                "sum(stake) FILTER (won IS NOT NULL) FROM paper_trades"
            ).fetchone()
    except (WarehouseError, duckdb.Error):  # no warehouse yet, or a locked one
        return None
    if row is None or not (row[0] or row[1]):
        return None
    trades, still_open, pnl, stake = row
    roi = f", ROI {pnl / stake:+.3f} per dollar" if stake else ""
    return (
        f"Paper backtest (paper_trades, the walk-forward predictions traded on past data): "
        f"{trades} settled trades{roi}, {still_open} open. The forward ledger of live "
        "recommendations: btc-tracker paper."
    )
