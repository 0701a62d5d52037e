"""Probability scores, skill against a baseline, calibration, and cluster-bootstrap CIs.

Every score takes probabilities ``p``, outcomes ``y`` ∈ {0, 1} and optional weights
``w`` (default 1 each; the dataset's ``weight`` = 1/rows-of-market makes every market
count once). docs/modeling.md §2.3 defines them; ``evaluation_report`` is the §5
headline table (model vs market B0 vs structural B1, per family).

Intervals and the skill test:

* **Enough clusters.** A percentile cluster bootstrap resamples events (clusters), and
  below ``MIN_CLUSTERS`` (20) independent events its intervals have no coverage worth
  the name (with 2 events there are 3 distinct resamples). A block with fewer clusters
  keeps its point estimates but every ``*_ci`` is ``[None, None]`` and its ``ci_note``
  says ``"insufficient clusters (N)"`` (``ci_note`` is None otherwise).
* **Skill proven per family, corrected for multiple testing.** The families with at
  least ``MIN_CLUSTERS`` clusters are tested; with k of them, each gets a Bonferroni
  interval of its BSS vs market at level 1 − α/k (α = ``SKILL_ALPHA`` = 0.05; the
  percentiles 100·α/2k and 100 − 100·α/2k of the same cluster bootstrap, with at least
  ``MIN_CORRECTED_DRAWS`` resamples and enough that each tail holds
  ``MIN_TAIL_DRAWS`` draws), ``bss_vs_market_ci_corrected``. ``skill_proven`` is true
  when its lower bound is > 0: then the chance that any family is declared skilled
  while none is stays ≤ α. On a simulated world (``oracle_prob``: the fair value the
  world priced from) a family is proven only if that fair value's own corrected
  interval is above 0 too: where the world has no skill to find, a model showing some
  is chance (the α of the test) or a leak, never an edge, so an efficient world never
  gets a recommendation. ``skill_note`` gives the reason either way (a family below
  ``MIN_CLUSTERS`` is not proven: "insufficient clusters (N)"). The report's
  ``skill_test`` = ``{"method": "Bonferroni", "alpha", "families_tested": k,
  "level": 1 − α/k (None when k = 0), "n_boot", "min_clusters",
  "proven_families": [...]}``; the edge report recommends trades only in
  ``proven_families`` (``model.edges``). ``proven_by_fold`` applies the same test to
  the walk-forward folds before each one (paper trading without look-ahead).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl

# Log loss clips p to [0.001, 0.999]: Polymarket's smallest tick, so a market price is
# never clipped and the model gets no better floor than the market has.
LOGLOSS_EPS = 1e-3
N_BINS = 10
Z95 = 1.959963984540054
# Below ~20 independent events a percentile cluster bootstrap has no coverage worth the
# name: such a block reports no interval (``ci_note``) and no family skill is proven.
MIN_CLUSTERS = 20
# The family-wise error rate of the skill test (Bonferroni over the families tested).
SKILL_ALPHA = 0.05
# The corrected interval's tails (α/2k each) need resamples: at least this many, and
# enough that each tail holds MIN_TAIL_DRAWS draws (k = 5: 2,000; k = 10: 4,000).
MIN_CORRECTED_DRAWS = 2000
MIN_TAIL_DRAWS = 10
# On a simulated world, the fair value each row was priced from (``model.oracle``).
ORACLE = "oracle_prob"

ArrayLike = np.ndarray | pl.Series | list[float]


def _arrays(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p_ = np.asarray(p, dtype=np.float64)
    y_ = np.asarray(y, dtype=np.float64)
    w_ = np.ones_like(p_) if w is None else np.asarray(w, dtype=np.float64)
    if not (p_.shape == y_.shape == w_.shape):
        raise ValueError(f"p, y and w must have one shape, got {p_.shape}, {y_.shape}, {w_.shape}")
    return p_, y_, w_


def _wmean(values: np.ndarray, w: np.ndarray) -> float:
    total = w.sum()
    return float((values * w).sum() / total) if total > 0 else math.nan


def brier_losses(p: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Per-row Brier loss (p − y)²."""
    p_, y_ = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (p_ - y_) ** 2


