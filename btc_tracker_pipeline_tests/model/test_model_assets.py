"""The model assets' text on the skill gate: the metrics table, the edge report's
skill_gate note, the folds paper trading could trade in."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from btc_tracker_pipeline.defs.model.assets import (
    _metrics_markdown,
    fold_gates,
    skill_gate_markdown,
)
from btc_tracker_pipeline.model import metrics as m
from btc_tracker_pipeline.model.edges import INPUT_SCHEMA, edge_report, proven_families
from btc_tracker_pipeline.model.skill_text import interval_text, skill_cell, skill_test_line
from btc_tracker_pipeline_tests.model import edge_row
from btc_tracker_pipeline_tests.model.test_metrics import skill_frame

pytestmark = pytest.mark.unit


def test_metrics_table_says_insufficient_clusters_instead_of_an_interval():
    pred = pl.concat([skill_frame({"above": 2}, markets_per_cluster=11), skill_frame({"b": 30})])
    report = m.evaluation_report(pred, n_boot=100)
    text = _metrics_markdown(report)
    above = next(line for line in text.splitlines() if line.startswith("| above |"))
    assert "(insufficient clusters (2))" in above and "[" not in above
    assert "no (not tested: insufficient clusters (2))" in above
    b = next(line for line in text.splitlines() if line.startswith("| b |"))
    assert "yes [" in b
    assert "Skill test (Bonferroni, 1 family at 95.00 %): proven in b" in text


def test_skill_text_of_old_and_new_cards():
    assert interval_text({"bss_vs_market_ci": [-0.01, 0.02]}) == " [-0.010, +0.020]"
    assert interval_text(
        {"bss_vs_market_ci": [None, None], "ci_note": "insufficient clusters (3)"}
    ) == (" (insufficient clusters (3))")
    assert skill_cell({"bss_vs_market": 0.1}) == ""  # an old card's block
    assert "no family is traded" in skill_test_line({"overall": {}, "by_family": {}})
    test = {"families_tested": 0, "min_clusters": 20, "proven_families": []}
    assert "no family has 20 clusters" in skill_test_line({"skill_test": test})


def test_edge_report_gate_of_a_card_without_skill_test():
    """The asset's path: the card read by proven_families gates every family."""
    old_card = {"metrics": {"overall": {}, "by_family": {"above": {}}}, "trained_families": {}}
    rows = pl.DataFrame(
        [edge_row(market_id="a", model_prob=0.8), edge_row(market_id="b", model_prob=0.1)],
        schema=INPUT_SCHEMA,
    )
    report = edge_report(rows, proven_families=proven_families(old_card))
    assert set(report["recommendation"]) == {"PASS"}
    assert report["flags"].str.contains("no_proven_skill").all()
    note = skill_gate_markdown(old_card, report)
    assert "No skill test in this card" in note
    assert "2 would-be trades are PASS with no_proven_skill (families: above)" in note
    assert skill_gate_markdown(None, report).startswith("No model")


def test_fold_gates_lists_the_tradeable_families_of_each_fold():
    t0 = datetime(2026, 3, 1)
    predictions = pl.DataFrame(
        {
            "fold": pl.Series([0, 0, 1, 2], dtype=pl.Int32),
            "snapshot_ts": [t0, t0 + timedelta(hours=1), t0 + timedelta(days=1), t0 + timedelta(2)],
        }
    )
    report = pl.DataFrame(
        {
            "fold": pl.Series([0, 1, 1], dtype=pl.Int32),
            "recommendation": ["PASS", "BUY YES", "PASS"],
            "flags": ["no_proven_skill", "", "no_proven_skill"],
        }
    )
    table = fold_gates(predictions, report, {0: set(), 1: {"above"}, 2: {"above", "b"}})
    assert table.select(
        "fold", "tradeable_families", "buy_rows", "no_proven_skill_rows"
    ).rows() == [
        (0, "none", 0, 1),
        (1, "above", 1, 1),
        (2, "above, b", 0, 0),
    ]
    assert table["last_snapshot"][0] == t0 + timedelta(hours=1)
