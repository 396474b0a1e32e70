"""Claim verdicts from a runs table, by rules written in config (how: docs/verdicts.md).

A rule is `rule(runs, test) -> (table, verdict, reason)`. Its table has one row per tested cell
(the `cells` axes of the test; with `control_each_of`, one per cell and control value) with the
rule's own columns and the statistics of `kdprune.report.stats.contrast`: `diff` is the cell's
effect IN THE DIRECTION THE CLAIM ASSERTS (larger = more support, in every rule), `ci_low`/`ci_high`
its interval over replicates, `p_above`/`p_below` its one-sided p-values against the rule's
threshold, `p_below_holm` the latter corrected over the claim's cells, `mde` the smallest effect
the cell could have detected, and `status` (better / worse / unresolved, `stats.decide`). The
verdict: `supported` when every cell is better, `not supported` when any is worse, else
`inconclusive`, with the reason in one sentence.

Axis values in `treatment`, `control`, `where`: a scalar (equal; numbers compare as numbers, so
`keep: 1` matches 1.0), a list (any of), `{not: [...]}` (none of) or `{min: a, max: b}` (a range,
either end optional, inclusive)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kdprune.files import atomic_path, read_json, write_json, write_text
from kdprune.report import VERDICT_RULES
from kdprune.report.markdown import format_markdown_table, in_points
from kdprune.report.matching import equal, matches
from kdprune.report.reported import compare_reported, reported_markdown
from kdprune.report.runs import ce_as_alpha_zero, read_runs_table, with_full_data_in_every_selection
from kdprune.report.stats import BETTER, WORSE, binomial_sd, contrast, decide

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
COST_NOT_MATCHED, COSTS_MORE = "cost not matched", "costs more than claimed"


# -- helpers --------------------------------------------------------------------------------------


def verdict_from(table: pd.DataFrame, what: str) -> tuple[str, str]:
    """Supported when every cell is `better`, not supported when any is `worse`, else inconclusive."""
    if not len(table):
        return INCONCLUSIVE, "no runs match the test"
    status = list(table["status"])
    better, worse = status.count(BETTER), status.count(WORSE)
    unmatched, dearer = status.count(COST_NOT_MATCHED), status.count(COSTS_MORE)
    why = (
        f"{what} in {better}/{len(status)} cells, significantly the other way in {worse} "
        f"(Holm over the cells), unresolved in {len(status) - better - worse - unmatched - dearer}"
    )
    why += f", not compared at matched cost in {unmatched}" if unmatched else ""
    why += f", costing more than the claim allows in {dearer}" if dearer else ""
    if worse or dearer:
        return NOT_SUPPORTED, why
    return (SUPPORTED if better == len(status) else INCONCLUSIVE), why


def _judged(rows: list[dict], test: dict) -> pd.DataFrame:
    """The rows with every cell's status (stats.decide over the claim's cells)."""
    table = pd.DataFrame(rows)
    if not len(table):
        return table
    status, holm_below = decide(table["p_above"], table["p_below"], _confidence(test))
    return table.assign(p_below_holm=holm_below, status=status)


def _confidence(test: dict) -> float:
    return test.get("confidence", 0.95)


def _n_test(df: pd.DataFrame, test: dict) -> float:
    """Test-set size behind the binomial floor (NaN: unknown, or `variance_floor: none`)."""
    if test.get("variance_floor", "binomial") == "none" or "n_test" not in df:
        return math.nan
    return float(pd.to_numeric(df["n_test"], errors="coerce").max())


def _cell_groups(runs: pd.DataFrame, cells: list[str]):
    if not cells:
        yield {}, runs
        return
    for key, group in runs.groupby(cells, dropna=False):
        yield dict(zip(cells, key if isinstance(key, tuple) else (key,))), group


def _seed_means(df: pd.DataFrame, metric: str) -> pd.Series:
    return df.groupby("seed")[metric].mean()


# -- paired comparisons: treatment vs control, per cell -----------------------------------------


def _paired(t: pd.DataFrame, c: pd.DataFrame, test: dict, threshold: float, n_test: float) -> dict:
    metric = test["metric"]
    pairs = pd.concat([_seed_means(t, metric).rename("t"), _seed_means(c, metric).rename("c")], axis=1).dropna()
    floor = binomial_sd([(1, t[metric].mean()), (-1, c[metric].mean())], n_test)
    return {
        "treatment_mean": t[metric].mean(),
        "treatment_std": t[metric].std(ddof=1),
        "n_treatment": len(t),
        "control_mean": c[metric].mean(),
        "control_std": c[metric].std(ddof=1),
        "n_control": len(c),
        **contrast(pairs["t"] - pairs["c"], threshold, _confidence(test), floor),
    }


def each_of_axes(test: dict) -> list[str]:
    """A test's `control_each_of` (an axis, or a list of axes) as a list."""
    each = test.get("control_each_of") or []
    return [each] if isinstance(each, str) else list(each)


