"""Claim verdicts from a runs table, by rules written in config.

A rule is `rule(runs, test) -> (table, verdict, reason)`. Every rule's table has one row per cell
(the `cells` axes of the test) with the cell's effect `diff`, its confidence interval
(`ci_low`, `ci_high`, a t interval over seeds) and a `status` (better / worse / unresolved),
plus the rule's own columns; the verdict is `supported` / `not supported` / `inconclusive`, with
the reason in one sentence.

Axis values in `treatment`, `control`, `where`: a scalar (equal), a list (any of), or
`{not: [...]}` (none of)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from kdprune.files import atomic_path, write_json, write_text
from kdprune.report import VERDICT_RULES
from kdprune.report.markdown import format_markdown_table
from kdprune.report.runs import ce_as_alpha_zero, read_runs_table, with_full_data_in_every_selection

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


# -- helpers --------------------------------------------------------------------------------------


def matches(df: pd.DataFrame, values: dict) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for axis, value in values.items():
        col = df[axis].astype(str)
        if isinstance(value, dict):
            mask &= ~col.isin([str(v) for v in value["not"]])
        elif isinstance(value, list):
            mask &= col.isin([str(v) for v in value])
        else:
            mask &= col == str(value)
    return mask


def t_interval(values, level: float) -> tuple[float, float, float, int]:
    """Mean and two-sided t interval of `values`; NaN interval with fewer than two values."""
    values = np.asarray(pd.Series(values).dropna(), dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = values.mean()
    if n < 2:
        return mean, math.nan, math.nan, n
    half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def status_of(lo: float, hi: float, threshold: float) -> str:
    return "better" if lo > threshold else "worse" if hi < threshold else "unresolved"


def verdict_from(table: pd.DataFrame, what: str) -> tuple[str, str]:
    """Supported when every cell is `better`, not supported when any is `worse`, else inconclusive."""
    if not len(table):
        return INCONCLUSIVE, "no runs match the test"
    status = list(table["status"])
    better, worse = status.count("better"), status.count("worse")
    why = f"{what} in {better}/{len(status)} cells, significantly the other way in {worse}, unresolved in {len(status) - better - worse}"
    if worse:
        return NOT_SUPPORTED, why
    return (SUPPORTED if better == len(status) else INCONCLUSIVE), why


def _cell_groups(runs: pd.DataFrame, cells: list[str]):
    if not cells:
        yield {}, runs
        return
    for key, group in runs.groupby(cells, dropna=False):
        yield dict(zip(cells, key if isinstance(key, tuple) else (key,))), group


def _seed_means(df: pd.DataFrame, metric: str) -> pd.Series:
    return df.groupby("seed")[metric].mean()


# -- paired comparisons: treatment vs control, per cell -----------------------------------------


def paired_cells(runs: pd.DataFrame, test: dict, threshold: float) -> pd.DataFrame:
    """Per cell: treatment and control mean/std/n and the seed-paired difference. The control is
    matched on the cell's axes except those the control itself fixes; with `control_best_of: axis`
    the control is, per cell, the value of that axis with the highest mean."""
    metric, level = test["metric"], test.get("confidence", 0.95)
    runs = runs[matches(runs, test.get("where", {}))]
    treat, ctrl = runs[matches(runs, test["treatment"])], runs[matches(runs, test["control"])]
    rows = []
    for cell, t in _cell_groups(treat, list(test.get("cells", []))):
        c = ctrl[matches(ctrl, {k: v for k, v in cell.items() if k not in test["control"]})]
        extra = {}
        best_of = test.get("control_best_of")
        if best_of and len(c):
            choice = c.groupby(best_of)[metric].mean().idxmax()
            c, extra = c[c[best_of] == choice], {f"control_{best_of}": choice}
        pairs = pd.concat([_seed_means(t, metric).rename("t"), _seed_means(c, metric).rename("c")], axis=1).dropna()
        mean, lo, hi, n = t_interval(pairs["t"] - pairs["c"], level)
        rows.append(
            {
                **cell,
                **extra,
                "treatment_mean": t[metric].mean(),
                "treatment_std": t[metric].std(ddof=1),
                "n_treatment": len(t),
                "control_mean": c[metric].mean(),
                "control_std": c[metric].std(ddof=1),
                "n_control": len(c),
                "diff": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n_pairs": n,
                "status": status_of(lo, hi, threshold),
            }
        )
    return pd.DataFrame(rows)


def improves_everywhere(runs: pd.DataFrame, test: dict):
    """The treatment beats the control by more than `margin` in every cell."""
    margin = test.get("margin", 0.0)
    table = paired_cells(runs, test, margin)
    return (table, *verdict_from(table, f"treatment better than control by more than {margin:g}"))


def matches_or_beats(runs: pd.DataFrame, test: dict):
    """Non-inferiority: the treatment is at most `margin` below the control in every cell."""
    margin = test.get("margin", 0.0)
    table = paired_cells(runs, test, -margin)
    return (table, *verdict_from(table, f"treatment within {margin:g} of control or better"))


# -- difference in differences: does raising `factor` help the treatment more? -------------------


def larger_gain(runs: pd.DataFrame, test: dict):
    """Per cell and seed: [treatment(high) - treatment(low)] - [control(high) - control(low)] of
    the `factor` axis (`low`/`high` values); the claim holds when that exceeds `margin` in every
    cell. A CE run counts as alpha = 0."""
    metric, level, factor, margin = test["metric"], test.get("confidence", 0.95), test["factor"], test.get("margin", 0.0)
    runs = ce_as_alpha_zero(runs[matches(runs, test.get("where", {}))])
    rows = []
    treat, ctrl = runs[matches(runs, test["treatment"])], runs[matches(runs, test["control"])]
    for cell, t in _cell_groups(treat, list(test.get("cells", []))):
        c = ctrl[matches(ctrl, {k: v for k, v in cell.items() if k not in test["control"]})]

        def gain(df):
            return _seed_means(df[df[factor] == test["high"]], metric) - _seed_means(df[df[factor] == test["low"]], metric)

        g = pd.concat([gain(t).rename("t"), gain(c).rename("c")], axis=1).dropna()
        mean, lo, hi, n = t_interval(g["t"] - g["c"], level)
        rows.append(
            {
                **cell,
                "treatment_gain": g["t"].mean(),
                "control_gain": g["c"].mean(),
                "diff": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n_pairs": n,
                "status": status_of(lo, hi, margin),
            }
        )
    table = pd.DataFrame(rows)
    what = f"raising {factor} {test['low']:g} -> {test['high']:g} helps the treatment more than the control"
    return (table, *verdict_from(table, what))


# -- where does the best value of an axis sit? ----------------------------------------------------


def best_value_shifts(runs: pd.DataFrame, test: dict):
    """The best value of `axis` (mean metric) is larger at the smallest value of `along` than at the
    largest (`direction: decreasing`, e.g. best alpha falls as the keep fraction grows). Per cell:
    a_lo = best at min(along), a_hi = best at max(along); the effect `diff` is the seed-paired gain
    of a_lo over a_hi at min(along); the cell is `better` when a_lo > a_hi (for decreasing) and
    both a_lo wins at min(along) and a_hi wins at max(along) significantly, `worse` when the order
    is reversed with both wins significant, else unresolved. Rows per `along` value give the
    best value, the table the paper shows."""
    metric, level, axis, along = test["metric"], test.get("confidence", 0.95), test["axis"], test["along"]
    sign = -1 if test.get("direction", "decreasing") == "decreasing" else 1
    runs = ce_as_alpha_zero(runs[matches(runs, test.get("where", {}))])
    if "selection" in test.get("cells", []):
        runs = with_full_data_in_every_selection(runs)
    rows = []
    for cell, df in _cell_groups(runs, list(test.get("cells", []))):
        means = df.groupby([along, axis])[metric].mean()
        best = {v: means.loc[v].idxmax() for v in sorted(df[along].unique())}
        lo_v, hi_v = min(best), max(best)
        a_lo, a_hi = best[lo_v], best[hi_v]

        def paired(at, a, b):
            d = df[df[along] == at]
            return t_interval(_seed_means(d[d[axis] == a], metric) - _seed_means(d[d[axis] == b], metric), level)

        d1, lo1, hi1, n1 = paired(lo_v, a_lo, a_hi)
        _, lo2, _, _ = paired(hi_v, a_hi, a_lo)
        significant = lo1 > 0 and lo2 > 0
        order = sign * (a_hi - a_lo)
        status = "better" if order > 0 and significant else "worse" if order < 0 and significant else "unresolved"
        for v in best:
            rows.append(
                {
                    **cell,
                    along: v,
                    f"best_{axis}": best[v],
                    "best_mean": means.loc[(v, best[v])],
                    "diff": d1 if v == lo_v else math.nan,
                    "ci_low": lo1 if v == lo_v else math.nan,
                    "ci_high": hi1 if v == lo_v else math.nan,
                    "n_pairs": n1 if v == lo_v else 0,
                    "status": status if v == lo_v else None,
                }
            )
    table = pd.DataFrame(rows)
    judged = table[table["status"].notna()] if len(table) else table
    verdict, why = verdict_from(judged, f"the best {axis} is {'larger' if sign < 0 else 'smaller'} at the smallest {along} than at the largest")
    return table, verdict, why


# -- trends: does the metric rise or fall with an axis? -------------------------------------------


def _slopes(df: pd.DataFrame, x: str, metric: str, log_x: bool) -> pd.Series:
    """Per seed: least-squares slope of the metric against x (or log x)."""
    out = {}
    for seed, d in df.groupby("seed"):
        xs = np.log(d[x].astype(float)) if log_x else d[x].astype(float)
        if xs.nunique() >= 2:
            out[seed] = np.polyfit(xs, d[metric], 1)[0]
    return pd.Series(out, dtype=float)


def trend(runs: pd.DataFrame, test: dict):
    """Per cell: the per-seed slope of the metric against `axis` (log scale with `log: true`),
    measured where `at` holds (e.g. the smallest keep fraction), has the sign of `direction`
    (increasing / decreasing) with its interval excluding 0. With `fades_along: keep` the slope at
    the largest value of that axis must also be significantly closer to zero (paired by seed)."""
    metric, level, x, log_x = test["metric"], test.get("confidence", 0.95), test["axis"], test.get("log", False)
    sign = 1 if test.get("direction", "increasing") == "increasing" else -1
    runs = runs[matches(runs, test.get("where", {}))].dropna(subset=[x])
    fade = test.get("fades_along")
    rows = []
    for cell, df in _cell_groups(runs, list(test.get("cells", []))):
        at = df[df[fade] == df[fade].min()] if fade else df
        slope = _slopes(at, x, metric, log_x)
        mean, lo, hi, n = t_interval(sign * slope, level)
        row = {
            **cell,
            "slope": sign * mean,
            "diff": sign * mean,
            "ci_low": min(sign * lo, sign * hi),
            "ci_high": max(sign * lo, sign * hi),
            "n_pairs": n,
            "status": status_of(lo, hi, 0.0),
        }
        if fade:
            far = _slopes(df[df[fade] == df[fade].max()], x, metric, log_x)
            f_mean, f_lo, _, _ = t_interval((sign * slope - sign * far).dropna(), level)
            row.update({f"slope_at_max_{fade}": sign * far.mean(), "fade": f_mean, "fade_ci_low": f_lo})
            if row["status"] == "better" and not f_lo > 0:
                row["status"] = "unresolved"  # the trend is there but does not significantly fade
        rows.append(row)
    table = pd.DataFrame(rows)
    what = f"{metric} {'rises' if sign > 0 else 'falls'} with {'log ' if log_x else ''}{x}" + (f" and the effect fades along {fade}" if fade else "")
    return (table, *verdict_from(table, what))


# -- evaluation and files -------------------------------------------------------------------------


def evaluate_claim(spec: dict, runs: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    test = spec["test"]
    rule: Callable = VERDICT_RULES.get(test["rule"])
    table, verdict, why = rule(runs, test)
    judged = table[table["status"].notna()] if len(table) else table
    diffs = judged["diff"].dropna() if len(judged) else pd.Series(dtype=float)
    result = {
        "claim": spec["id"],
        "paper": spec["paper"],
        "statement": spec["statement"],
        "extension": spec.get("extension", False),
        "preset": spec["preset"],
        "evidence": spec["evidence"],
        "setting": spec["setting"],
        "rule": test["rule"],
        "test": test,
        "metric": test["metric"],
        "confidence": test.get("confidence", 0.95),
        "n_seeds": int(runs["seed"].nunique()),
        "n_cells": len(judged),
        "mean_diff": float(diffs.mean()) if len(diffs) else math.nan,
        "min_diff": float(diffs.min()) if len(diffs) else math.nan,
        "max_diff": float(diffs.max()) if len(diffs) else math.nan,
        "verdict": verdict,
        "reason": why,
        "cells": table.replace({np.nan: None}).to_dict("records"),
    }
    return table, result


def evaluate_claim_files(spec: dict, runs_path: Path, table_csv: Path, verdict_json: Path) -> dict:
    table, result = evaluate_claim(spec, read_runs_table(runs_path))
    with atomic_path(table_csv) as tmp:
        table.to_csv(tmp, index=False)
    title = f"# {spec['id']} ({spec['paper']}): `{spec['test']['rule']}` on {spec['test']['metric']}\n\n{spec['statement']}\n\n"
    write_text(table_csv.with_suffix(".md"), title + format_markdown_table(table) + f"\nVerdict: **{result['verdict']}**: {result['reason']}.\n")
    write_json(verdict_json, result)
    return result
