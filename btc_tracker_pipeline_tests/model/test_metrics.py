"""Scores on hand-made cases, weights, and the cluster bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from btc_tracker_pipeline.model import metrics as m

pytestmark = pytest.mark.unit


def test_brier_and_weights():
    p, y = [0.2, 0.9], [0, 1]
    assert m.brier(p, y) == pytest.approx((0.04 + 0.01) / 2)
    assert m.brier(p, y, [3, 1]) == pytest.approx((3 * 0.04 + 0.01) / 4)
    # A weight of 2 is the same as the row twice.
    assert m.brier(p, y, [2, 1]) == pytest.approx(m.brier([0.2, 0.2, 0.9], [0, 0, 1]))


def test_log_loss_and_clipping():
    assert m.log_loss([0.5], [1]) == pytest.approx(math.log(2))
    assert m.log_loss([0.8, 0.3], [1, 0], [1, 3]) == pytest.approx(
        -(math.log(0.8) + 3 * math.log(0.7)) / 4
    )
    # p = 0 for a YES is clipped to 0.001, not infinite.
    assert m.log_loss([0.0], [1]) == pytest.approx(-math.log(m.LOGLOSS_EPS))
    assert m.log_loss([1.0], [1]) == pytest.approx(-math.log(1 - m.LOGLOSS_EPS))


def test_skill_scores():
    p, base, y = [0.2, 0.9], [0.5, 0.5], [0, 1]
    assert m.brier_skill_score(p, base, y) == pytest.approx(1 - 0.025 / 0.25)
    assert m.brier_skill_score(base, base, y) == 0.0
    assert m.brier_skill_score([0.8, 0.1], base, y) < 0
    assert m.logloss_skill(p, base, y) == pytest.approx(
        1 - (-(math.log(0.8) + math.log(0.9)) / 2) / math.log(2)
    )
    assert math.isnan(m.skill(0.1, 0.0))
    assert math.isnan(m.brier_skill_score([0.0], [0.0], [0]))


def test_wilson_interval():
    lo, hi = m.wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = m.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = m.wilson_interval(81, 100)
    assert (lo, hi) == (pytest.approx(0.7222, abs=1e-4), pytest.approx(0.8749, abs=1e-4))
    assert all(math.isnan(v) for v in m.wilson_interval(0, 0))


def test_reliability_table_and_ece():
    p, y = [0.05, 0.05, 0.95, 0.95], [0, 1, 1, 1]
    table = m.reliability_table(p, y)
    assert table.height == 10
    assert table["n"].to_list() == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    first, last = table.row(0, named=True), table.row(9, named=True)
    assert first["mean_p"] == pytest.approx(0.05) and first["observed"] == 0.5
    assert (first["wilson_lo"], first["wilson_hi"]) == pytest.approx(m.wilson_interval(1, 2))
    assert last["observed"] == 1.0
    assert table.row(4, named=True)["mean_p"] is None
    assert m.ece(p, y) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    # Weighted: bin 0 weighs 4 (observed 3/4), bin 9 weighs 2.
    w = [1, 3, 1, 1]
    weighted = m.reliability_table(p, y, w).row(0, named=True)
    assert weighted["weight"] == 4 and weighted["observed"] == 0.75
    n_eff = 16 / 10
    assert (weighted["wilson_lo"], weighted["wilson_hi"]) == pytest.approx(
        m.wilson_interval(0.75 * n_eff, n_eff)
    )
    assert m.ece(p, y, w) == pytest.approx((4 * 0.70 + 2 * 0.05) / 6)
    # p = 1 falls in the last bin; a perfectly calibrated set has ECE 0.
    assert m.reliability_table([1.0], [1])["n"][9] == 1
    assert m.ece([0.25] * 4, [1, 0, 0, 0]) == pytest.approx(0.0)


def test_auc_accuracy_precision():
    p, y = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert m.auc(p, y) == pytest.approx(0.75)
    assert m.auc([0.1, 0.9], [0, 1]) == 1.0
    assert m.auc(p, y, [1, 2, 1, 1]) == pytest.approx(
        m.auc([0.1, 0.4, 0.4, 0.35, 0.8], [0, 0, 0, 1, 1])
    )
    assert math.isnan(m.auc([0.2, 0.3], [1, 1]))
    assert m.accuracy([0.6, 0.4, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(0.5)
    assert m.accuracy([0.6, 0.4], [1, 1], [3, 1]) == pytest.approx(0.75)
    assert m.precision([0.6, 0.4, 0.5, 0.7], [1, 1, 0, 1]) == pytest.approx(2 / 3)
    assert m.precision([0.6, 0.5], [1, 0], [1, 3]) == pytest.approx(0.25)
    assert math.isnan(m.precision([0.1], [1]))


def test_calibration_slope_intercept():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 20_000)
    y = rng.uniform(size=p.size) < p
    slope, intercept = m.calibration_slope_intercept(p, y)
    assert slope == pytest.approx(1.0, abs=0.08) and intercept == pytest.approx(0.0, abs=0.05)
    # Over-confident forecasts (logit doubled) have slope ≈ 1/2.
    z = np.log(p / (1 - p))
    slope, _ = m.calibration_slope_intercept(1 / (1 + np.exp(-2 * z)), y)
    assert slope == pytest.approx(0.5, abs=0.05)


def clustered(n_clusters: int, size: int, seed: int) -> pl.DataFrame:
    """Clusters of ``size`` rows sharing a random effect: value = 1 + u_c + e, E = 1."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 1, n_clusters)
    cluster = np.repeat(np.arange(n_clusters), size)
    value = 1.0 + effect[cluster] + rng.normal(0, 0.2, cluster.size)
    return pl.DataFrame({"cluster": cluster.astype(str), "value": value})


