"""Model assets: the calibrated XGBoost model, the edge report, the paper backtest."""

import base64
import io
import json
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from btc_tracker_pipeline.defs.engine import Tally, WindowRun, table_preview
from btc_tracker_pipeline.defs.features.assets import market_indicators
from btc_tracker_pipeline.defs.labels.assets import market_resolutions
from btc_tracker_pipeline.defs.markets.paths import market_paths
from btc_tracker_pipeline.defs.model.inputs import (
    edge_inputs,
    path_edge_inputs,
    training_paths,
    training_tables,
    with_path_inputs,
)
from btc_tracker_pipeline.defs.resources import (
    ClockResource,
    ModelStoreResource,
    WarehouseResource,
)
from btc_tracker_pipeline.defs.shared import (
    DUCKDB_WRITE_POOL,
    OWNERS,
    of_chosen,
    preview,
    window_asset,
)
from btc_tracker_pipeline.model.dataset import (
    EXCLUDED_FEATURES,
    build_dataset,
    check_path_offsets,
    dataset_losses,
)
from btc_tracker_pipeline.model.depth import warehouse_book_liquidity
from btc_tracker_pipeline.model.edges import (
    REPORT_INPUTS,
    EdgeConfig,
    proven_families,
    top_opportunities_markdown,
)
from btc_tracker_pipeline.model.edges import (
    edge_report as compute_edge_report,
)
from btc_tracker_pipeline.model.metrics import proven_by_fold
from btc_tracker_pipeline.model.oracle import recorded_world, with_oracle
from btc_tracker_pipeline.model.paper import PaperConfig, simulate, walk_forward_report
from btc_tracker_pipeline.model.rules import (
    MIN_FAMILY_EVENTS,
    MIN_FAMILY_MARKETS,
    MIN_RESOLVED_MARKETS,
)
from btc_tracker_pipeline.model.scoring import newest_model, with_model_probabilities
from btc_tracker_pipeline.model.skill_text import (
    interval_text,
    oracle_cell,
    skill_cell,
    skill_test_line,
)
from btc_tracker_pipeline.partitions import WINDOW as _WINDOW
from btc_tracker_pipeline.warehouse import TableWrite, replace_table

EDGE_CONFIG = EdgeConfig()
PAPER_CONFIG = PaperConfig(edge=EDGE_CONFIG)


class TrainingSettings(dg.Config):
    """How much history training needs and how the walk-forward is cut."""

    min_resolved_markets: int = Field(
        MIN_RESOLVED_MARKETS,
        description="Refuse to train below this many usable resolved markets (default 200:"
        " below it a calibration curve and a skill interval are noise, docs/modeling.md §4).",
    )
    test_span_hours: float = Field(24.0, description="Length of each walk-forward test window.")
    embargo_hours: float = Field(1.0, description="Gap between training labels and a test window.")
    min_family_markets: int = Field(
        MIN_FAMILY_MARKETS,
        description="A family is modelled only with at least this many resolved markets …",
    )
    min_family_events: int = Field(
        MIN_FAMILY_EVENTS,
        description="… in at least this many events (a ladder's strikes are one event);"
        " other families get no model view and the card says why.",
    )
    path_offsets: list[int] = Field(
        default_factory=list,
        description="Minutes since the open at which an up/down market's minute path gives"
        " a dataset row (market_paths); empty = every minute from the open to one before"
        " the expiry.",
    )


class EdgeSettings(dg.Config):
    """The minimum net edge (after fees and spread) to recommend a trade: --min-edge."""

    min_edge: float = EDGE_CONFIG.min_edge


