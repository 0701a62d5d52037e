"""Model health from the newest model card: accuracy, ROC AUC and precision of the
walk-forward (out-of-sample) predictions, each beside the market price's own figure.

The figures are the card's ``metrics.overall`` block, exactly what ``btc-tracker
model`` shows; they are meaningful from ``metrics.MIN_CLUSTERS`` (20) events on, the
count below which the card shows no interval either. Copying the market price already
scores high on all three (docs/model.md, "How to read the metrics"), so the market's
figure is the one to beat, not the target alone.
"""

from __future__ import annotations

from typing import Any

from btc_tracker_pipeline.health.targets import SPEC_BY_KEY, Metric, format_value, metric

# (metric key, the card's model figure, the market's figure on the same rows)
_FIGURES = (
    ("accuracy", "accuracy", "accuracy_market"),
    ("roc_auc", "auc_model", "auc_market"),
    ("precision", "precision", "precision_market"),
)


def _number(block: dict[str, Any], key: str) -> float | None:
    value = block.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def model_health(version: str | None, card: dict[str, Any] | None) -> list[Metric]:
    """The model metrics of the card of model ``version`` (None: no model yet)."""
    overall = ((card or {}).get("metrics") or {}).get("overall")
    if not overall:
        why = "no model yet: btc-tracker train" if card is None else "the card has no metrics"
        return [metric(key, None, 0, why) for key, _, _ in _FIGURES]
    events = int(overall.get("n_clusters") or 0)
    found = []
    for key, model_key, market_key in _FIGURES:
        shown = format_value(_number(overall, market_key), SPEC_BY_KEY[key].kind)
        detail = (
            f"market {shown}; {overall.get('n_markets', 0):,} markets in {events:,} events, "
            f"model {version}"
        )
        found.append(metric(key, _number(overall, model_key), events, detail))
    return found