def mean(df: pl.DataFrame) -> float:
    return float(df["value"].mean())


def test_cluster_bootstrap_covers_the_truth():
    """A 95 % interval of the mean contains the true mean (1) in ~95 % of 40 samples."""
    covered = 0
    for seed in range(40):
        lo, hi = m.cluster_bootstrap(clustered(30, 5, seed), mean, n=200, seed=seed)
        covered += lo <= 1.0 <= hi
    assert covered >= 34


def test_cluster_bootstrap_is_wider_than_a_row_bootstrap():
    """Rows of one cluster are not independent: resampling rows understates the error."""
    df = clustered(30, 10, 0).with_row_index("row").with_columns(pl.col("row").cast(pl.String))
    lo_c, hi_c = m.cluster_bootstrap(df, mean, n=300)
    lo_r, hi_r = m.cluster_bootstrap(df, mean, cluster_col="row", n=300)
    assert hi_c - lo_c > 2.5 * (hi_r - lo_r)
    assert m.cluster_bootstrap(df, mean, n=300) == (lo_c, hi_c)  # deterministic


def test_skill_bootstrap_matches_the_generic_bootstrap():
    rng = np.random.default_rng(3)
    df = pl.DataFrame(
        {
            "cluster": rng.integers(0, 25, 200).astype(str),
            "p": rng.uniform(0.05, 0.95, 200),
            "base": rng.uniform(0.05, 0.95, 200),
            "y": rng.integers(0, 2, 200),
            "w": rng.uniform(0.1, 1.0, 200),
        }
    )

    def bss(d: pl.DataFrame) -> float:
        return m.brier_skill_score(d["p"], d["base"], d["y"], d["w"])

    fast = m.skill_bootstrap(
        m.brier_losses(df["p"], df["y"]),
        m.brier_losses(df["base"], df["y"]),
        df["w"].to_numpy(),
        df["cluster"],
        n=200,
        seed=5,
    )
    assert fast == pytest.approx(m.cluster_bootstrap(df, bss, n=200, seed=5), abs=1e-12)


def pred_frame(seed: int = 0, n_markets: int = 120) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_markets):
        q = rng.uniform(0.05, 0.95)
        y = int(rng.uniform() < q)
        family = "above" if i % 3 else "updown_15m"
        for _ in range(3):
            rows.append(
                {
                    "market_id": f"m{i}",
                    "family": family,
                    "cluster": f"e{i // 2}",
                    "y": y,
                    "weight": 1 / 3,
                    "model_prob": float(np.clip(q + rng.normal(0, 0.02), 0.01, 0.99)),
                    "market_prob": float(np.clip(q + rng.normal(0, 0.1), 0.01, 0.99)),
                    "structural_probability": None if i % 5 == 0 else q,
                }
            )
    return pl.DataFrame(rows)


def test_evaluation_report():
    pred = pred_frame()
    report = m.evaluation_report(pred, n_boot=200)
    json.dumps(report)  # JSON-ready, no NaN
    overall = report["overall"]
    assert set(report["by_family"]) == {"above", "updown_15m"}
    assert overall["n_markets"] == 120 and overall["n_rows"] == 360
    assert overall["n_clusters"] == 60
    p, mk, y, w = (pred[c] for c in ("model_prob", "market_prob", "y", "weight"))
    assert overall["brier_model"] == pytest.approx(m.brier(p, y, w))
    assert overall["bss_vs_market"] == pytest.approx(m.brier_skill_score(p, mk, y, w))
    assert overall["logloss_skill_vs_market"] == pytest.approx(m.logloss_skill(p, mk, y, w))
    lo, hi = overall["bss_vs_market_ci"]
    assert lo < overall["bss_vs_market"] < hi and lo > 0  # the model is the sharper one
    has = pred.filter(pl.col("structural_probability").is_not_null())
    assert overall["n_rows_struct"] == has.height
    assert overall["brier_struct"] == pytest.approx(
        m.brier(has["structural_probability"], has["y"], has["weight"])
    )
    assert overall["bss_vs_struct"] < 0  # the truth q beats the noisy model
    assert len(overall["reliability"]) == 10
    for key in (
        "ece_model",
        "ece_market",
        "auc_model",
        "auc_market",
        "accuracy",
        "precision",
        "calibration_slope",
    ):
        assert isinstance(overall[key], float), key
    assert report["by_family"]["updown_15m"]["n_markets"] == 40


