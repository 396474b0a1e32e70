"""Published numbers beside ours. A claim's `reported:` entries (paper files) each give a number a
paper prints (`primary`) or another source quotes from it (`secondary`), in points, for one
setting (`where`, matched against the runs table like a test's treatment) and one metric (e.g.
`best_acc`: the paper reports the best epoch). Ours is the mean over seeds of that metric in the
matching runs; a setting the preset does not train is said so, never filled in."""

from __future__ import annotations

import math

import pandas as pd

from kdprune.report.matching import matches

NOT_IN_GRID = "not in this preset's grid"


def compare_reported(entries: list[dict], runs: pd.DataFrame) -> list[dict]:
    """Each entry with ours beside it: `ours` and `ours_sd` (points, over `n` runs), `diff` = ours -
    reported, or `status` NOT_IN_GRID when no run matches (an axis the table lacks matches none)."""
    out = []
    for entry in entries:
        where, metric = entry["where"], entry["metric"]
        known = all(axis in runs.columns for axis in where) and metric in runs.columns
        values = pd.to_numeric(runs.loc[matches(runs, where), metric], errors="coerce").dropna() * 100 if known else pd.Series(dtype=float)
        row = {**entry, "n": len(values)}
        if len(values):
            ours = float(values.mean())
            sd = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row |= {"ours": ours, "ours_sd": sd, "diff": ours - float(entry["value"]), "status": "compared"}
        else:
            row |= {"ours": None, "ours_sd": None, "diff": None, "status": NOT_IN_GRID}
        out.append(row)
    return out


def _num(x: float | None, sign: bool = False) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else (f"{x:+.2f}" if sign else f"{x:.2f}")


def reported_summary(rows: list[dict]) -> str:
    """One ledger cell: every published number with ours beside it, or a dash when there is none."""
    if not rows:
        return "none published"
    return "; ".join(
        f"{r['value']:.2f} ({r['kind']}) vs ours {_num(r['ours'])} ({_num(r['diff'], sign=True)})"
        if r["status"] == "compared"
        else f"{r['value']:.2f} ({r['kind']}): {r['status']}"
        for r in rows
    )


def reported_markdown(rows: list[dict]) -> str:
    """A claim table's section: each number, its source and setting, ours and the difference."""
    if not rows:
        return "**Paper reports.** No published number for this claim.\n"
    lines = [
        "**Paper reports** (points; ours: mean over `n` runs of the same setting and metric).",
        "",
        "| paper reports | kind | source | setting | metric | ours | sd | n | ours - paper |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        setting = ", ".join(f"{k} {v}" for k, v in r["where"].items())
        ours = _num(r["ours"]) if r["status"] == "compared" else r["status"]
        lines.append(
            f"| {r['value']:.2f} | {r['kind']} | {r['source']} | {setting} | {r['metric']} | {ours} | {_num(r['ours_sd'])} | {r['n']} | "
            f"{_num(r['diff'], sign=True)} |"
        )
    return "\n".join(lines) + "\n"
