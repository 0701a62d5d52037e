"""Trading health: win rate, EV per trade, Sharpe ratio and max drawdown, twice — from
the forward paper ledger (``paper_ledger``: live recommendations traded on paper as
they came) and from the walk-forward backtest (``paper_trades``), labelled apart.

Both go through ``model.paper.trade_metrics``, so the figures are computed the way
``paper_trades`` reports them: only settled trades count (void positions, stake back,
are not trades), the Sharpe ratio is of daily returns on the starting bankroll
(``EdgeConfig.bankroll`` for both, $10,000; √365), the drawdown is of the settled
equity. EV per trade is the realised edge per $1 share: the ledger's own
``realised_edge`` averaged, and for the backtest hit rate − mean price paid (the same
quantity, fees included).

The ledger is read defensively: a warehouse without the table, or without settled
positions, reports "no settled positions yet".
"""

from __future__ import annotations

import duckdb
import polars as pl

from btc_tracker_pipeline.health.targets import Metric, metric
from btc_tracker_pipeline.model.ledger import LEDGER_CONFIG
from btc_tracker_pipeline.model.paper import PaperConfig, trade_metrics

LEDGER_TABLE = "paper_ledger"
# The ledger columns read here (status 'open' | 'settled' | 'void').
LEDGER_COLUMNS = (
    "status",
    "opened_at",
    "settled_at",
    "stake",
    "pnl",
    "price_paid",
    "predicted_edge",
    "realised_edge",
    "market_id",
)


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ?",
        [table],
    ).fetchall()
    return {r[0] for r in rows}


def _trading_metrics(
    prefix: str, trades: pl.DataFrame, ev: float | None, source: str, config: PaperConfig
) -> list[Metric]:
    """The four metrics of settled ``trades`` (paper_trades columns) under ``prefix``."""
    m = trade_metrics(trades, config)
    n, days = int(m["n_trades"] or 0), int(m["n_days"] or 0)
    open_note = f", {m['n_open']:,} open" if m["n_open"] else ""
    settled = f"{n:,} settled trades{open_note}; {source}"
    predicted = m["avg_predicted_edge"]
    predicted_note = "" if predicted is None else f"; predicted {predicted:+.3f}"
    sharpe_se = m["sharpe_se"]
    se_note = "" if sharpe_se is None else f" ± {sharpe_se:.2f} (standard error)"
    return [
        metric(f"{prefix}_win_rate", m["win_rate"], n, settled),
        metric(
            f"{prefix}_ev",
            ev if ev is not None else m["avg_realised_edge"],
            n,
            settled + predicted_note,
        ),
        metric(f"{prefix}_sharpe", m["daily_sharpe"], days, f"{days:,} days{se_note}"),
        metric(
            f"{prefix}_max_drawdown",
            m["max_drawdown"] if n else None,
            n,
            f"final bankroll {m['final_bankroll']:,.0f} of {config.edge.bankroll:,.0f}",
        ),
    ]


def _none(prefix: str, why: str) -> list[Metric]:
    return [
        metric(f"{prefix}_{k}", None, 0, why) for k in ("win_rate", "ev", "sharpe", "max_drawdown")
    ]


def ledger_health(conn: duckdb.DuckDBPyConnection) -> list[Metric]:
    """The forward ledger's trading metrics ("no settled positions yet" without any)."""
    present = _columns(conn, LEDGER_TABLE)
    if not present:
        return _none("ledger", "no settled positions yet (no paper ledger in this warehouse)")
    missing = [c for c in LEDGER_COLUMNS if c not in present]
    if missing:
        return _none("ledger", f"paper_ledger lacks {', '.join(missing)}: not read")
    settled = conn.execute(
        "SELECT market_id, opened_at AS window_start, settled_at, "
        "stake, pnl, price_paid AS cost, predicted_edge AS predicted_ev, pnl > 0 AS won, "
        "realised_edge FROM paper_ledger "
        "WHERE status = 'settled' AND pnl IS NOT NULL AND settled_at IS NOT NULL "
        "ORDER BY settled_at"
    ).pl()
    if settled.is_empty():
        return _none("ledger", "no settled positions yet")
    n_open = conn.execute("SELECT count(*) FROM paper_ledger WHERE status = 'open'").fetchone()[0]
    opened = pl.DataFrame(
        {"won": [None] * int(n_open)}, schema={"won": pl.Boolean}
    )  # open positions only count in n_open
    trades = pl.concat([settled.drop("realised_edge"), opened], how="diagonal_relaxed")
    ev = settled["realised_edge"].mean()
    return _trading_metrics(
        "ledger",
        trades.with_columns(pl.lit(None, dtype=pl.String).alias("cluster")),
        float(ev) if ev is not None else None,
        "forward paper ledger",
        PaperConfig(edge=LEDGER_CONFIG.edge),
    )


def backtest_health(conn: duckdb.DuckDBPyConnection) -> list[Metric]:
    """The walk-forward backtest's trading metrics (``paper_trades``)."""
    if not _columns(conn, "paper_trades"):
        return _none("backtest", "no backtest yet: btc-tracker train")
    trades = conn.execute("SELECT * FROM paper_trades").pl()
    if trades.is_empty():
        return _none("backtest", "no backtest trade: nothing was recommended out of sample")
    version = trades["model_version"][0]
    return _trading_metrics("backtest", trades, None, f"backtest of model {version}", PaperConfig())


def trading_health(conn: duckdb.DuckDBPyConnection) -> list[Metric]:
    """The forward ledger's metrics, then the backtest's."""
    return [*ledger_health(conn), *backtest_health(conn)]
