"""The ledger of a failed run (kdprune.report.ledger.write_partial_ledger, what the workflow's
`onerror` writes): on P1's smoke plan, with every run's files and every claim's verdict on disk
except what each test takes away, claims missing a run are `incomplete` and name exactly those
runs; the others keep their verdicts."""

import json

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import REPO

from kdprune.files import write_json
from kdprune.plan import Plan
from kdprune.plan.kinds import DONE, student_job_key
from kdprune.report.ledger import claim_runs, write_ledger, write_partial_ledger
from kdprune.report.verdicts import evaluate_claim

LEDGER = ("claims.csv", "claims.json", "claims.md")


@pytest.fixture
def plan(tmp_path, monkeypatch) -> Plan:
    """P1's smoke plan, run from tmp_path (the plan's paths are relative), with every first-round
    run's metrics and job record and every claim's verdict written."""
    plan = Plan.from_config(REPO / "config.yaml", {"papers": ["P1"]})
    monkeypatch.chdir(tmp_path)
    for experiment, jobs in plan.grid.experiments.items():
        for job in jobs:
            write_json(f"{plan.results}/{job.dir}/metrics.json", {"run": job.dir})
            write_json(plan.outputs("student", student_job_key(plan.cfg, job))[DONE], {})
    for claim_id, path in zip(plan.cfg["claims"], plan.verdict_files(), strict=True):
        write_json(path, verdict(plan, claim_id))
    return plan


def verdict(plan: Plan, claim_id: str) -> dict:
    """A real verdict of the claim's paper and id (the rule's numbers from synthetic runs)."""
    rng = np.random.default_rng(0)
    rows = [
        {"keep": 0.2, "loss": loss, "seed": s, "final_acc": 0.6 + 0.05 * (loss == "kd") + rng.normal(0, 0.005), "n_test": 10_000}
        for loss in ("ce", "kd")
        for s in range(3)
    ]
    test = {"rule": "improves_everywhere", "metric": "final_acc", "treatment": {"loss": "kd"}, "control": {"loss": "ce"}, "cells": ["keep"]}
    return evaluate_claim({**plan.claim_spec(claim_id), "test": test}, pd.DataFrame(rows))[1]


def run_dir(plan: Plan, experiment: str, index: int = 0) -> str:
    return f"{plan.results}/{plan.grid.experiments[experiment][index].dir}"


def ledger(tmp_path) -> dict[str, dict]:
    return {v["claim"]: v for v in json.loads((tmp_path / "claims.json").read_text())}


def test_claims_missing_a_run_are_incomplete_and_name_it_the_others_keep_their_verdicts(plan, tmp_path):
    lost = run_dir(plan, "p1_alpha", 3)
    (tmp_path / lost / "metrics.json").unlink()
    incomplete = write_partial_ledger(plan, tmp_path)
    needing = sorted(c for c, claim in plan.cfg["claims"].items() if claim["experiment"] == "p1_alpha")
    assert needing == ["P1-C4", "P1-C5"] and sorted(v["claim"] for v in incomplete) == needing
    entries = ledger(tmp_path)
    assert entries.keys() == set(plan.cfg["claims"])
    for claim_id, path in zip(plan.cfg["claims"], plan.verdict_files(), strict=True):
        if claim_id in needing:  # a verdict file is on disk, but its runs are not all there: not trusted
            v = entries[claim_id]
            assert v["verdict"] == "incomplete" and v["missing_runs"] == [lost] and "1 of the runs" in v["reason"]
            assert v["statement"] == plan.claim_spec(claim_id)["statement"] and v["cells"] == [] and v["n_seeds"] == 0
        else:
            assert entries[claim_id] == json.loads((tmp_path / path).read_text())
    table = pd.read_csv(tmp_path / "claims.csv", keep_default_na=False).set_index("claim")
    assert table.loc["P1-C4", "verdict"] == "incomplete" and table.loc["P1-C4", "missing_runs"] == lost
    assert table.loc["P1-C1", "verdict"] == "supported" and table.loc["P1-C1", "missing_runs"] == ""
    md = (tmp_path / "claims.md").read_text()
    summary = f"**Verdicts.** {len(entries) - 2} supported, 0 not supported, 0 inconclusive, 2 incomplete."
    assert summary in md and "2 claims incomplete" in md and "| **incomplete** | none: 1 runs missing |" in md
    c4 = md.split("## P1-C4 ")[1].split("\n## ")[0]
    assert "**Verdict: incomplete**" in c4 and f"- `{lost}`" in c4 and "| diff |" not in c4


