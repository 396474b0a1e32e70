"""The claims ledger: every claim's verdict with the numbers behind it, as Markdown (for people),
CSV and JSON (for programs)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from kdprune.files import atomic_path, read_json, write_json, write_text
from kdprune.report.markdown import format_markdown_table, in_points
from kdprune.report.reported import reported_markdown, reported_summary

# The setting's keys every claim has (kdprune/plan/claims.py); the others (loss parameters,
# teacher_keep, label_noise) are listed after them.
SETTING_BASE = (
    "dataset",
    "student",
    "teacher",
    "selection",
    "keep",
    "seeds",
    "student_epochs",
    "teacher_epochs",
    "budget",
    "replicate",
    "teacher_seeds",
    "distillation",
)
NOT_EVIDENCE = "no: this preset checks the pipeline, it is too small to count as evidence"


def _pts(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.2f}"


def ledger_rows(verdicts: list[dict]) -> pd.DataFrame:
    rows = []
    for v in verdicts:
        rows.append(
            {
                "claim": v["claim"],
                "paper": v["paper"],
                "extension": v["extension"],
                "statement": v["statement"],
                "preset": v["preset"],
                "evidence": "yes" if v["evidence"] else NOT_EVIDENCE,
                "dataset": ", ".join(map(str, v["setting"]["dataset"])),
                "rule": v["rule"],
                "metric": v["metric"],
                "n_seeds": v["n_seeds"],
                "n_cells": v["n_cells"],
                "mean_diff": v["mean_diff"],
                "min_diff": v["min_diff"],
                "max_diff": v["max_diff"],
                "confidence": v["confidence"],
                "verdict": v["verdict"],
                "reason": v["reason"],
                "paper_reports": reported_summary(v.get("reported", [])),
            }
        )
    return pd.DataFrame(rows)


def _markdown(verdicts: list[dict]) -> str:
    out = ["# Claims ledger", ""]
    presets = sorted({v["preset"] for v in verdicts})
    if any(not v["evidence"] for v in verdicts):
        out += [
            f"> **Preset {', '.join(presets)}: too small to count as evidence.** These verdicts check that the pipeline "
            "runs end to end; rerun with the `small` or `paper` preset for numbers that mean something.",
            "",
        ]
    out += ["| claim | paper | verdict | effect (points) | seeds | evidence | paper reports (points) |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        diff = f"mean {_pts(v['mean_diff'])} (cells {_pts(v['min_diff'])} .. {_pts(v['max_diff'])})"
        out.append(
            f"| {v['claim']}{' (extension)' if v['extension'] else ''} | {v['paper']} | **{v['verdict']}** | {diff} | "
            f"{v['n_seeds']} | {'yes' if v['evidence'] else 'no'} | {reported_summary(v.get('reported', []))} |"
        )
    for v in verdicts:
        s = v["setting"]
        extra_axes = "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in s.items() if k not in SETTING_BASE)  # loss parameters, ...
        test = ", ".join(f"{k}: {val}" for k, val in v["test"].items() if k not in ("rule", "metric"))
        out += [
            "",
            f"## {v['claim']} ({v['paper']}){' (extension: goes beyond the paper)' if v['extension'] else ''}",
            "",
            f"**Statement.** {v['statement']}",
            "",
            f"**Setting.** preset `{v['preset']}`; dataset {', '.join(map(str, s['dataset']))}; {_trained(s)}; selection {', '.join(s['selection'])}; "
            f"keep {', '.join(f'{k:g}' for k in s['keep'])}; seeds {', '.join(map(str, s['seeds']))}"
            + (f"; {extra_axes}" if extra_axes else "")
            + ".",
            "",
            f"**Replicates.** {_replicates(s)}" + (f" {_adaptive(v['replicates'])}" if v.get("replicates") else ""),
            "",
            f"**Test.** `{v['rule']}` on {v['metric']} ({test}); {100 * v['confidence']:g}% t-intervals over replicates, the spread "
            f"floored at the binomial test-set error; a cell is better by its own one-sided test at {50 * (1 - v['confidence']):g}%, "
            "worse after Holm's correction over the cells (docs/verdicts.md). `diff` points the way the claim does. "
            "Accuracies, effects, intervals and `mde` (the smallest effect a cell could have detected) are in points (percent).",
            "",
            format_markdown_table(in_points(pd.DataFrame(v["cells"]))),
            f"**Verdict: {v['verdict']}**: {v['reason']}." + ("" if v["evidence"] else f" Evidence: {NOT_EVIDENCE}."),
            "",
            reported_markdown(v.get("reported", [])),
        ]
    return "\n".join(out)


def _trained(s: dict) -> str:
    """What the claim's runs trained: students (and their teachers), or distilled sets and their evaluation."""
    if "distillation" in s:
        d = s["distillation"]
        methods = "; ".join(
            f"{m} ipc {', '.join(map(str, a['ipc']))}, ite {', '.join(f'{b:g}' for b in a.get('ite', [0]))} ({a['iterations']} iterations)"
            for m, a in d["methods"].items()
        )
        return f"distilled by {methods}; each set evaluated by {d['num_eval']} x {', '.join(s['student'])} ({d['epochs']} epochs, {d['epochs_dsa']} with DSA)"
    return (
        f"student {', '.join(s['student'])}; teacher {', '.join(s['teacher']) or 'none'} ({s['teacher_epochs']} epochs); "
        f"student epochs {', '.join(map(str, s['student_epochs']))} ({', '.join(s['budget'])} budget)"
    )


def _replicates(setting: dict) -> str:
    if "distillation" in setting:
        return "each seed s distils set s from its selection (a score with score_seed fixed: one file for every seed) and evaluates it."
    if setting.get("replicate") == "chain":
        return "each seed s redoes the whole chain (teacher s, scores s, student s): teacher-to-teacher variation is in the intervals."
    if setting.get("teacher_seeds"):
        seeds = ", ".join(map(str, setting["teacher_seeds"]))
        return (
            f"each seed s trains scores s and student s with the same teacher(s) (teacher seed {seeds}): the verdict is "
            "conditional on that teacher; teacher-to-teacher variation is not in the intervals."
        )
    return "each seed s trains scores s and student s (no teacher)."


def _adaptive(r: dict) -> str:
    rounds = "; ".join(f"round {d['round']}: {d['cells']} unresolved cells, {d['runs_added']} runs added" for d in r["rounds_run"])
    return (
        f"Adaptive (min {r['min']}, max {r['max']} seeds, at most {r['rounds']} rounds): {rounds or 'no round ran'}. "
        f"Runs used: {r['runs_used']} ({r['seconds_used'] / 3600:.2f} h of training) against {r['runs_at_max']} "
        f"({r['seconds_at_max'] / 3600:.2f} h, estimated) for {r['max']} seeds everywhere; `n_pairs` is each cell's replicates."
    )


def write_ledger(verdict_paths: list[Path], out_dir: Path) -> None:
    verdicts = sorted((read_json(p) for p in verdict_paths), key=lambda v: v["claim"])
    with atomic_path(out_dir / "claims.csv") as tmp:
        ledger_rows(verdicts).to_csv(tmp, index=False)
    write_json(out_dir / "claims.json", verdicts)
    write_text(out_dir / "claims.md", _markdown(verdicts))
