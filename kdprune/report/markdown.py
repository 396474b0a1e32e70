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