def spread_summary(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Rows and mean spread per ``spread_source`` (book, estimated, default)."""
    return (
        frame.group_by("spread_source")
        .agg(pl.len().alias("rows"), pl.col(column).mean().round(4).alias("mean_spread"))
        .sort("spread_source")
    )


def _cell(block: dict, key: str, digits: int = 3) -> str:
    value = block.get(key)
    return "" if value is None else f"{value:.{digits}f}"


def _metrics_markdown(report: dict) -> str:
    """The walk-forward metrics, overall and per family, as a Markdown table, and the
    skill test (intervals below MIN_CLUSTERS clusters read "insufficient clusters (N)")."""
    rows = [
        "| slice | markets | events | Brier model | Brier market | BSS vs market (95 % CI) | "
        "skill proven (corrected CI) | oracle BSS (95 % CI), captured | BSS vs structural | "
        "ECE model / market | AUC model / market | accuracy | precision | mean shift |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    shifts = (report.get("shift") or {}).get("shift_by_family") or {}
    shifts = {"overall": (report.get("shift") or {}).get("mean_shift"), **shifts}
    blocks = [("overall", report["overall"]), *sorted(report.get("by_family", {}).items())]
    for name, b in blocks:
        rows.append(
            f"| {name} | {b.get('n_markets', '')} | {b.get('n_clusters', '')} | "
            f"{_cell(b, 'brier_model', 4)} | {_cell(b, 'brier_market', 4)} | "
            f"{_cell(b, 'bss_vs_market')}{interval_text(b)} | {skill_cell(b)} | "
            f"{oracle_cell(b) or 'n/a (real data)'} | "
            f"{_cell(b, 'bss_vs_struct')} | {_cell(b, 'ece_model')} / {_cell(b, 'ece_market')} | "
            f"{_cell(b, 'auc_model')} / {_cell(b, 'auc_market')} | {_cell(b, 'accuracy')} | "
            f"{_cell(b, 'precision')} | {_cell({'s': shifts.get(name)}, 's', 4)} |"
        )
    return "\n".join(rows) + "\n\n" + skill_test_line(report)


def _reliability_png(report: dict) -> str | None:
    """A reliability plot as a Markdown image (base64 PNG), or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    table = report["overall"].get("reliability") or []
    xs = [r["mean_p"] for r in table if r.get("n")]
    ys = [r["observed"] for r in table if r.get("n")]
    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(xs, ys, "o-", label="model (walk-forward)")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return f"![reliability](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


@dg.asset(
    deps=[market_indicators, market_resolutions, market_paths],
    group_name="model",
    kinds={"xgboost", "duckdb"},
    owners=OWNERS,
    pool=DUCKDB_WRITE_POOL,
)
def price_model(
    context: dg.AssetExecutionContext,
    config: TrainingSettings,
    warehouse: WarehouseResource,
    model_store: ModelStoreResource,
) -> dg.MaterializeResult:
    """XGBoost on labelled indicators, calibrated, evaluated walk-forward against the market.

    Evaluation: walk-forward by resolution time, grouped by market and event, purged and
    embargoed; Brier / log-loss skill against the market price and the structural
    probability with cluster-bootstrap 95 % intervals. Then a final model on all data
    is saved under data/models/ with a JSON card. Retrained daily (train_job schedule).
    """
    # XGBoost and scikit-learn load here, not with the code location (~1.5 s a process).
    from btc_tracker_pipeline.model.artifact import save_model
    from btc_tracker_pipeline.model.train import (
        InsufficientDataError,
        family_counts,
        refusal_message,
        require_markets,
        select_families,
        train_final,
        walk_forward_evaluate,
    )

    try:
        offsets = check_path_offsets(config.path_offsets)
    except ValueError as exc:
        raise dg.Failure(f"not training: {exc}") from exc
    with warehouse.connect() as conn:
        indicators, resolutions, markets = training_tables(conn)
        paths = training_paths(conn)
    dataset = build_dataset(indicators, resolutions, markets, paths, offsets)
    # On a simulated world, the fair value each row was priced from: the skill ceiling.
    world = recorded_world(Path(warehouse.path), dataset)
    dataset = with_oracle(dataset, world)
    try:
        require_markets(dataset, config.min_resolved_markets)
        dataset, left_out = select_families(
            dataset, config.min_family_markets, config.min_family_events
        )
        predictions, report = walk_forward_evaluate(
            dataset,
            min_markets=config.min_resolved_markets,
            test_span=timedelta(hours=config.test_span_hours),
            embargo=timedelta(hours=config.embargo_hours),
        )
        model = train_final(dataset, min_markets=config.min_resolved_markets)
    except InsufficientDataError as exc:
        _, resolved, losses = dataset_losses(indicators, resolutions, markets, paths, offsets)
        raise dg.Failure(f"not training: {refusal_message(exc, resolved, losses)}") from exc
    card = {
        "data_window": {
            "first_snapshot": str(dataset["snapshot_ts"].min()),
            "last_snapshot": str(dataset["snapshot_ts"].max()),
            "last_resolution": str(dataset["resolved_at"].max()),
        },
        "n_markets": dataset["market_id"].n_unique(),
        "n_rows": dataset.height,
        # In-window rows of up/down markets (market_paths) at these offsets ([] = all).
        "path_offsets": offsets,
        "n_path_markets": dataset.filter(pl.col("move_sigma").is_not_null())[
            "market_id"
        ].n_unique(),
        # Markets per family the model learned from: edge_report gives it no say elsewhere.
        "trained_families": {
            family: markets for family, (markets, _) in family_counts(dataset).items()
        },
        # Families below the minimums, with their counts: no model view on them.
        "excluded_families": {
            family: f"{why}; needs {config.min_family_markets} markets in "
            f"{config.min_family_events} events"
            for family, why in left_out.items()
        },
        # The simulated world whose fair values score the model (bss_oracle); null on real data.
        "oracle": world.identity() if world is not None else None,
        # Dataset columns the model does not use, and why (it uses card["features"]).
        "excluded_features": EXCLUDED_FEATURES,
        "metrics": report,
    }
    folder = save_model(model, card, Path(model_store.models_dir))
    version = folder.name
    with warehouse.connect() as conn:
        frame = predictions.with_columns(pl.lit(version).alias("model_version"))
        replace_table(conn, "model_predictions", frame)
    importance = model.feature_importance().head(15)
    plot = _reliability_png(report)
    overall = report["overall"]
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "artifact": dg.MetadataValue.path(str(folder)),
            "n_markets": dg.MetadataValue.int(card["n_markets"]),
            "n_rows": dg.MetadataValue.int(card["n_rows"]),
            "bss_vs_market": dg.MetadataValue.float(float(overall.get("bss_vs_market") or 0.0)),
            # Simulated worlds only: the fair value's skill (the ceiling), share captured.
            **{
                key: dg.MetadataValue.float(float(overall[key]))
                for key in ("bss_oracle", "share_captured")
                if overall.get(key) is not None
            },
            "mean_shift": dg.MetadataValue.float(float(report["shift"]["mean_shift"] or 0.0)),
            "metrics": dg.MetadataValue.md(_metrics_markdown(report)),
            "feature_importance": preview(importance, rows=15),
            **({"reliability_plot": dg.MetadataValue.md(plot)} if plot else {}),
            "report": dg.MetadataValue.json(json.loads(json.dumps(report, default=str))),
        }
    )