def log_losses(p: ArrayLike, y: ArrayLike, eps: float = LOGLOSS_EPS) -> np.ndarray:
    """Per-row log loss −[y ln p + (1 − y) ln(1 − p)], p clipped to [eps, 1 − eps]."""
    p_ = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    y_ = np.asarray(y, dtype=np.float64)
    return -(y_ * np.log(p_) + (1.0 - y_) * np.log(1.0 - p_))


def brier(p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None) -> float:
    """Brier score BS = Σ w (p − y)² / Σ w (0 is perfect, 0.25 is a coin at 0.5)."""
    p_, y_, w_ = _arrays(p, y, w)
    return _wmean(brier_losses(p_, y_), w_)


def log_loss(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, eps: float = LOGLOSS_EPS
) -> float:
    """Log loss LL = −Σ w [y ln p + (1 − y) ln(1 − p)] / Σ w, p clipped to [eps, 1 − eps]."""
    p_, y_, w_ = _arrays(p, y, w)
    return _wmean(log_losses(p_, y_, eps), w_)


def skill(score_model: float, score_base: float) -> float:
    """Skill of a loss against a baseline's: 1 − model/base (> 0: the model is better,
    1: perfect, NaN when the baseline's loss is 0 or NaN)."""
    if not score_base or math.isnan(score_base) or math.isnan(score_model):
        return math.nan
    return 1.0 - score_model / score_base


def brier_skill_score(
    p: ArrayLike, p_base: ArrayLike, y: ArrayLike, w: ArrayLike | None = None
) -> float:
    """BSS = 1 − BS(p) / BS(p_base) on the same rows and weights."""
    return skill(brier(p, y, w), brier(p_base, y, w))