def test_report_of_the_market_itself_has_zero_skill():
    pred = pred_frame().with_columns(pl.col("market_prob").alias("model_prob"))
    overall = m.evaluation_report(pred, n_boot=100)["overall"]
    assert overall["bss_vs_market"] == 0.0
    assert overall["bss_vs_market_ci"] == [0.0, 0.0]


def test_report_edge_cases():
    pred = pred_frame().with_columns(pl.lit(None, dtype=pl.Float64).alias("structural_probability"))
    overall = m.evaluation_report(pred, n_boot=50)["overall"]
    assert overall["brier_struct"] is None and overall["bss_vs_struct_ci"] == [None, None]
    empty = m.evaluation_report(pred.clear())
    assert empty["overall"] is None and empty["by_family"] == {}
    assert empty["skill_test"]["families_tested"] == 0
    assert empty["skill_test"]["proven_families"] == []
    with pytest.raises(ValueError, match="lacks columns"):
        m.evaluation_report(pred.drop("cluster"))


# --- intervals need clusters; skill proven per family (Bonferroni) ------------------------


def skill_frame(
    families: dict[str, int],
    *,
    markets_per_cluster: int = 10,
    model_noise: float = 0.01,
    shrink: float = 0.3,
    model_is_market: bool = False,
    seed: int = 0,
    fold: int = 0,
) -> pl.DataFrame:
    """Predictions of ``families`` {name: clusters}, ``markets_per_cluster`` markets per
    cluster (one row each): the truth q, the model q ± ``model_noise``, the market pulled
    towards 50¢, 0.5 + ``shrink``·(q − 0.5) (or, with ``model_is_market``, the model is
    the market ± ``model_noise``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for family, n_clusters in families.items():
        for c in range(n_clusters):
            for j in range(markets_per_cluster):
                q = rng.uniform(0.02, 0.98)
                market = 0.5 + shrink * (q - 0.5)
                model = q + rng.normal(0, model_noise)
                if model_is_market:
                    model = market + rng.normal(0, model_noise)
                rows.append(
                    {
                        "fold": fold,
                        "market_id": f"{family}-f{fold}-c{c}-m{j}",
                        "family": family,
                        "cluster": f"{family}-f{fold}-c{c}",
                        "y": int(rng.uniform() < q),
                        "weight": 1.0,
                        "model_prob": float(np.clip(model, 0.01, 0.99)),
                        "market_prob": market,
                        "structural_probability": q,
                    }
                )
    return pl.DataFrame(rows)


def test_percentiles_take_a_level():
    values = np.arange(1001, dtype=float)
    assert m._percentiles(values) == pytest.approx((25.0, 975.0))
    assert m._percentiles(values, level=0.99) == pytest.approx((5.0, 995.0))
    with pytest.raises(ValueError, match="level"):
        m._percentiles(values, level=1.0)


def test_a_block_of_two_clusters_has_no_interval_only_the_note():
    """The demo's case: 22 markets in 2 events, a sharp model; point estimates only."""
    pred = skill_frame({"above": 2}, markets_per_cluster=11)
    report = m.evaluation_report(pred, n_boot=100)
    for block in (report["overall"], report["by_family"]["above"]):
        assert block["n_markets"] == 22 and block["n_clusters"] == 2
        assert block["bss_vs_market"] > 0.1  # the point estimate stays
        assert block["ci_note"] == "insufficient clusters (2)"
        for key in ("bss_vs_market_ci", "logloss_skill_vs_market_ci", "bss_vs_struct_ci"):
            assert block[key] == [None, None], key
    above = report["by_family"]["above"]
    assert above["skill_proven"] is False
    assert above["bss_vs_market_ci_corrected"] == [None, None]
    assert "insufficient clusters (2)" in above["skill_note"]
    assert report["skill_test"]["families_tested"] == 0
    assert report["skill_test"]["proven_families"] == []
    json.dumps(report)


