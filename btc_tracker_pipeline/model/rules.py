"""How much data the model needs before it trains or speaks for a family (a light
module: the Dagster definitions read these without loading XGBoost)."""

# Below ~200 resolved markets a 10-bin calibration curve has ~20 outcomes per bin
# (Wilson half-width ±0.2) and a Brier-skill CI is wider than any plausible edge
# (n ≈ (2.8/δ)² markets for an edge δ: docs/modeling.md §4), so a model fitted on less
# is noise; we refuse to train or evaluate.
MIN_RESOLVED_MARKETS = 200

# A family is modelled only with at least this many markets in this many events
# (``select_families``): below ~20 independent outcomes neither a skill interval nor a
# learned correction means anything.
MIN_FAMILY_MARKETS = 30
MIN_FAMILY_EVENTS = 20
