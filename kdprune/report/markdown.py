"""Markdown tables for the ledger, claim tables and compute summary."""

from __future__ import annotations

import math

import pandas as pd


def format_markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-style Markdown table (no optional dependency on tabulate)."""

    def fmt(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


# The statistics of a verdict table (kdprune/report/stats.py), after the cell's axes and the rule's own columns.
STAT_ORDER = [
    "treatment_mean",
    "treatment_std",
    "n_treatment",
    "control_mean",
    "control_std",
    "n_control",
    "diff",
    "threshold",
    "ci_low",
    "ci_high",
    "sd",
    "sd_floor",
    "n_pairs",
    "mde",
    "seeds_needed",
    "p_above",
    "p_below",
    "p_below_holm",
    "status",
]
POINT_COLUMNS = (
    *("diff", "threshold", "ci_low", "ci_high", "sd", "sd_floor", "mde", "slope", "fade", "fade_ci_low", "fade_ci_high"),
    *("mean_a", "mean_b", "difference", "difference_ci_low", "difference_ci_high"),  # varies_within: a pair of settings
)


def in_points(table: pd.DataFrame) -> pd.DataFrame:
    """A verdict table for people: accuracy-valued columns x 100 (points), the cell's axes first,
    then the rule's own columns, then the effect and its statistics (JSON sorted the keys)."""
    stats = [c for c in STAT_ORDER if c in table.columns]
    out = table[[c for c in table.columns if c not in stats] + stats].copy()
    for col in out.columns:
        if col in POINT_COLUMNS or col.endswith(("_mean", "_std", "_gain")) or col.startswith("slope_"):
            out[col] = pd.to_numeric(out[col], errors="coerce") * 100
    return out