def paired_cells(runs: pd.DataFrame, test: dict, threshold: float) -> pd.DataFrame:
    """Per cell: treatment and control mean/std/n and the seed-paired difference. The control is
    matched on the cell's axes except those the control itself fixes. With `control_each_of` (an
    axis, or a list of axes) the treatment is compared with every value (combination) of it among
    the controls, one row each, except the treatment's own runs: a claim against "the best" of them
    is tested without choosing the best on the same data."""
    runs = runs[matches(runs, test.get("where", {}))]
    treat, ctrl = runs[matches(runs, test["treatment"])], runs[matches(runs, test["control"])]
    each_of, n_test = each_of_axes(test), _n_test(runs, test)
    rows = []
    for cell, t in _cell_groups(treat, list(test.get("cells", []))):
        c = ctrl[matches(ctrl, {k: v for k, v in cell.items() if k not in test["control"]})]
        for value, cc in c.groupby(each_of) if each_of else [(None, c)]:
            if each_of and cc.index.isin(t.index).all():
                continue  # the treatment itself
            values = value if isinstance(value, tuple) else (value,)
            cost = _cost(t, cc, test["cost"]) if "cost" in test else {}
            named = {f"control_{axis}": v for axis, v in zip(each_of, values)}
            rows.append({**cell, **named, **_paired(t, cc, test, threshold, n_test), **cost})
    return _cost_status(_judged(rows, test), test.get("cost"))


def _cost(t: pd.DataFrame, c: pd.DataFrame, cost: dict) -> dict:
    metric = cost["metric"]
    t_cost, c_cost = pd.to_numeric(t[metric], errors="coerce").mean(), pd.to_numeric(c[metric], errors="coerce").mean()
    return {"treatment_cost": t_cost, "control_cost": c_cost, "cost_ratio": t_cost / c_cost if c_cost else math.nan}


def _cost_status(table: pd.DataFrame, cost: dict | None) -> pd.DataFrame:
    """A test's `cost` (means over runs, not a statistical test: sample-steps are exact, seconds are
    measured): `match_within` r — a cell whose treatment/control cost ratio is off 1 by more than r
    compares unequal budgets and is not judged (COST_NOT_MATCHED); `at_most` q — a claim of "less
    cost" fails (COSTS_MORE: not supported) in a cell whose ratio exceeds q, whatever the accuracy."""
    if not cost or not len(table):
        return table
    ratio = table["cost_ratio"]
    status = table["status"].copy()
    if "match_within" in cost:
        status[~((ratio - 1).abs() <= cost["match_within"])] = COST_NOT_MATCHED
    if "at_most" in cost:
        status[~(ratio <= cost["at_most"])] = COSTS_MORE
    return table.assign(status=status)


def _points(margin: float) -> str:
    """A margin in the sentence's unit: points, like every table and the ledger (metrics are
    accuracies stored as fractions; 0.01 in a claim file is 1 point)."""
    points = 100 * margin
    return f"{points:g} point{'' if points == 1 else 's'}"


def improves_everywhere(runs: pd.DataFrame, test: dict):
    """The treatment beats the control by more than `margin` in every cell."""
    margin = test.get("margin", 0.0)
    table = paired_cells(runs, test, margin)
    return (table, *verdict_from(table, f"treatment better than control by more than {_points(margin)}"))


def matches_or_beats(runs: pd.DataFrame, test: dict):
    """Non-inferiority: the treatment is at most `margin` below the control in every cell."""
    margin = test.get("margin", 0.0)
    table = paired_cells(runs, test, -margin)
    return (table, *verdict_from(table, f"treatment within {_points(margin)} of control or better"))