def logloss_skill(
    p: ArrayLike, p_base: ArrayLike, y: ArrayLike, w: ArrayLike | None = None
) -> float:
    """Log-loss skill = 1 − LL(p) / LL(p_base) on the same rows and weights."""
    return skill(log_loss(p, y, w), log_loss(p_base, y, w))


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (95 % by default): centre
    (k + z²/2)/(n + z²), half-width z·√(k(n − k)/n + z²/4)/(n + z²). ``n`` may be an
    effective (weighted) count. (NaN, NaN) when n ≤ 0."""
    if n <= 0:
        return math.nan, math.nan
    phat = successes / n
    z2 = z * z
    centre = (phat + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(max(phat * (1 - phat), 0.0) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def reliability_table(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, bins: int = N_BINS
) -> pl.DataFrame:
    """Reliability table over ``bins`` equal-width bins of p ([0, 0.1), …, [0.9, 1]).

    Per bin: ``n`` rows, ``weight`` (Σ w), ``mean_p`` and ``observed`` (weighted means of
    p and y), and the Wilson 95 % interval of the observed rate computed on the
    effective count n_eff = (Σ w)² / Σ w² (= n when weights are equal). Empty bins are
    kept with n = 0 and null statistics.
    """
    p_, y_, w_ = _arrays(p, y, w)
    index = np.clip((p_ * bins).astype(np.int64), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = index == b
        wb = w_[mask]
        total = float(wb.sum())
        if mask.sum() == 0 or total <= 0:
            rows.append(
                (b, b / bins, (b + 1) / bins, int(mask.sum()), total, None, None, None, None)
            )
            continue
        observed = float((y_[mask] * wb).sum() / total)
        n_eff = total * total / float((wb * wb).sum())
        lo, hi = wilson_interval(observed * n_eff, n_eff)
        mean_p = float((p_[mask] * wb).sum() / total)
        rows.append((b, b / bins, (b + 1) / bins, int(mask.sum()), total, mean_p, observed, lo, hi))
    return pl.DataFrame(
        rows,
        schema={
            "bin": pl.Int64,
            "lo": pl.Float64,
            "hi": pl.Float64,
            "n": pl.Int64,
            "weight": pl.Float64,
            "mean_p": pl.Float64,
            "observed": pl.Float64,
            "wilson_lo": pl.Float64,
            "wilson_hi": pl.Float64,
        },
        orient="row",
    )


def ece(p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, bins: int = N_BINS) -> float:
    """Expected calibration error ECE = Σ_b (W_b / W)·|ȳ_b − p̄_b| over ``bins`` equal-width
    bins (W_b: the bin's weight, ȳ_b and p̄_b its weighted mean outcome and p)."""
    table = reliability_table(p, y, w, bins).filter(pl.col("weight") > 0)
    total = table["weight"].sum()
    if not total:
        return math.nan
    gap = (table["observed"] - table["mean_p"]).abs()
    return float((table["weight"] * gap).sum() / total)


def auc(p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None) -> float:
    """Weighted ROC AUC (sklearn): P(p of a random YES > p of a random NO); NaN with one class."""
    p_, y_, w_ = _arrays(p, y, w)
    if np.unique(y_).size < 2:
        return math.nan
    from sklearn.metrics import roc_auc_score  # scikit-learn loads in ~0.6 s: only here

    return float(roc_auc_score(y_, p_, sample_weight=w_))


def accuracy(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, threshold: float = 0.5
) -> float:
    """Weighted share of rows where (p ≥ threshold) equals y (the seed's accuracy)."""
    p_, y_, w_ = _arrays(p, y, w)
    return _wmean(((p_ >= threshold) == (y_ == 1)).astype(np.float64), w_)


def precision(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None, threshold: float = 0.5
) -> float:
    """Weighted precision of "YES" calls: Σ w·y over rows with p ≥ threshold / Σ w over
    them (the seed's precision); NaN when nothing is called YES."""
    p_, y_, w_ = _arrays(p, y, w)
    called = p_ >= threshold
    return _wmean(y_[called], w_[called]) if called.any() else math.nan


def calibration_slope_intercept(
    p: ArrayLike, y: ArrayLike, w: ArrayLike | None = None
) -> tuple[float, float]:
    """(slope, intercept) of the weighted logistic fit y ~ a + b·logit(p) (ideal 1, 0):
    slope < 1 means over-confident p. p is clipped to [0.001, 0.999]; NaN with one class."""
    p_, y_, w_ = _arrays(p, y, w)
    if np.unique(y_).size < 2:
        return math.nan, math.nan
    q = np.clip(p_, LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    x = np.log(q / (1 - q)).reshape(-1, 1)
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=1000).fit(x, y_.astype(int), sample_weight=w_)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def _cluster_draws(n_clusters: int, n: int, seed: int):
    """The resamples of a cluster bootstrap: ``n`` draws of ``n_clusters`` cluster
    indices with replacement, one rng stream shared by every bootstrap here."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.integers(0, n_clusters, size=n_clusters)


def _percentiles(stats: list[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The two-sided percentile interval at ``level``: percentiles 100·(1 − level)/2 and
    100·(1 + level)/2 of the finite values; (NaN, NaN) without any."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    values = np.asarray(stats, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def cluster_bootstrap(
    df: pl.DataFrame,
    stat_fn: Callable[[pl.DataFrame], float],
    cluster_col: str = "cluster",
    n: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile 95 % CI of ``stat_fn(df)`` resampling whole clusters with replacement.

    Each of ``n`` resamples draws as many clusters as ``df`` has (uniformly, with
    replacement) and stacks all their rows; (lo, hi) are the 2.5th and 97.5th
    percentiles of the statistic (non-finite values ignored). Rows of one cluster
    (the strikes of a ladder: one BTC path) are never treated as independent.
    """
    codes = df[cluster_col].rank("dense").cast(pl.Int64).to_numpy() - 1
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    if n_clusters == 0:
        return math.nan, math.nan
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_clusters + 1))
    members = [order[bounds[c] : bounds[c + 1]] for c in range(n_clusters)]
    stats = []
    for pick in _cluster_draws(n_clusters, n, seed):
        rows = np.concatenate([members[c] for c in pick])
        stats.append(stat_fn(df[rows]))
    return _percentiles(stats)


