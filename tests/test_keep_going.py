"""A failed branch under --keep-going (scripts/main.sh passes it): one experiment's students train at
an absurd learning rate, so their loss turns non-finite for real. Each of those jobs stops with one
line and no metrics; every other job finishes; Snakemake exits non-zero; and the ledger, which its
rule could not make, is still written: the claim on the healthy experiment has its verdict, the
claim on the broken one is `incomplete` and names its missing runs. Run again with the cause fixed,
the same command trains only the missing runs and the ledger has both verdicts."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import only_p1_c1, snakemake

from kdprune.forkserver import ENV
from kdprune.plan import Plan

GRID = {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.3], "loss": {"ce": {}, "kd": {}}, "seed": [0, 1]}


@pytest.mark.workflow
def test_a_non_finite_loss_fails_its_branch_only_and_the_ledger_says_incomplete(workflow_dir):
    only_p1_c1(
        workflow_dir,
        GRID,
        recipes={"teacher": {"epochs": 2}, "student": {"epochs": 2}, "score": {"epochs": 2}},
        extra={"p1_unstable": {"title": "P1-C1's grid on its own recipe", **GRID, "recipe": ["unstable"]}},
    )
    config_file = workflow_dir / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["recipes"]["unstable"] = {"epochs": 2}  # sane as written: the command line makes it diverge
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    paper_file = workflow_dir / "workflow/papers/P1.yaml"
    paper = yaml.safe_load(paper_file.read_text())
    paper["claims"]["P1-C1u"] = {**paper["claims"]["P1-C1"], "experiment": "p1_unstable"}
    paper_file.write_text(yaml.safe_dump(paper, sort_keys=False))

    # as scripts/main.sh runs it: --keep-going, the jobs served by a fork server
    socket = str(workflow_dir / "forkserver.sock")
    server = subprocess.Popen([sys.executable, "-m", "kdprune", "forkserver", "--socket", socket, "--parent", str(os.getpid())])
    try:
        run = ["--cores", "2", "--keep-going", "paper_figures/smoke/claims.md"]
        out = snakemake(workflow_dir, *run, "--config", "recipes={unstable: {lr: 1.0e+30}}", env={ENV: socket})
        check_the_failed_run(workflow_dir, out)
        # The cause fixed (the learning rate as written), the same command makes only what is missing.
        finished = {p: p.stat().st_mtime_ns for p in (workflow_dir / "results/smoke/digits/students/resnet8-student").rglob("metrics.json")}
        again = snakemake(workflow_dir, *run, env={ENV: socket})
    finally:
        server.kill()
        server.wait()
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    ledger = json.loads((workflow_dir / "paper_figures/smoke/claims.json").read_text())
    assert [v["verdict"] != "incomplete" and "missing_runs" not in v for v in ledger] == [True, True]


def check_the_failed_run(workflow_dir, out):
    """The run with the broken experiment: what failed, what finished, what the ledger says."""
    assert out.returncode != 0, out.stderr[-3000:]
    results = workflow_dir / "results/smoke"

    # The broken experiment's jobs: one line each naming the run and the epoch, no traceback, no metrics.
    broken = sorted((results / "digits/students/resnet8-unstable").rglob("train-s0-1.log"))
    assert len(broken) == 2, out.stderr[-3000:]  # ce and kd: one job per grid point, both seeds
    for log in broken:
        text = log.read_text()
        lines = [line for line in text.splitlines() if line.startswith("kdprune run:")]
        assert len(lines) == 1 and "Traceback" not in text, text[-2000:]
        # the run (its label: role, model, seed; its folder holds the log), the step and the epoch
        assert re.search(r"\[student resnet8 s0\] the training loss is \S+ at step \d+ of \d+ in epoch 1\b", lines[0]), lines[0]
    assert not list((results / "digits/students/resnet8-unstable").rglob("metrics.json"))
    assert not list((results / "digits/students/resnet8-unstable").rglob("runs-*.json"))

    # Every other job finished: only those two failed, the healthy experiment's four runs, its runs
    # table and its verdict are there.
    assert re.findall(r"^Error in rule (\w+):", out.stderr, re.M) == ["student", "student"], out.stderr[-3000:]
    healthy = sorted((results / "digits/students/resnet8-student").rglob("metrics.json"))
    assert len(healthy) == 4 and (results / "claims/P1/P1-C1.json").is_file()
    assert not (results / "claims/P1/P1-C1u.json").exists()
    assert "after the failure; incomplete claims: P1-C1u\n" in out.stderr

    ledger = {v["claim"]: v for v in json.loads((workflow_dir / "paper_figures/smoke/claims.json").read_text())}
    assert ledger.keys() == {"P1-C1", "P1-C1u"}
    assert ledger["P1-C1"]["verdict"] in {"supported", "not supported", "inconclusive"} and "missing_runs" not in ledger["P1-C1"]
    missing = ledger["P1-C1u"]["missing_runs"]
    unstable_runs = [str(Path(m).parent) for m in Plan.read(results / "plan.json").experiment_metrics("p1_unstable")]
    assert ledger["P1-C1u"]["verdict"] == "incomplete" and sorted(missing) == sorted(unstable_runs) and len(missing) == 4
    assert all("/resnet8-unstable/" in m and not (workflow_dir / m / "metrics.json").exists() for m in missing)
    table = pd.read_csv(workflow_dir / "paper_figures/smoke/claims.csv").set_index("claim")
    assert table.loc["P1-C1u", "verdict"] == "incomplete" and table.loc["P1-C1u", "missing_runs"].count(";") == 3
    md = (workflow_dir / "paper_figures/smoke/claims.md").read_text()
    assert "1 incomplete" in md and "**Verdict: incomplete**" in md and all(f"`{m}`" in md for m in missing)