# -- difference in differences: does raising `factor` help the treatment more? -------------------


def larger_gain(runs: pd.DataFrame, test: dict):
    """Per cell and seed: [treatment(high) - treatment(low)] - [control(high) - control(low)] of
    the `factor` axis (`low`/`high` values); the claim holds when that exceeds `margin` in every
    cell. A CE run counts as alpha = 0."""
    metric, factor, margin = test["metric"], test["factor"], test.get("margin", 0.0)
    runs = ce_as_alpha_zero(runs[matches(runs, test.get("where", {}))])
    n_test = _n_test(runs, test)
    rows = []
    treat, ctrl = runs[matches(runs, test["treatment"])], runs[matches(runs, test["control"])]
    for cell, t in _cell_groups(treat, list(test.get("cells", []))):
        c = ctrl[matches(ctrl, {k: v for k, v in cell.items() if k not in test["control"]})]
        ends = {(name, end): df[equal(df[factor], test[end])] for name, df in (("t", t), ("c", c)) for end in ("low", "high")}
        g = pd.concat(
            [(_seed_means(ends[(name, "high")], metric) - _seed_means(ends[(name, "low")], metric)).rename(name) for name in ("t", "c")],
            axis=1,
        ).dropna()
        signs = {("t", "high"): 1, ("t", "low"): -1, ("c", "high"): -1, ("c", "low"): 1}
        floor = binomial_sd([(signs[k], df[metric].mean()) for k, df in ends.items()], n_test)
        rows.append(
            {
                **cell,
                "treatment_gain": g["t"].mean(),
                "control_gain": g["c"].mean(),
                **contrast(g["t"] - g["c"], margin, _confidence(test), floor),
            }
        )
    table = _judged(rows, test)
    what = f"raising {factor} {test['low']:g} -> {test['high']:g} helps the treatment more than the control"
    return (table, *verdict_from(table, what))


# -- where does the best value of an axis sit? ----------------------------------------------------


def best_value_shifts(runs: pd.DataFrame, test: dict):
    """The best value of `axis` (mean metric) is larger at the smallest value of `along` than at the
    largest (`direction: decreasing`, e.g. best alpha falls as the keep fraction grows). Per cell:
    a_lo = best at min(along), a_hi = best at max(along). Two seed-paired contrasts: a_lo over a_hi
    at min(along), a_hi over a_lo at max(along); the cell is `better` when the order is the claimed
    one and both wins are significant (an intersection-union test: p_above is the larger of the
    two), `worse` when the order is reversed with both wins significant (Holm over the cells).
    `diff` is the win at min(along), negated when the order is reversed. Rows per `along` value give
    the best value, the table the paper shows."""
    metric, axis, along, confidence = test["metric"], test["axis"], test["along"], _confidence(test)
    sign = -1 if test.get("direction", "decreasing") == "decreasing" else 1
    runs = ce_as_alpha_zero(runs[matches(runs, test.get("where", {}))])
    if "selection" in test.get("cells", []):
        runs = with_full_data_in_every_selection(runs)
    n_test = _n_test(runs, test)
    rows = []
    for cell, df in _cell_groups(runs, list(test.get("cells", []))):
        means = df.groupby([along, axis])[metric].mean()
        best = {v: means.loc[v].idxmax() for v in sorted(df[along].unique())}
        lo_v, hi_v = min(best), max(best)
        a_lo, a_hi = best[lo_v], best[hi_v]

        def win(at, a, b):
            d = df[df[along] == at]
            wa, wb = d[d[axis] == a], d[d[axis] == b]
            floor = binomial_sd([(1, wa[metric].mean()), (-1, wb[metric].mean())], n_test)
            return contrast(_seed_means(wa, metric) - _seed_means(wb, metric), 0.0, confidence, floor)

        first, second = win(lo_v, a_lo, a_hi), win(hi_v, a_hi, a_lo)
        order = np.sign(sign * (a_hi - a_lo))  # +1: the claimed order, -1: reversed, 0: same best value
        both = np.max([first["p_above"], second["p_above"]])  # NaN (undecided) stays NaN
        stat = {**first, "diff": order * first["diff"], "p_above": both if order > 0 else 1.0, "p_below": both if order < 0 else 1.0}
        if order < 0:
            stat |= {"ci_low": -first["ci_high"], "ci_high": -first["ci_low"]}
        for v in best:
            rows.append({**cell, along: v, f"best_{axis}": best[v], "best_mean": means.loc[(v, best[v])], **(stat if v == lo_v else {})})
    table = pd.concat([_judged([r for r in rows if "p_above" in r], test), pd.DataFrame([r for r in rows if "p_above" not in r])])
    if len(table):
        table = table.sort_values([*test.get("cells", []), along], ignore_index=True)
    judged = table[table["status"].notna()] if len(table) else table
    verdict, why = verdict_from(judged, f"the best {axis} is {'larger' if sign < 0 else 'smaller'} at the smallest {along} than at the largest")
    return table, verdict, why