def skill_bootstrap(
    loss_model: np.ndarray,
    loss_base: np.ndarray,
    w: np.ndarray,
    clusters: np.ndarray | pl.Series,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """The cluster-bootstrap CI at ``level`` of the skill 1 − Σ w·loss_model / Σ w·loss_base.

    Same resamples as ``cluster_bootstrap`` (same seed → same CI), computed from
    per-cluster loss sums instead of stacking rows, so it is fast on large test sets.
    The first ``n`` resamples of a seed are the same whatever ``n``.
    """
    codes = pl.Series(clusters).rank("dense").cast(pl.Int64).to_numpy() - 1
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    if n_clusters == 0:
        return math.nan, math.nan
    model_sums = np.bincount(codes, weights=w * loss_model, minlength=n_clusters)
    base_sums = np.bincount(codes, weights=w * loss_base, minlength=n_clusters)
    stats = np.empty(n, dtype=np.float64)
    draws = _cluster_draws(n_clusters, n, seed)
    # Resamples summed a block at a time (≈ 1M cluster picks), not one Python step each.
    chunk = max(1, 1_000_000 // n_clusters)
    for start in range(0, n, chunk):
        picks = np.stack([next(draws) for _ in range(min(chunk, n - start))])
        base = base_sums[picks].sum(axis=1)
        model = model_sums[picks].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats[start : start + len(picks)] = np.where(base > 0, 1.0 - model / base, math.nan)
    return _percentiles(stats, level)


def _clean(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)


PRED_COLUMNS = (
    "market_id",
    "family",
    "cluster",
    "y",
    "weight",
    "model_prob",
    "market_prob",
    "structural_probability",
)


def _cluster_note(n_clusters: int) -> str | None:
    """ "insufficient clusters (N)" below MIN_CLUSTERS, else None."""
    return f"insufficient clusters ({n_clusters})" if n_clusters < MIN_CLUSTERS else None


def _block(df: pl.DataFrame, n_boot: int, seed: int) -> dict:
    p = df["model_prob"].to_numpy().astype(np.float64)
    m = df["market_prob"].to_numpy().astype(np.float64)
    y = df["y"].to_numpy().astype(np.float64)
    w = df["weight"].to_numpy().astype(np.float64)
    clusters = df["cluster"]
    n_clusters = clusters.n_unique()
    has_struct = df["structural_probability"].is_not_null().to_numpy()
    s = df["structural_probability"].fill_null(math.nan).to_numpy().astype(np.float64)

    bs_p, bs_m = brier_losses(p, y), brier_losses(m, y)
    ll_p, ll_m = log_losses(p, y), log_losses(m, y)
    slope, intercept = calibration_slope_intercept(p, y, w)

    def interval(loss: np.ndarray, base: np.ndarray, ws: np.ndarray, cl: pl.Series) -> list:
        if cl.n_unique() < MIN_CLUSTERS:
            return [None, None]
        return list(skill_bootstrap(loss, base, ws, cl, n_boot, seed))

    block: dict = {
        "n_markets": df["market_id"].n_unique(),
        "n_rows": df.height,
        "n_clusters": n_clusters,
        "yes_rate": _wmean(y, w),
        "brier_model": _wmean(bs_p, w),
        "brier_market": _wmean(bs_m, w),
        "logloss_model": _wmean(ll_p, w),
        "logloss_market": _wmean(ll_m, w),
        "bss_vs_market": skill(_wmean(bs_p, w), _wmean(bs_m, w)),
        "bss_vs_market_ci": interval(bs_p, bs_m, w, clusters),
        "logloss_skill_vs_market": skill(_wmean(ll_p, w), _wmean(ll_m, w)),
        "logloss_skill_vs_market_ci": interval(ll_p, ll_m, w, clusters),
        "ece_model": ece(p, y, w),
        "ece_market": ece(m, y, w),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "auc_model": auc(p, y, w),
        "auc_market": auc(m, y, w),
        "accuracy": accuracy(p, y, w),
        "accuracy_market": accuracy(m, y, w),
        "precision": precision(p, y, w),
        "precision_market": precision(m, y, w),
    }
    # B1 is scored on the rows where it exists, model and structure on the same rows.
    if has_struct.any():
        bs_s = brier_losses(s[has_struct], y[has_struct])
        bs_ps, ws = bs_p[has_struct], w[has_struct]
        block.update(
            n_rows_struct=int(has_struct.sum()),
            brier_struct=_wmean(bs_s, ws),
            brier_model_on_struct_rows=_wmean(bs_ps, ws),
            bss_vs_struct=skill(_wmean(bs_ps, ws), _wmean(bs_s, ws)),
            n_clusters_struct=clusters.filter(has_struct).n_unique(),
            bss_vs_struct_ci=interval(bs_ps, bs_s, ws, clusters.filter(has_struct)),
        )
    else:
        block.update(
            n_rows_struct=0,
            n_clusters_struct=0,
            brier_struct=None,
            brier_model_on_struct_rows=None,
            bss_vs_struct=None,
            bss_vs_struct_ci=[None, None],
        )
    block.update(_oracle(df, bs_p, bs_m, w, interval))
    # Point estimates stay; intervals need MIN_CLUSTERS events (the structural one counts
    # the clusters of its own rows, n_clusters_struct).
    block["ci_note"] = _cluster_note(n_clusters)
    block["reliability"] = reliability_table(p, y, w).to_dicts()
    block["reliability_market"] = reliability_table(m, y, w).to_dicts()
    return _json_ready(block)


def _oracle(
    df: pl.DataFrame,
    bs_p: np.ndarray,
    bs_m: np.ndarray,
    w: np.ndarray,
    interval: Callable[[np.ndarray, np.ndarray, np.ndarray, pl.Series], list],
) -> dict:
    """The ceiling on a simulated world: ``bss_oracle``, the Brier skill against the
    market of the fair value the world priced from (``oracle_prob``), on the rows that
    have one, with the same interval as the model's; ``bss_model_on_oracle_rows`` the
    model's on those rows; ``share_captured`` = model / oracle skill when the oracle's
    interval is above 0 (the share of the available skill the model took; above 1 means
    the model knows more than the world's price did, i.e. a leak; on an efficient world
    there is no skill to share, and a ratio to ~0 would mean nothing). All None on real
    data."""
    empty = {
        "n_rows_oracle": 0,
        "bss_oracle": None,
        "bss_oracle_ci": [None, None],
        "bss_model_on_oracle_rows": None,
        "share_captured": None,
    }
    known = _oracle_mask(df)
    if known is None:
        return empty
    o = df[ORACLE].to_numpy().astype(np.float64)[known]
    y = df["y"].to_numpy().astype(np.float64)[known]
    bs_o, bs_mk, bs_pk, wk = brier_losses(o, y), bs_m[known], bs_p[known], w[known]
    oracle = skill(_wmean(bs_o, wk), _wmean(bs_mk, wk))
    model = skill(_wmean(bs_pk, wk), _wmean(bs_mk, wk))
    ci = interval(bs_o, bs_mk, wk, df["cluster"].filter(known))
    available = ci[0] is not None and ci[0] > 0
    return {
        "n_rows_oracle": int(known.sum()),
        "bss_oracle": oracle,
        "bss_oracle_ci": ci,
        "bss_model_on_oracle_rows": model,
        "share_captured": model / oracle if available else None,
    }


def _oracle_mask(df: pl.DataFrame) -> np.ndarray | None:
    """The rows of ``df`` with a finite oracle probability; None on real data (no
    ``oracle_prob`` column, or no value in it)."""
    if ORACLE not in df.columns:
        return None
    known = df.select(pl.col(ORACLE).is_finite().fill_null(False)).to_series().to_numpy()
    return known if known.any() else None


def _json_ready(value: object) -> object:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float | np.floating):
        return _clean(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def family_parts(pred_df: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """The rows of each family, sorted by family name."""
    if pred_df.height == 0:
        return []
    groups = pred_df.partition_by("family", as_dict=True)
    return sorted(((family, part) for (family,), part in groups.items()), key=lambda kv: str(kv[0]))


def corrected_draws(n_boot: int, k: int, alpha: float = SKILL_ALPHA) -> int:
    """Resamples for a Bonferroni interval over ``k`` tests: ``n_boot``, at least
    MIN_CORRECTED_DRAWS, and enough that each tail (α/2k) holds MIN_TAIL_DRAWS draws."""
    return max(n_boot, MIN_CORRECTED_DRAWS, math.ceil(MIN_TAIL_DRAWS * 2 * max(k, 1) / alpha))


def skill_test(
    pred_df: pl.DataFrame, n_boot: int = 1000, seed: int = 0, alpha: float = SKILL_ALPHA
) -> tuple[dict, dict[str, dict]]:
    """The per-family test of skill against the market, Bonferroni-corrected.

    Families with ≥ MIN_CLUSTERS clusters are tested (k of them); each gets the cluster-
    bootstrap interval of its BSS vs market at level 1 − α/k
    (``bss_vs_market_ci_corrected``, ``corrected_draws`` resamples of the seed) and
    ``skill_proven`` = its lower bound > 0, with the reason in ``skill_note``. Returns
    (summary, {family: those three keys}); the summary is the report's ``skill_test``.
    """
    parts = family_parts(pred_df)
    counts = {family: part["cluster"].n_unique() for family, part in parts}
    tested = [family for family, _ in parts if counts[family] >= MIN_CLUSTERS]
    k = len(tested)
    level = 1.0 - alpha / k if k else None
    draws = corrected_draws(n_boot, k, alpha)
    per_family: dict[str, dict] = {}
    for family, part in parts:
        if family not in tested:
            per_family[family] = {
                "bss_vs_market_ci_corrected": [None, None],
                "skill_proven": False,
                "skill_note": f"not tested: insufficient clusters ({counts[family]})",
            }
            continue
        lo, hi = _skill_interval(part, "model_prob", draws, seed, level)
        proven = math.isfinite(lo) and lo > 0.0
        ceiling = _oracle_lower_bound(part, draws, seed, level)
        if not math.isfinite(lo):
            note = "no corrected interval"
        elif proven and ceiling is not None and ceiling <= 0.0:
            proven = False
            note = (
                f"not proven: corrected lower bound {lo:+.3f} > 0, but the world's own fair "
                f"value shows no skill to find here (its lower bound {ceiling:+.3f} ≤ 0): "
                "chance or a leak"
            )
        elif proven:
            note = f"proven: corrected lower bound {lo:+.3f} > 0"
        else:
            note = f"not proven: corrected lower bound {lo:+.3f} ≤ 0"
        per_family[family] = {
            "bss_vs_market_ci_corrected": [_clean(lo), _clean(hi)],
            "skill_proven": proven,
            "skill_note": note,
        }
    summary = {
        "method": "Bonferroni",
        "alpha": alpha,
        "families_tested": k,
        "level": level,
        "n_boot": draws,
        "min_clusters": MIN_CLUSTERS,
        "proven_families": [f for f in tested if per_family[f]["skill_proven"]],
    }
    return summary, per_family


def _oracle_lower_bound(part: pl.DataFrame, draws: int, seed: int, level: float) -> float | None:
    """On a simulated world (``oracle_prob``), the corrected lower bound of the fair
    value's own skill against the market on ``part``; None on real data."""
    known = _oracle_mask(part)
    if known is None:
        return None
    lo, _ = _skill_interval(part.filter(known), ORACLE, draws, seed, level)
    return lo if math.isfinite(lo) else None


def _skill_interval(
    part: pl.DataFrame, column: str, draws: int, seed: int, level: float
) -> tuple[float, float]:
    """The cluster-bootstrap interval (at ``level``) of the Brier skill of ``column``
    against ``market_prob`` on ``part``."""
    y = part["y"].to_numpy().astype(np.float64)
    return skill_bootstrap(
        brier_losses(part[column].to_numpy().astype(np.float64), y),
        brier_losses(part["market_prob"].to_numpy().astype(np.float64), y),
        part["weight"].to_numpy().astype(np.float64),
        part["cluster"],
        draws,
        seed,
        level=level,
    )


def proven_by_fold(
    pred_df: pl.DataFrame, n_boot: int = 1000, seed: int = 0, alpha: float = SKILL_ALPHA
) -> dict[int, set[str]]:
    """The families tradeable in each walk-forward fold, without look-ahead.

    For fold k: the ``proven_families`` of ``skill_test`` on the predictions of folds
    < k only (its own k of families tested); fold 0, with nothing before it, trades no
    family. ``pred_df`` is ``walk_forward_evaluate``'s (a ``fold`` column and
    PRED_COLUMNS); one entry per fold present in it.
    """
    folds = sorted(pred_df["fold"].drop_nulls().unique().to_list())
    return {
        int(fold): set(
            skill_test(pred_df.filter(pl.col("fold") < fold), n_boot, seed, alpha)[0][
                "proven_families"
            ]
        )
        for fold in folds
    }


def evaluation_report(pred_df: pl.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """The headline scores of held-out predictions, overall and per family.

    ``pred_df`` needs ``market_id, family, cluster, y, weight, model_prob, market_prob,
    structural_probability`` (one row per test snapshot). Each block holds
    ``n_markets, n_rows, n_clusters, yes_rate``; ``brier_model/market``,
    ``logloss_model/market``; ``bss_vs_market`` and ``logloss_skill_vs_market`` with
    95 % cluster-bootstrap CIs (``*_ci`` = [lo, hi], ``n_boot`` resamples of
    ``cluster``; [None, None] with ``ci_note`` "insufficient clusters (N)" below
    MIN_CLUSTERS clusters); ``brier_struct``, ``bss_vs_struct`` (+ CI) on the rows that
    have a structural probability (``n_rows_struct``, ``n_clusters_struct``);
    ``ece_model/market``,
    ``calibration_slope/intercept``; ``auc_model/market``; ``accuracy`` (and
    ``accuracy_market``), ``precision`` (and ``precision_market``) at 0.5; ``reliability`` (and
    ``reliability_market``) tables as lists of dicts. Family blocks also hold
    ``bss_vs_market_ci_corrected``, ``skill_proven`` and ``skill_note`` of
    ``skill_test``. Everything is JSON-ready (NaN → None). Returns ``{"overall": block,
    "by_family": {family: block}, "skill_test": summary}`` (module docstring).
    """
    missing = [c for c in PRED_COLUMNS if c not in pred_df.columns]
    if missing:
        raise ValueError(f"pred_df lacks columns {missing}")
    summary, tests = skill_test(pred_df, n_boot, seed)
    if pred_df.height == 0:
        return {"overall": None, "by_family": {}, "skill_test": summary}
    by_family = {
        family: {**_block(part, n_boot, seed), **tests[family]}
        for family, part in family_parts(pred_df)
    }
    return {
        "overall": _block(pred_df, n_boot, seed),
        "by_family": by_family,
        "skill_test": _json_ready(summary),
    }
