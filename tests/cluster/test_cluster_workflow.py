"""The real workflow through the slurm profile on the test cluster: the smoke preset, packed into
group jobs, must give the same runs table as the local run (up to timing) and the same verdicts."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from cluster_helpers import stop_a_training_student
from workflow_helpers import REPO, copy_workflow, snakemake

from kdprune.report.runs import TIMING_COLUMNS

pytestmark = [pytest.mark.cluster, pytest.mark.workflow]


def comparable(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.drop(columns=TIMING_COLUMNS).sort_values("run_dir").reset_index(drop=True)


@pytest.mark.timeout(2700)  # two smoke runs' worth of jobs on 2 cores
def test_smoke_grid_through_the_slurm_profile_equals_the_local_run(slurm_cluster, smoke_run, tmp_path):
    local_dir, local = smoke_run
    assert local.returncode == 0, local.stderr[-3000:]
    workdir = copy_workflow(tmp_path)
    shutil.copytree(REPO / "slurm", workdir / "slurm")
    out = snakemake(workdir, "--profile", "slurm", "--profile", "profiles/slurm-smoke", "all_figures", timeout=1800)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    assert "submitit" in out.stdout + out.stderr  # the jobs really went through the plugin

    remote = pd.read_csv(workdir / "results/smoke/runs.csv")
    assert len(remote) == 13 + 225 + 36 and (remote.device == "cpu").all()  # teachers, students, P4's evaluations
    pd.testing.assert_frame_equal(comparable(remote), comparable(pd.read_csv(local_dir / "results/smoke/runs.csv")))

    def verdicts(d):
        # a claim on measured time (P2-C4a/b: train_seconds) may tip either way between identical runs;
        # its effect on accuracy may not
        ledger = json.loads((d / "paper_figures/smoke/claims.json").read_text())
        timed = {v["claim"] for v in ledger if v["test"].get("cost", {}).get("metric") in TIMING_COLUMNS}
        return [(v["claim"], None if v["claim"] in timed else v["verdict"], v["mean_diff"]) for v in ledger], timed

    assert verdicts(workdir) == verdicts(local_dir) and verdicts(local_dir)[1] == {"P2-C4a", "P2-C4b"}


@pytest.mark.timeout(1200)
def test_student_requeued_mid_training_resumes_and_matches_an_uninterrupted_run(slurm_cluster, tmp_path, background):
    stopped = stop_a_training_student(tmp_path, background, epochs=150, stop=["scontrol", "requeue"])
    assert "resuming from" in stopped.log  # continued from checkpoint.pt, not from epoch 0
    stopped.assert_equals_the_uninterrupted_run()