# -- trends: does the metric rise or fall with an axis? -------------------------------------------


def _x(d: pd.DataFrame, x: str, log_x: bool) -> pd.Series:
    return np.log(d[x].astype(float)) if log_x else d[x].astype(float)


def _slopes(df: pd.DataFrame, x: str, metric: str, log_x: bool) -> pd.Series:
    """Per seed: least-squares slope of the metric against x (or log x)."""
    out = {}
    for seed, d in df.groupby("seed"):
        xs = _x(d, x, log_x)
        if xs.nunique() >= 2:
            out[seed] = np.polyfit(xs, d[metric], 1)[0]
    return pd.Series(out, dtype=float)


def _slope_floor(df: pd.DataFrame, x: str, metric: str, log_x: bool, n_test: float) -> float:
    """Binomial floor of one seed's slope: the slope is sum(w_i acc_i), w_i = (x_i - mean x) / Sxx."""
    points = df.groupby(x)[metric].mean()
    xs = _x(points.reset_index(), x, log_x).to_numpy()
    sxx = ((xs - xs.mean()) ** 2).sum()
    if len(xs) < 2 or not sxx > 0:
        return 0.0
    return binomial_sd(zip((xs - xs.mean()) / sxx, points.to_numpy()), n_test)


def trend(runs: pd.DataFrame, test: dict):
    """Per cell: the per-seed slope of the metric against `axis` (log scale with `log: true`),
    measured at the smallest value of `fades_along` (when given), points the claimed way
    (`direction`). With `fades_along: keep` the effect must also fade: per seed, the claimed-direction
    slope at the smallest keep minus the SIZE of the slope at the largest, |slope there|, is
    significantly positive. A reversal as strong as the effect is not a fade (a plain difference of
    slopes would count it as one); the absolute value makes the test conservative when the far
    slope is truly 0. `slope` is the measured slope; `diff` the claimed-direction one (-slope for
    `decreasing`). Better: trend and fade both significant (intersection-union); worse: the trend
    significantly the other way or the far effect significantly larger than the near one (two ways to
    contradict: Bonferroni within the cell, then Holm over the cells)."""
    metric, x, log_x, confidence = test["metric"], test["axis"], test.get("log", False), _confidence(test)
    sign = 1 if test.get("direction", "increasing") == "increasing" else -1
    runs = runs[matches(runs, test.get("where", {}))].dropna(subset=[x])
    n_test = _n_test(runs, test)
    fade = test.get("fades_along")
    rows = []
    for cell, df in _cell_groups(runs, list(test.get("cells", []))):
        near = df[df[fade] == df[fade].min()] if fade else df
        slope = _slopes(near, x, metric, log_x)
        near_floor = _slope_floor(near, x, metric, log_x, n_test)
        row = {**cell, "slope": slope.mean(), **contrast(sign * slope, 0.0, confidence, near_floor)}
        if fade:
            far_runs = df[df[fade] == df[fade].max()]
            far, far_floor = _slopes(far_runs, x, metric, log_x), _slope_floor(far_runs, x, metric, log_x, n_test)
            faded = contrast((sign * slope - far.abs()).dropna(), 0.0, confidence, math.hypot(near_floor, far_floor))
            row |= {
                f"slope_at_max_{fade}": far.mean(),
                "fade": faded["diff"],
                "fade_ci_low": faded["ci_low"],
                "fade_ci_high": faded["ci_high"],
                "p_above": np.max([row["p_above"], faded["p_above"]]),  # NaN (undecided) stays NaN
                "p_below": min(1.0, 2 * np.fmin(row["p_below"], faded["p_below"])),
            }
        rows.append(row)
    table = _judged(rows, test)
    what = f"{metric} {'rises' if sign > 0 else 'falls'} with {'log ' if log_x else ''}{x}" + (f" and the effect fades along {fade}" if fade else "")
    return (table, *verdict_from(table, what))