def test_nineteen_clusters_are_not_enough_twenty_are():
    report = m.evaluation_report(skill_frame({"a": 19, "b": 20}), n_boot=100)
    a, b = report["by_family"]["a"], report["by_family"]["b"]
    assert a["bss_vs_market_ci"] == [None, None] and a["ci_note"] == "insufficient clusters (19)"
    assert None not in b["bss_vs_market_ci"] and b["ci_note"] is None
    assert report["overall"]["ci_note"] is None
    assert report["skill_test"]["families_tested"] == 1


def test_clear_skill_over_40_clusters_is_proven():
    report = m.evaluation_report(skill_frame({"above": 40}), n_boot=200)
    above = report["by_family"]["above"]
    test = report["skill_test"]
    assert test["method"] == "Bonferroni" and test["families_tested"] == 1
    assert test["level"] == pytest.approx(0.95)
    assert test["proven_families"] == ["above"]
    assert above["skill_proven"] is True and above["skill_note"].startswith("proven")
    assert above["bss_vs_market_ci_corrected"][0] > 0


def test_five_families_are_tested_at_the_bonferroni_level():
    families = {f"f{i}": 40 for i in range(5)}
    pred = skill_frame(families)
    report = m.evaluation_report(pred, n_boot=500)
    test = report["skill_test"]
    assert test["families_tested"] == 5
    assert test["level"] == pytest.approx(0.99)
    assert test["n_boot"] == m.corrected_draws(500, 5) == 2000
    assert sorted(test["proven_families"]) == sorted(families)
    for family, part in pred.partition_by("family", as_dict=True).items():
        block = report["by_family"][family[0]]
        lo, hi = block["bss_vs_market_ci"]
        clo, chi = block["bss_vs_market_ci_corrected"]
        assert clo < lo and chi > hi  # 99 % is wider than 95 %
        y = part["y"].to_numpy()
        expected = m.skill_bootstrap(
            m.brier_losses(part["model_prob"], y),
            m.brier_losses(part["market_prob"], y),
            part["weight"].to_numpy(),
            part["cluster"],
            2000,
            0,
            level=0.99,
        )
        assert (clo, chi) == pytest.approx(expected)


def test_a_model_no_better_than_the_market_is_not_proven():
    pred = skill_frame({"above": 40}, model_is_market=True, model_noise=0.02)
    report = m.evaluation_report(pred, n_boot=200)
    above = report["by_family"]["above"]
    assert report["skill_test"]["families_tested"] == 1
    assert report["skill_test"]["proven_families"] == []
    assert above["skill_proven"] is False and above["skill_note"].startswith("not proven")
    assert above["bss_vs_market_ci_corrected"][0] <= 0


def test_the_copy_of_the_market_is_never_proven():
    pred = skill_frame({"above": 40}).with_columns(pl.col("market_prob").alias("model_prob"))
    report = m.evaluation_report(pred, n_boot=100)
    assert report["by_family"]["above"]["bss_vs_market_ci_corrected"] == [0.0, 0.0]
    assert report["skill_test"]["proven_families"] == []


def test_corrected_draws_fill_the_tails():
    assert m.corrected_draws(1000, 1) == 2000
    assert m.corrected_draws(5000, 1) == 5000
    assert m.corrected_draws(1000, 10) == 4000  # α/2k = 0.25 %: 10 draws in each tail


# --- proven_by_fold: the walk-forward gate of paper trading --------------------------------


def test_proven_by_fold_never_uses_the_folds_own_predictions():
    """Fold 2 alone has huge skill; folds 0 and 1 are the market copied. Fold 2 is not
    tradeable on its own evidence; fold 3 may trade on folds 0-2."""
    copy = {"model_is_market": True, "model_noise": 0.0}
    pred = pl.concat(
        [
            skill_frame({"above": 30, "updown_1h": 30}, fold=0, seed=1, **copy),
            skill_frame({"above": 30, "updown_1h": 30}, fold=1, seed=2, **copy),
            skill_frame({"above": 60}, fold=2, seed=3),
            skill_frame({"updown_1h": 30}, fold=2, seed=5, **copy),
            skill_frame({"above": 30, "updown_1h": 30}, fold=3, seed=4, **copy),
        ]
    )
    # On fold 2's own rows the skill is proven: a gate that looked at it would trade.
    own, _ = m.skill_test(pred.filter(pl.col("fold") == 2), n_boot=200)
    assert "above" in own["proven_families"]
    gates = m.proven_by_fold(pred, n_boot=200)
    assert gates[0] == set() and gates[1] == set() and gates[2] == set()
    assert gates[3] == {"above"}


def test_proven_by_fold_counts_families_of_the_prior_folds_only():
    pred = pl.concat(
        [
            skill_frame({"above": 40}, fold=0),
            skill_frame({"above": 40, "below": 5}, fold=1, seed=1),
        ]
    )
    gates = m.proven_by_fold(pred, n_boot=200)
    assert gates == {0: set(), 1: {"above"}}
