"""The model card's intervals and skill test as text (the asset metadata and the CLI).

Pure and light (no numpy, no Dagster): ``btc-tracker model`` imports it at once.
"""

from __future__ import annotations


def interval_text(block: dict, key: str = "bss_vs_market_ci") -> str:
    """The interval " [lo, hi]" of ``block[key]``; without one the block's ci_note, e.g.
    " (insufficient clusters (2))"; else ""."""
    lo, hi = block.get(key) or [None, None]
    if lo is not None and hi is not None:
        return f" [{lo:+.3f}, {hi:+.3f}]"
    note = block.get("ci_note")
    return f" ({note})" if note else ""


def skill_cell(block: dict) -> str:
    """A family's skill test: "yes [lo, hi]" / "no [lo, hi]" (corrected) or why not tested."""
    if "skill_proven" not in block:
        return ""
    lo, hi = block.get("bss_vs_market_ci_corrected") or [None, None]
    if lo is None or hi is None:
        return f"no ({block.get('skill_note') or 'not tested'})"
    return f"{'yes' if block['skill_proven'] else 'no'} [{lo:+.3f}, {hi:+.3f}]"


def skill_test_line(report: dict) -> str:
    """One line on the report's skill test: the level, the families tested and proven."""
    test = report.get("skill_test")
    if not test:
        return "No skill test in this card (a model saved before it): no family is traded."
    proven = ", ".join(test.get("proven_families") or []) or "none"
    if not test.get("families_tested"):
        return (
            f"Skill test: no family has {test.get('min_clusters')} clusters (events) or more; "
            "no family is traded."
        )
    return (
        f"Skill test ({test['method']}, {test['families_tested']} "
        f"famil{'y' if test['families_tested'] == 1 else 'ies'} at "
        f"{100 * test['level']:.2f} %): proven in {proven}; the edge report recommends "
        "trades only there."
    )


def oracle_cell(block: dict) -> str:
    """The oracle's skill on a simulated world and the share the model captured:
    "+0.041 [+0.020, +0.060], 55 %"; "" on real data (no oracle)."""
    bss = block.get("bss_oracle")
    if bss is None:
        return ""
    text = f"{bss:+.3f}{interval_text(block, 'bss_oracle_ci')}"
    share = block.get("share_captured")
    return f"{text}, {100 * share:.0f} %" if share is not None else text
