"""The claims ledger: every claim's verdict with the numbers behind it, as Markdown (for people),
CSV and JSON (for programs). After a failed run (a job's loss turned non-finite, say) the ledger
still lists every claim: those whose runs all finished keep their verdicts, the others are
`incomplete` and name the runs they still need, rather than a verdict from partial data."""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path

import pandas as pd

from kdprune.files import atomic_path, read_json, write_json, write_text
from kdprune.plan import Plan
from kdprune.plan.kinds import DONE, student_job_key
from kdprune.report.markdown import format_markdown_table, in_points
from kdprune.report.reported import reported_markdown, reported_summary
from kdprune.report.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, claim_header

INCOMPLETE = "incomplete"  # a run the claim needs did not finish: no verdict from partial data
STATUSES = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, INCOMPLETE)  # every status a ledger row may have, in summary order

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
                "missing_runs": "; ".join(v.get("missing_runs", [])),
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
    counts = {status: sum(v["verdict"] == status for v in verdicts) for status in STATUSES}
    out += ["**Verdicts.** " + ", ".join(f"{n} {status}" for status, n in counts.items()) + ".", ""]
    if counts[INCOMPLETE]:
        out += [
            f"> **{counts[INCOMPLETE]} {'claim' if counts[INCOMPLETE] == 1 else 'claims'} incomplete**: a job they need failed or did not run (its log says why); their "
            "sections name the missing runs. Rerun the workflow once the cause is fixed.",
            "",
        ]
    out += ["| claim | paper | verdict | effect (points) | seeds | evidence | paper reports (points) |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        diff = f"mean {_pts(v['mean_diff'])} (cells {_pts(v['min_diff'])} .. {_pts(v['max_diff'])})"
        diff = f"none: {len(v['missing_runs'])} runs missing" if v["verdict"] == INCOMPLETE else diff
        out.append(
            f"| {v['claim']}{' (extension)' if v['extension'] else ''} | {v['paper']} | **{v['verdict']}** | {diff} | "
            f"{v['n_seeds']} | {'yes' if v['evidence'] else 'no'} | {reported_summary(v.get('reported', []))} |"
        )
    for v in verdicts:
        out += ["", *_section(v)]
    return "\n".join(out)


def _section(v: dict) -> list[str]:
    """A claim's section of the ledger: statement, setting and test, then its table and verdict, or
    for an incomplete claim the runs it still needs."""
    s = v["setting"]
    extra_axes = "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in s.items() if k not in SETTING_BASE)  # loss parameters, ...
    test = ", ".join(f"{k}: {val}" for k, val in v["test"].items() if k not in ("rule", "metric"))
    head = [
        f"## {v['claim']} ({v['paper']}){' (extension: goes beyond the paper)' if v['extension'] else ''}",
        "",
        f"**Statement.** {v['statement']}",
        "",
        f"**Setting.** preset `{v['preset']}`; dataset {', '.join(map(str, s['dataset']))}; {_trained(s)}; selection {', '.join(s['selection'])}; "
        f"keep {', '.join(f'{k:g}' for k in s['keep'])}; seeds {', '.join(map(str, s['seeds']))}" + (f"; {extra_axes}" if extra_axes else "") + ".",
        "",
    ]
    if v["verdict"] == INCOMPLETE:
        missing = [f"- `{run}`" for run in v["missing_runs"]]
        return [*head, f"**Test.** `{v['rule']}` on {v['metric']} ({test}).", "", f"**Verdict: {INCOMPLETE}**: {v['reason']}.", "", *missing, ""]
    return [
        *head,
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
    rounds = "; ".join(
        f"round {d['round']}: {d['cells']} unresolved cells"
        + (f" ({d['futile']} futile)" if d.get("futile") else "")
        + f", {d['runs_added']} runs added"
        for d in r["rounds_run"]
    )
    # summaries written before 2026-12-07 lack the interim level: their rounds looked at the claim's own
    looks = f", rounds look at {r['interim_confidence']:.1%}" if "interim_confidence" in r else ""
    futility = f", futility {r['futility']:g} x max" if r.get("futility") is not None else ""
    return (
        f"Adaptive (min {r['min']}, max {r['max']} seeds, at most {r['rounds']} rounds{looks}{futility}): {rounds or 'no round ran'}. "
        f"Runs used: {r['runs_used']} ({r['seconds_used'] / 3600:.2f} h of training) against {r['runs_at_max']} "
        f"({r['seconds_at_max'] / 3600:.2f} h, estimated) for {r['max']} seeds everywhere; `n_pairs` is each cell's replicates."
    )


def write_ledger(verdict_paths: list[Path], out_dir: Path) -> None:
    _write([read_json(p) for p in verdict_paths], out_dir)


def _write(verdicts: list[dict], out_dir: Path) -> None:
    """claims.csv, .json and .md, each replaced atomically; all three are rendered first, so a
    failure leaves the previous ledger whole."""
    verdicts = sorted(verdicts, key=lambda v: v["claim"])
    rows, markdown = ledger_rows(verdicts), _markdown(verdicts)
    with atomic_path(out_dir / "claims.csv") as tmp:
        rows.to_csv(tmp, index=False)
    write_json(out_dir / "claims.json", verdicts)
    write_text(out_dir / "claims.md", markdown)


# -- the ledger of a failed run ---------------------------------------------------------------------


def write_partial_ledger(plan: Plan, out_dir: Path, unfinished: Collection[str] = ()) -> list[dict]:
    """The ledger after a run in which jobs failed (Snakemake's `onerror`, workflow/rules/report.smk):
    a claim keeps its verdict when the verdict file and every run it needs exist and none of them
    is in `unfinished` (the outputs of jobs the run was to make but did not: a copy on disk is
    from an earlier run, stale); every other claim is `incomplete`, naming its missing runs.
    Returns the incomplete entries."""
    entries = []
    for claim_id, verdict_file in zip(plan.cfg["claims"], plan.verdict_files(), strict=True):
        missing = [run for run, files in claim_runs(plan, claim_id, unfinished).items() if not all(_done(f, unfinished) for f in files)]
        if missing or not _done(verdict_file, unfinished):
            entries.append(incomplete_entry(plan.claim_spec(claim_id), missing, f"{plan.results}/logs"))
        else:
            entries.append(read_json(verdict_file))
    _write(entries, out_dir)
    return [e for e in entries if e["verdict"] == INCOMPLETE]


def _done(path: str, unfinished: Collection[str]) -> bool:
    return path not in unfinished and Path(path).is_file()


def claim_runs(plan: Plan, claim_id: str, unfinished: Collection[str] = ()) -> dict[str, list[str]]:
    """{run folder: the files that say it finished} of every run a claim reads: its experiment's
    first round (the run's metrics and the file its job is tracked by: a seed group's record) and
    the runs its finished adaptive-replicate rounds added."""
    runs = {}
    for job in plan.grid.experiments[plan.cfg["claims"][claim_id]["experiment"]]:
        run = f"{plan.results}/{job.dir}"
        runs[run] = [f"{run}/metrics.json", plan.outputs("student", student_job_key(plan.cfg, job))[DONE]]
    round_no = 1
    while _done(decision := plan.decision_file(claim_id, round_no), unfinished):
        runs.update({str(Path(metrics).parent): [metrics] for metrics in read_json(decision)["metrics"]})
        round_no += 1
    return runs


def incomplete_entry(spec: dict, missing: list[str], logs: str) -> dict:
    """A ledger entry with the fields of a verdict (kdprune.report.verdicts.evaluate_claim) but no
    numbers: the claim, its setting and test, and the runs it still needs (`logs`: where the report
    jobs' logs are)."""
    if missing:
        reason = f"{len(missing)} of the runs it needs did not finish (a job failed or was not run), so no verdict from partial data"
    else:
        reason = f"its runs finished but its verdict was not computed (a report job of the claim failed; its log is under {logs}/)"
    return {
        **claim_header(spec),
        "n_seeds": 0,
        "n_cells": 0,
        "mean_diff": math.nan,
        "min_diff": math.nan,
        "max_diff": math.nan,
        "verdict": INCOMPLETE,
        "reason": reason,
        "cells": [],
        # the published numbers stay, with nothing of ours beside them
        "reported": [{**r, "n": 0, "ours": None, "ours_sd": None, "diff": None, "status": INCOMPLETE} for r in spec.get("reported", [])],
        "missing_runs": missing,
    }