# -- robustness: does the metric stay within a band over some settings? ---------------------------


def _setting_label(over: list[str], key) -> str:
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{axis}={value:g}" if isinstance(value, int | float) else f"{axis}={value}" for axis, value in zip(over, values))


def _spare(band: dict, tolerance: float) -> tuple[float, float]:
    """The tolerance left over by a difference's interval [lo, hi]: tolerance minus the largest and
    minus the smallest |d| the interval admits (its low and high ends)."""
    lo, hi = band["ci_low"], band["ci_high"]
    nearest = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
    return tolerance - max(abs(lo), abs(hi)), tolerance - nearest


def varies_within(runs: pd.DataFrame, test: dict):
    """Robustness: in every cell the metric moves by at most `tolerance` over the settings of the
    `over` axes (max - min of the setting means, which holds exactly when every two settings are
    within the tolerance of each other). One row per cell and pair of settings, with their
    seed-paired difference d = a - b. `diff` is the tolerance to spare, tolerance - |mean d| (larger
    = more support, as in every rule); `ci_low`/`ci_high` the spare over d's interval. A pair is
    `better` when d is significantly inside (-tolerance, +tolerance): two one-sided tests (TOST), so
    its p_above is the larger of the two p-values (equivalently, d's confidence interval lies inside
    the band); `worse` when d is significantly outside it on either side (Bonferroni over the two
    sides, then Holm over all the claim's pairs). Supported needs every pair better."""
    metric, over, tolerance, confidence = test["metric"], list(test["over"]), test["tolerance"], _confidence(test)
    runs = runs[matches(runs, test.get("where", {}))]
    n_test = _n_test(runs, test)
    rows = []
    for cell, df in _cell_groups(runs, list(test.get("cells", []))):
        settings = {key: g for key, g in df.groupby(over if len(over) > 1 else over[0])}
        for a, b in itertools.combinations(sorted(settings), 2):
            ga, gb = settings[a], settings[b]
            pairs = pd.concat([_seed_means(ga, metric).rename("a"), _seed_means(gb, metric).rename("b")], axis=1).dropna()
            d = pairs["a"] - pairs["b"]
            floor = binomial_sd([(1, ga[metric].mean()), (-1, gb[metric].mean())], n_test)
            above_low = contrast(d, -tolerance, confidence, floor)  # p_above: d > -tolerance
            below_high = contrast(-d, -tolerance, confidence, floor)  # p_above: d < +tolerance
            spare_low, spare_high = _spare(above_low, tolerance)
            rows.append(
                {
                    **cell,
                    "setting_a": _setting_label(over, a),
                    "setting_b": _setting_label(over, b),
                    "mean_a": ga[metric].mean(),
                    "mean_b": gb[metric].mean(),
                    "difference": above_low["diff"],
                    "difference_ci_low": above_low["ci_low"],
                    "difference_ci_high": above_low["ci_high"],
                    **above_low,
                    "diff": tolerance - abs(above_low["diff"]),
                    "threshold": 0.0,
                    "ci_low": spare_low,
                    "ci_high": spare_high,
                    "p_above": np.max([above_low["p_above"], below_high["p_above"]]),  # NaN (undecided) stays NaN
                    "p_below": min(1.0, 2 * np.fmin(above_low["p_below"], below_high["p_below"])),
                }
            )
    table = _judged(rows, test)
    what = f"{metric} within {_points(tolerance)} over {', '.join(over)} (pairs of settings)"
    return (table, *verdict_from(table, what))


# -- evaluation and files -------------------------------------------------------------------------


