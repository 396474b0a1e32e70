"""The real workflow through the slurm profile on the test cluster: the smoke preset, packed into
group jobs, must give the same runs table as the local run (up to timing) and the same verdicts."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from workflow_helpers import REPO, copy_workflow, snakemake

from kdprune.report.runs import TIMING_COLUMNS

pytestmark = [pytest.mark.cluster, pytest.mark.workflow]


def comparable(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.drop(columns=TIMING_COLUMNS).sort_values("run_dir").reset_index(drop=True)


def test_smoke_grid_through_the_slurm_profile_equals_the_local_run(slurm_cluster, smoke_run, tmp_path):
    local_dir, local = smoke_run
    assert local.returncode == 0, local.stderr[-3000:]
    workdir = copy_workflow(tmp_path)
    shutil.copytree(REPO / "slurm", workdir / "slurm")
    out = snakemake(workdir, "--profile", "slurm", "--profile", "profiles/slurm-smoke", "all_figures", timeout=1800)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    assert "submitit" in out.stdout + out.stderr  # the jobs really went through the plugin

    remote = pd.read_csv(workdir / "results/smoke/runs.csv")
    assert len(remote) == 139 and (remote.device == "cpu").all()
    pd.testing.assert_frame_equal(comparable(remote), comparable(pd.read_csv(local_dir / "results/smoke/runs.csv")))

    def verdicts(d):
        return [(v["claim"], v["verdict"], v["mean_diff"]) for v in json.loads((d / "paper_figures/claims.json").read_text())]

    assert verdicts(workdir) == verdicts(local_dir)