@dg.asset(
    deps=[price_model],
    group_name="model",
    kinds={"polars", "duckdb"},
    owners=OWNERS,
    pool=DUCKDB_WRITE_POOL,
)
def paper_trades(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The paper backtest: the walk-forward (out-of-sample) recommendations filled on past data.

    A backtest, rewritten by every training; the forward ledger of live recommendations
    is paper_ledger (`btc-tracker paper`).

    Fills YES at the ask and NO at 1 − bid with the market's taker fee (a row without a
    book: its price ± half the spread the warehouse's live books show for that family and
    price level, else ± 1.5¢ of a 3¢ default; each trade keeps its spread), plus the
    slippage of walking the book for its stake (the market's liquidity, else its
    family's live median, else $2,000), sized by fractional Kelly on a compounding
    bankroll (caps per market and per event), one trade per market; configuration
    frozen in PAPER_CONFIG. Only predictions the model made before seeing the market's
    outcome are traded (price_model's walk-forward folds), and in each fold only the
    families whose skill against the market was proven on the folds before it (the
    card's corrected test, no look-ahead; none in the first fold).
    """
    with warehouse.connect() as conn:
        predictions = conn.sql("SELECT * FROM model_predictions").pl()
        if predictions.is_empty():
            raise dg.Failure("no walk-forward predictions yet: materialize price_model first")
        if "fold" not in predictions.columns:
            raise dg.Failure("model_predictions has no fold column: materialize price_model")
        start = predictions["snapshot_ts"].min()
        end = predictions["snapshot_ts"].max()
        inputs = warehouse_book_liquidity(conn, edge_inputs(conn, start - _WINDOW, end))
        lag = timedelta(minutes=PAPER_CONFIG.entry_lag_minutes)
        path_inputs = warehouse_book_liquidity(conn, path_edge_inputs(conn, start, end, lag))
        resolutions = conn.sql(
            "SELECT market_id, yes_won, settled_at FROM market_resolutions "
            "WHERE status = 'resolved'"
        ).pl()
    predicted = predictions.select("market_id", "snapshot_ts", "model_prob", "fold")
    rows = inputs.join(predicted, on=["market_id", "snapshot_ts"], how="inner")
    # In-window rows (market_paths): a market trained on its path is traded on it alone,
    # each minute filled at the minute, with the path row's structural probability.
    path_rows = path_inputs.join(
        predictions.select(
            "market_id", "snapshot_ts", "model_prob", "fold", "structural_probability"
        ),
        on=["market_id", "snapshot_ts"],
        how="inner",
    )
    if path_rows.height:
        pathed = path_rows["market_id"].unique().implode()
        rows = pl.concat(
            [rows.filter(~pl.col("market_id").is_in(pathed)), path_rows],
            how="diagonal_relaxed",
        )
    # Fold k trades only the families proven on folds < k: no look-ahead.
    tradeable = proven_by_fold(predictions)
    columns = [*REPORT_INPUTS, "fold", "book_liquidity", "liquidity_source"]
    report = walk_forward_report(rows.select(columns), PAPER_CONFIG.edge, tradeable)
    trades, metrics = simulate(report, resolutions, PAPER_CONFIG)
    version = predictions["model_version"][0]
    with warehouse.connect() as conn:
        frame = trades.with_columns(pl.lit(version).alias("model_version"))
        replace_table(conn, "paper_trades", frame)
    table = pl.DataFrame(
        {
            "metric": list(metrics),
            "value": [None if v is None else float(v) for v in metrics.values()],
        }
    )
    edges = {
        key: dg.MetadataValue.float(float(metrics[key]))
        for key in ("avg_predicted_edge", "avg_realised_edge", "edge_gap")
        if metrics.get(key) is not None
    }
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "n_trades": dg.MetadataValue.int(int(metrics.get("n_trades") or 0)),
            "roi_per_dollar": dg.MetadataValue.float(float(metrics.get("roi_per_dollar") or 0.0)),
            # Predicted vs realised edge, side by side (edge_gap = predicted − realised).
            **edges,
            "tradeable_by_fold": preview(fold_gates(predictions, report, tradeable), rows=100),
            "tradeable_families": dg.MetadataValue.json(
                {str(fold): sorted(families) for fold, families in tradeable.items()}
            ),
            "metrics": preview(table, rows=30),
            "spreads": preview(spread_summary(trades, "spread"), rows=5),
            "mean_slippage": dg.MetadataValue.float(
                float(trades["slippage"].mean()) if trades.height else 0.0
            ),
            "paper_metrics": dg.MetadataValue.json(
                {k: (None if v is None else float(v)) for k, v in metrics.items()}
            ),
            "config": dg.MetadataValue.json(PAPER_CONFIG.model_dump()),
        }
    )


def fold_gates(
    predictions: pl.DataFrame, report: pl.DataFrame, tradeable: dict[int, set[str]]
) -> pl.DataFrame:
    """Per walk-forward fold: its snapshots, the families tradeable in it (proven on
    the folds before), its BUY rows and its would-be buys PASSed as no_proven_skill."""
    per_fold = (
        report.group_by("fold")
        .agg(
            (pl.col("recommendation") != "PASS").sum().alias("buy_rows"),
            pl.col("flags").str.contains("no_proven_skill").sum().alias("no_proven_skill_rows"),
        )
        .with_columns(pl.col("fold").cast(pl.Int64))
    )
    gates = pl.DataFrame(
        {
            "fold": list(tradeable),
            "tradeable_families": [", ".join(sorted(f)) or "none" for f in tradeable.values()],
        },
        schema={"fold": pl.Int64, "tradeable_families": pl.String},
    )
    return (
        predictions.group_by(pl.col("fold").cast(pl.Int64))
        .agg(
            pl.col("snapshot_ts").min().alias("first_snapshot"),
            pl.col("snapshot_ts").max().alias("last_snapshot"),
        )
        .join(gates, on="fold", how="left")
        .join(per_fold, on="fold", how="left")
        .with_columns(
            pl.col("tradeable_families").fill_null("none"),
            pl.col("buy_rows", "no_proven_skill_rows").fill_null(0),
        )
        .sort("fold")
    )


@window_asset(
    deps=[market_indicators, market_paths, price_model],
    group_name="report",
    kinds={"xgboost", "duckdb"},
)
def edge_report(
    context: dg.AssetExecutionContext,
    config: EdgeSettings,
    warehouse: WarehouseResource,
    model_store: ModelStoreResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    """Per open market: market vs model probability, net edge after fees and spread,
    BUY YES / BUY NO / PASS above min_edge, fractional-Kelly stake, flags.

    Rows without a book (history) assume the spread the warehouse's live books show for
    the family and price level (flag estimated_spread), else 3¢ (flag default_spread);
    spread_used and spread_source say which.

    Recommends only in the families whose skill against the market the model's
    walk-forward evaluation proved (the card's metrics.skill_test.proven_families,
    Bonferroni-corrected); elsewhere a would-be BUY is PASS with the flag
    no_proven_skill (side and net edge kept). A card without the test proves nothing.

    An open up/down market is scored as the model learned it: on its minute path
    (market_paths), the window end being one more minute of it.

    Uses the newest saved model; windows the model was trained on are marked in_sample
    (the paper_trades backtest is the honest out-of-sample test; paper_ledger trades the
    live windows only). Without a model every row is PASS (no_model).
    A run for chosen markets replaces only their rows.
    """
    with WindowRun.start(context, "edge_report", warehouse, clock.now()) as run:
        model, card, version, last_seen = newest_model(Path(model_store.models_dir), context.log)
        # Trades only where the model's walk-forward test proved skill (none for an old card).
        proven = proven_families(card)
        with warehouse.connect() as conn:
            rows = of_chosen(edge_inputs(conn, run.start_at, run.end_at), run.chosen)
            as_learned = with_path_inputs(conn, rows)
        # The model scores an open up/down market on its minute path, as it learned it;
        # the report's own columns (structural probability, time left, …) stay the window's.
        scored = with_model_probabilities(as_learned, model, card)
        rows = rows.with_columns(scored["model_prob"])
        settings = EDGE_CONFIG.model_copy(update={"min_edge": config.min_edge})
        report = compute_edge_report(rows.select(REPORT_INPUTS), settings, proven).with_columns(
            (pl.col("window_start") + _WINDOW).alias("window_end"),
            pl.lit(version, dtype=pl.String).alias("model_version"),
            (
                pl.lit(last_seen is not None)
                & (pl.col("window_start") + _WINDOW <= pl.lit(last_seen, dtype=pl.Datetime("us")))
            ).alias("in_sample"),
        )
        last = run.last_window(report)
        return run.finish(
            [TableWrite("edge_report", report, on_empty="keep", market_ids=run.chosen)],
            Tally(tried=rows, ok=report),
            preview=last.select(
                "market_id",
                "family",
                "market_prob",
                "model_prob",
                "side",
                "net_edge",
                "recommendation",
            ),
            metadata={
                "model_version": str(version),
                "recommendations": table_preview(
                    report.group_by("recommendation").len().sort("recommendation")
                ),
                "spreads": table_preview(spread_summary(report, "spread_used"), rows=5),
                "top_opportunities": dg.MetadataValue.md(top_opportunities_markdown(last)),
                "proven_families": dg.MetadataValue.json(sorted(proven)),
                "skill_gate": dg.MetadataValue.md(skill_gate_markdown(card, report)),
            },
        )


def skill_gate_markdown(card: dict | None, report: pl.DataFrame) -> str:
    """Why would-be trades are PASS: the card's skill test and the no_proven_skill rows."""
    gated = report.filter(pl.col("flags").str.contains("no_proven_skill"))
    if card is None:
        return "No model: every row is PASS (no_model)."
    line = skill_test_line(card.get("metrics") or {})
    if gated.is_empty():
        return line
    families = ", ".join(sorted(str(f) for f in gated["family"].unique().to_list()))
    return (
        f"{line}\n\n{gated.height} would-be trades are PASS with no_proven_skill "
        f"(families: {families}); their side and net edge are kept in the table."
    )