def context_table(runs: pd.DataFrame, context: dict) -> pd.DataFrame:
    """A claim's `context` (no verdict, beside it): the mean and the runs of each `columns` metric
    per `by` group of the runs matching `where` (e.g. P3: the share of training samples the teacher
    gets wrong, and how many of them data selection still hands to the teacher)."""
    df = runs[matches(runs, context.get("where", {}))]
    columns = [c for c in context["columns"] if c in df]
    if not len(df) or not columns:
        return pd.DataFrame()
    by = [b for b in context.get("by", []) if b in df]
    grouped = df.groupby(by, dropna=False) if by else df.assign(_all=0).groupby("_all")
    table = grouped[columns].mean().join(grouped.size().rename("n_runs")).reset_index()
    return table.drop(columns="_all", errors="ignore")


def claim_header(spec: dict) -> dict:
    """The fields every ledger entry starts with, verdict or not: the claim, its setting and test."""
    test = spec["test"]
    return {
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
    }


def evaluate_claim(spec: dict, runs: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    test = spec["test"]
    rule: Callable = VERDICT_RULES.get(test["rule"])
    table, verdict, why = rule(runs, test)
    judged = table[table["status"].notna()] if len(table) else table
    diffs = judged["diff"].dropna() if len(judged) else pd.Series(dtype=float)
    result = {
        **claim_header(spec),
        "n_seeds": int(runs["seed"].nunique()),
        "n_cells": len(judged),
        "mean_diff": float(diffs.mean()) if len(diffs) else math.nan,
        "min_diff": float(diffs.min()) if len(diffs) else math.nan,
        "max_diff": float(diffs.max()) if len(diffs) else math.nan,
        "verdict": verdict,
        "reason": why,
        "cells": table.replace({np.nan: None}).to_dict("records"),
        "reported": compare_reported(spec.get("reported", []), runs),
    }
    if spec.get("context"):
        result["context"] = context_table(runs, spec["context"]).replace({np.nan: None}).to_dict("records")
    return table, result


def _context_markdown(spec: dict, records: list[dict] | None) -> str:
    if records is None:
        return ""
    what = spec["context"].get("what", "context")
    body = format_markdown_table(pd.DataFrame(records)) if records else "(no runs carry these columns)\n"
    return f"\n## Context: {what}\n\nMeans over the runs (fractions, not points); no verdict rests on them.\n\n{body}"


def _measure_markdown(spec: dict, records: list[dict] | None) -> str:
    if records is None:
        return ""
    body = format_markdown_table(pd.DataFrame(records)) if records else "(no score files)\n"
    what = spec["measure"].get("what", "rank correlation of two scores")
    return f"\n## Measurement: {what}\n\nSpearman rank correlations of the two score files; no verdict rests on them.\n\n{body}"


def evaluate_claim_files(
    spec: dict, runs_path: Path, table_csv: Path, verdict_json: Path, decisions: list[Path] = (), measured: list[Path] = ()
) -> dict:
    """The claim's table (.csv, .md in points) and verdict (.json); `decisions`: its adaptive
    replicates' round files, summarised in the verdict (kdprune.report.replicates); `measured`:
    the score files its `measure` compares (kdprune.report.measures), in pairs."""
    runs = read_runs_table(runs_path)
    table, result = evaluate_claim(spec, runs)
    if spec.get("measure"):
        from kdprune.report.measures import rank_correlations

        result["measure"] = rank_correlations(list(measured))
    if spec.get("replicates"):
        from kdprune.report.replicates import summary

        result["replicates"] = summary(spec, [read_json(p) for p in decisions], runs)
    with atomic_path(table_csv) as tmp:
        table.to_csv(tmp, index=False)
    title = f"# {spec['id']} ({spec['paper']}): `{spec['test']['rule']}` on {spec['test']['metric']}\n\n{spec['statement']}\n\n"
    units = "Accuracies, effects and intervals in points (percent), as in the ledger.\n\n"
    write_text(
        table_csv.with_suffix(".md"),
        title
        + units
        + format_markdown_table(in_points(table))
        + f"\nVerdict: **{result['verdict']}**: {result['reason']}.\n\n"
        + reported_markdown(result["reported"])
        + _context_markdown(spec, result.get("context"))
        + _measure_markdown(spec, result.get("measure")),
    )
    write_json(verdict_json, result)
    return result
