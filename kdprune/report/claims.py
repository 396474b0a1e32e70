"""Claim verdicts from a runs table, by rules written in config.

A claim's test compares a `treatment` (axis values, e.g. loss: kd) with a `control` (loss: ce)
inside each cell (the `cells` axes, e.g. selection x keep), paired by seed. Each cell gets the
mean difference and a t confidence interval; a registered rule turns the cells into
`supported` / `not supported` / `inconclusive`, says why in one sentence and gives each cell a
status. A rule is `rule(cells, test) -> (verdict, reason, statuses)`."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from kdprune.io import atomic_path, write_json, write_text
from kdprune.registry import Registry
from kdprune.report.runs import read_runs_table

VERDICT_RULES: Registry = Registry("verdict rule")
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


def _matches(df: pd.DataFrame, values: dict) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for axis, value in values.items():
        mask &= df[axis].astype(str) == str(value)
    return mask


def paired_cells(runs: pd.DataFrame, test: dict) -> pd.DataFrame:
    """One row per cell: treatment and control mean/std/n, and the seed-paired difference with its
    confidence interval (NaN when fewer than two pairs)."""
    metric, cells = test["metric"], list(test.get("cells", []))
    level = test.get("confidence", 0.95)
    treat = runs[_matches(runs, test["treatment"])]
    ctrl = runs[_matches(runs, test["control"])]
    rows = []
    groups = treat.groupby(cells, dropna=False) if cells else [((), treat)]
    for key, t in groups:
        key = key if isinstance(key, tuple) else (key,)
        cell = dict(zip(cells, key))
        c = ctrl[_matches(ctrl, cell)]
        pairs = t[["seed", metric]].merge(c[["seed", metric]], on="seed", suffixes=("_t", "_c"))
        diff = pairs[f"{metric}_t"] - pairs[f"{metric}_c"]
        n = len(diff)
        lo = hi = math.nan
        if n >= 2:
            half = stats.t.ppf(0.5 + level / 2, n - 1) * diff.std(ddof=1) / math.sqrt(n)
            lo, hi = diff.mean() - half, diff.mean() + half
        rows.append({**cell, "treatment_mean": t[metric].mean(), "treatment_std": t[metric].std(ddof=1), "n_treatment": len(t),
                     "control_mean": c[metric].mean(), "control_std": c[metric].std(ddof=1), "n_control": len(c),
                     "diff": diff.mean() if n else math.nan, "ci_low": lo, "ci_high": hi, "n_pairs": n})
    return pd.DataFrame(rows)


def _every_cell_clears(cells: pd.DataFrame, threshold: float, what: str) -> tuple[str, str, list[str]]:
    """Supported when every cell's interval lies above `threshold`; not supported when some cell's
    interval lies below it; otherwise (or with no interval) inconclusive."""
    status = ["better" if lo > threshold else "worse" if hi < threshold else "unresolved"
              for lo, hi in zip(cells.get("ci_low", []), cells.get("ci_high", []))]
    better, worse = status.count("better"), status.count("worse")
    why = f"{what} in {better}/{len(cells)} cells, significantly not in {worse}, unresolved in {len(cells) - better - worse}"
    if not len(cells):
        return INCONCLUSIVE, "no runs match the treatment and control", status
    if worse:
        return NOT_SUPPORTED, why, status
    return (SUPPORTED if better == len(cells) else INCONCLUSIVE), why, status


@VERDICT_RULES.register("improves_everywhere")
def improves_everywhere(cells: pd.DataFrame, test: dict) -> tuple[str, str, list[str]]:
    """The treatment beats the control by more than `margin` in every cell."""
    margin = test.get("margin", 0.0)
    return _every_cell_clears(cells, margin, f"treatment better than control by more than {margin:g}")


@VERDICT_RULES.register("matches_or_beats")
def matches_or_beats(cells: pd.DataFrame, test: dict) -> tuple[str, str, list[str]]:
    """Non-inferiority: the treatment is at most `margin` below the control in every cell."""
    margin = test.get("margin", 0.0)
    return _every_cell_clears(cells, -margin, f"treatment within {margin:g} of control or better")


def evaluate_claim(spec: dict, runs: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    test = spec["test"]
    cells = paired_cells(runs, test)
    verdict, why, status = VERDICT_RULES.get(test["rule"])(cells, test)
    cells["status"] = status
    seeds = sorted(runs["seed"].unique().tolist())
    result = {
        "claim": spec["id"], "paper": spec["paper"], "statement": spec["statement"], "extension": spec.get("extension", False),
        "scale": spec["scale"], "evidence": spec["evidence"], "setting": spec["setting"],
        "rule": test["rule"], "metric": test["metric"], "treatment": test["treatment"], "control": test["control"],
        "confidence": test.get("confidence", 0.95), "margin": test.get("margin", 0.0), "n_seeds": len(seeds),
        "n_cells": len(cells), "mean_diff": float(cells["diff"].mean()) if len(cells) else math.nan,
        "min_diff": float(cells["diff"].min()) if len(cells) else math.nan, "max_diff": float(cells["diff"].max()) if len(cells) else math.nan,
        "verdict": verdict, "reason": why, "cells": cells.replace({np.nan: None}).to_dict("records"),
    }
    return cells, result


def claim_spec(cfg: dict, claim_id: str) -> dict:
    """Everything the claim job needs, from the resolved config."""
    claim = cfg["claims"][claim_id]
    exp = cfg["experiments"][claim["experiment"]]
    setting = {
        "dataset": exp.get("dataset", [cfg["dataset"]]), "student": exp["student"], "teacher": exp.get("teacher", []),
        "methods": exp["method"], "keep": exp["keep"], "seeds": exp.get("seed", cfg["seeds"]),
        "student_epochs": sorted({cfg["recipes"][r]["epochs"] for r in exp.get("recipe", ["student"])}),
        "teacher_epochs": cfg["recipes"][cfg["teacher_recipe"]]["epochs"],
    }
    return {"id": claim_id, **claim, "scale": cfg["scale"], "evidence": cfg.get("evidence", True), "setting": setting}


def format_markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-style Markdown table (no optional dependency on tabulate)."""
    def fmt(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def evaluate_claim_files(spec: dict, runs_path: Path, table_csv: Path, verdict_json: Path) -> dict:
    cells, result = evaluate_claim(spec, read_runs_table(runs_path))
    with atomic_path(table_csv) as tmp:
        cells.to_csv(tmp, index=False)
    title = f"# {spec['id']} ({spec['paper']}): {spec['test']['treatment']} vs {spec['test']['control']}, {spec['test']['metric']}\n\n"
    write_text(table_csv.with_suffix(".md"), title + format_markdown_table(cells) + f"\nVerdict: **{result['verdict']}**: {result['reason']}.\n")
    write_json(verdict_json, result)
    return result