def test_a_seed_group_without_its_record_misses_every_seed(plan, tmp_path):
    """A job of several seeds that failed after writing one seed's metrics: its record is what says
    it finished, so all its seeds are missing, though one has metrics."""
    job = plan.grid.experiments["p1_teacher_data"][0]
    record = plan.outputs("student", student_job_key(plan.cfg, job))[DONE]
    assert record.endswith("runs-s0-1-2.json")
    (tmp_path / record).unlink()
    (incomplete,) = write_partial_ledger(plan, tmp_path)
    group = [f"{plan.results}/{j.dir}" for j in plan.grid.experiments["p1_teacher_data"] if j.group_dir == job.group_dir]
    assert incomplete["claim"] == "P1-C7" and incomplete["missing_runs"] == group and len(group) == 3


def test_outputs_snakemake_did_not_finish_are_stale_even_on_disk(plan, tmp_path):
    """`unfinished`: outputs of jobs the run was to make and did not. A run's old metrics count as
    missing; a verdict whose job did not finish is incomplete though every run is there. The run
    here is one that two experiments share (one job): both their claims need it."""
    stale_run = run_dir(plan, "p1_capacity")
    assert stale_run in {f"{plan.results}/{job.dir}" for job in plan.grid.experiments["p1_teacher_data"]}
    stale_verdict = next(p for p in plan.verdict_files() if p.endswith("/P1-C5n.json"))
    incomplete = write_partial_ledger(plan, tmp_path, {f"{stale_run}/metrics.json", stale_verdict})
    by_claim = {v["claim"]: v for v in incomplete}
    assert by_claim.keys() == {"P1-C6", "P1-C7", "P1-C5n"}
    assert by_claim["P1-C6"]["missing_runs"] == by_claim["P1-C7"]["missing_runs"] == [stale_run]
    assert by_claim["P1-C5n"]["missing_runs"] == [] and "verdict was not computed" in by_claim["P1-C5n"]["reason"]
    assert f"{plan.results}/logs/" in by_claim["P1-C5n"]["reason"]


def test_runs_an_adaptive_round_added_are_needed_too(plan, tmp_path):
    """P1-C3 has adaptive replicates in smoke: its finished round's decision adds a seed-3 run,
    which the claim then needs; P1-C1 and P1-C2, on the same experiment, do not."""
    added = f"{run_dir(plan, 'p1_kd_vs_ce')[: -len('/s0')]}/s3"
    write_json(plan.decision_file("P1-C3", 1), {"metrics": [f"{added}/metrics.json"], "done": True})
    assert added in claim_runs(plan, "P1-C3") and added not in claim_runs(plan, "P1-C1")
    (incomplete,) = write_partial_ledger(plan, tmp_path)
    assert incomplete["claim"] == "P1-C3" and incomplete["missing_runs"] == [added]
    write_json(f"{added}/metrics.json", {})
    assert write_partial_ledger(plan, tmp_path) == []
    # a decision whose job did not finish adds nothing (its rounds' runs are not known yet)
    assert added not in claim_runs(plan, "P1-C3", {plan.decision_file("P1-C3", 1)})


def test_the_published_numbers_stay_with_nothing_of_ours_beside_them(plan, tmp_path):
    """P2-C1 reports a published number; incomplete, the ledger shows it and says ours is missing."""
    plan = Plan.from_config(REPO / "config.yaml", {"papers": ["P2"]})
    (entry,) = [v for v in write_partial_ledger(plan, tmp_path) if v["claim"] == "P2-C1"]  # no P2 run is on disk
    assert entry["reported"] and all(r["status"] == "incomplete" and r["ours"] is None for r in entry["reported"])
    assert "): incomplete" in pd.read_csv(tmp_path / "claims.csv").set_index("claim").loc["P2-C1", "paper_reports"]


def test_a_ledger_that_cannot_be_built_leaves_the_previous_one_whole(plan, tmp_path):
    """Every file is rendered before any is replaced, each by an atomic rename: a verdict file cut
    short (a real truncated file) stops the write with the previous ledger byte for byte, and a
    write leaves no temporary files behind."""
    write_partial_ledger(plan, tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in LEDGER}
    path = tmp_path / plan.verdict_files()[0]
    path.write_text(path.read_text()[:200])
    with pytest.raises(json.JSONDecodeError):
        write_partial_ledger(plan, tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in LEDGER} == before
    bad = dict(json.loads(before["claims.json"])[0])
    del bad["setting"]  # a verdict the Markdown cannot render: nothing is replaced either
    write_json(tmp_path / "bad.json", bad)
    with pytest.raises(KeyError):
        write_ledger([tmp_path / "bad.json"], tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in LEDGER} == before
    assert not list(tmp_path.glob(".claims.*"))
