"""The claims ledger: every claim's verdict with the numbers behind it, as Markdown (for people),
CSV and JSON (for programs)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from kdprune.files import atomic_path, read_json, write_json, write_text
from kdprune.report.markdown import format_markdown_table

# The setting's keys every claim has (kdprune/plan/claims.py); the others (loss parameters,
# teacher_keep, label_noise) are listed after them.
SETTING_BASE = ("dataset", "student", "teacher", "selection", "keep", "seeds", "student_epochs", "teacher_epochs", "budget")
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
    out += ["| claim | paper | verdict | effect (points) | seeds | evidence |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        diff = f"mean {_pts(v['mean_diff'])} (cells {_pts(v['min_diff'])} .. {_pts(v['max_diff'])})"
        out.append(
            f"| {v['claim']}{' (extension)' if v['extension'] else ''} | {v['paper']} | **{v['verdict']}** | {diff} | "
            f"{v['n_seeds']} | {'yes' if v['evidence'] else 'no'} |"
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
            f"**Setting.** preset `{v['preset']}`; dataset {', '.join(map(str, s['dataset']))}; student {', '.join(s['student'])}; "
            f"teacher {', '.join(s['teacher']) or 'none'} ({s['teacher_epochs']} epochs); selection {', '.join(s['selection'])}; "
            f"keep {', '.join(f'{k:g}' for k in s['keep'])}; student epochs {', '.join(map(str, s['student_epochs']))} "
            f"({', '.join(s['budget'])} budget); seeds {', '.join(map(str, s['seeds']))}" + (f"; {extra_axes}" if extra_axes else "") + ".",
            "",
            f"**Test.** `{v['rule']}` on {v['metric']} ({test}); {100 * v['confidence']:g}% t-intervals over seeds. "
            "Accuracies and effects below are in points (percent).",
            "",
            format_markdown_table(_in_points(pd.DataFrame(v["cells"]))),
            f"**Verdict: {v['verdict']}**: {v['reason']}." + ("" if v["evidence"] else f" Evidence: {NOT_EVIDENCE}."),
            "",
        ]
    return "\n".join(out)


STAT_ORDER = [
    "treatment_mean",
    "treatment_std",
    "n_treatment",
    "control_mean",
    "control_std",
    "n_control",
    "diff",
    "ci_low",
    "ci_high",
    "n_pairs",
    "status",
]


def _in_points(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy-valued columns x 100, so the ledger reads in points; the cell's axes first, then the
    rule's own columns, then the effect and its interval (JSON sorted the keys)."""
    stats = [c for c in STAT_ORDER if c in table.columns]
    out = table[[c for c in table.columns if c not in stats] + stats].copy()
    for col in out.columns:
        if (
            col in ("diff", "ci_low", "ci_high", "slope", "fade", "fade_ci_low")
            or col.endswith(("_mean", "_std", "_gain"))
            or col.startswith("slope_")
        ):
            out[col] = pd.to_numeric(out[col], errors="coerce") * 100
    return out


def write_ledger(verdict_paths: list[Path], out_dir: Path) -> None:
    verdicts = sorted((read_json(p) for p in verdict_paths), key=lambda v: v["claim"])
    with atomic_path(out_dir / "claims.csv") as tmp:
        ledger_rows(verdicts).to_csv(tmp, index=False)
    write_json(out_dir / "claims.json", verdicts)
    write_text(out_dir / "claims.md", _markdown(verdicts))
