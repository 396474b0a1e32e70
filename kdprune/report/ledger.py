"""The claims ledger: every claim's verdict with the numbers behind it, as Markdown (for people),
CSV and JSON (for programs)."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from kdprune.io import atomic_path, read_json, write_json, write_text

NOT_EVIDENCE = "no: this scale checks the pipeline, it is too small to count as evidence"


def _pts(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.2f}"


def ledger_rows(verdicts: list[dict]) -> pd.DataFrame:
    rows = []
    for v in verdicts:
        rows.append({
            "claim": v["claim"], "paper": v["paper"], "extension": v["extension"], "statement": v["statement"],
            "scale": v["scale"], "evidence": "yes" if v["evidence"] else NOT_EVIDENCE,
            "dataset": ", ".join(map(str, v["setting"]["dataset"])), "rule": v["rule"], "metric": v["metric"],
            "n_seeds": v["n_seeds"], "n_cells": v["n_cells"], "mean_diff": v["mean_diff"], "min_diff": v["min_diff"],
            "max_diff": v["max_diff"], "confidence": v["confidence"], "verdict": v["verdict"], "reason": v["reason"],
        })
    return pd.DataFrame(rows)


def _markdown(verdicts: list[dict]) -> str:
    out = ["# Claims ledger", ""]
    scales = sorted({v["scale"] for v in verdicts})
    if any(not v["evidence"] for v in verdicts):
        out += [f"> **Scale {', '.join(scales)}: too small to count as evidence.** These verdicts check that the pipeline "
                "runs end to end; rerun at the `small` or `paper` scale for numbers that mean something.", ""]
    out += ["| claim | paper | verdict | treatment - control (points) | seeds | evidence |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        diff = f"mean {_pts(v['mean_diff'])} (cells {_pts(v['min_diff'])} .. {_pts(v['max_diff'])})"
        out.append(f"| {v['claim']}{' (extension)' if v['extension'] else ''} | {v['paper']} | **{v['verdict']}** | {diff} | "
                   f"{v['n_seeds']} | {'yes' if v['evidence'] else 'no'} |")
    for v in verdicts:
        s = v["setting"]
        out += ["", f"## {v['claim']} ({v['paper']}){' (extension: goes beyond the paper)' if v['extension'] else ''}", "",
                f"**Statement.** {v['statement']}", "",
                f"**Setting.** scale `{v['scale']}`; dataset {', '.join(map(str, s['dataset']))}; student {', '.join(s['student'])}; "
                f"teacher {', '.join(s['teacher']) or 'none'} ({s['teacher_epochs']} epochs); methods {', '.join(s['methods'])}; "
                f"keep {', '.join(f'{k:g}' for k in s['keep'])}; student epochs {', '.join(map(str, s['student_epochs']))}; "
                f"seeds {', '.join(map(str, s['seeds']))}.", "",
                f"**Test.** `{v['rule']}` on {v['metric']}: {v['treatment']} vs {v['control']}, paired by seed, "
                f"{100 * v['confidence']:g}% t-interval per cell, margin {v['margin']:g}.", "",
                "| cell | treatment mean ± std | control mean ± std | diff (points) | CI (points) | pairs | status |",
                "|---|---|---|---|---|---|---|"]
        for c in v["cells"]:
            keys = [k for k in c if k not in {"treatment_mean", "treatment_std", "n_treatment", "control_mean", "control_std",
                                                 "n_control", "diff", "ci_low", "ci_high", "n_pairs", "status"}]
            cell = ", ".join(f"{k}={c[k]:g}" if isinstance(c[k], float) else f"{k}={c[k]}" for k in keys)
            out.append(f"| {cell} | {_pct(c['treatment_mean'], c['treatment_std'])} | {_pct(c['control_mean'], c['control_std'])} | "
                       f"{_pts(c['diff'])} | [{_pts(c['ci_low'])}, {_pts(c['ci_high'])}] | {c['n_pairs']} | {c['status']} |")
        out += ["", f"**Verdict: {v['verdict']}**: {v['reason']}." + ("" if v["evidence"] else f" Evidence: {NOT_EVIDENCE}."), ""]
    return "\n".join(out)


def _pct(mean, std) -> str:
    if mean is None:
        return "n/a"
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def write_ledger(verdict_paths: list[Path], out_dir: Path) -> None:
    verdicts = sorted((read_json(p) for p in verdict_paths), key=lambda v: v["claim"])
    with atomic_path(out_dir / "claims.csv") as tmp:
        ledger_rows(verdicts).to_csv(tmp, index=False)
    write_json(out_dir / "claims.json", verdicts)
    write_text(out_dir / "claims.md", _markdown(verdicts))
