"""scripts/collect_results.py, which commits a run's finished claims under docs/results: a run that
finished only some claims (a later session, a fresh clone) adds them to what the folder holds,
replacing those claims and merging the runs, and the ledger lists every claim in the folder."""

import shutil
import subprocess
import sys

import pandas as pd
from workflow_helpers import REPO

KEPT = REPO / "docs/results/subset"


def test_a_run_of_some_claims_adds_them_to_the_folder(tmp_path):
    out = tmp_path / "out"
    shutil.copytree(KEPT, out)
    for f in (out / "P1").glob("P1-C5.*"):  # the folder before P1-C5 was collected
        f.unlink()
    shutil.rmtree(out / "replicates/P1-C5")
    runs = pd.read_csv(KEPT / "runs.csv")
    alpha = runs[runs.run_dir.str.contains("/keep0.1/kd-") | runs.run_dir.str.contains("/keep1/kd-")]
    runs.drop(alpha.index).to_csv(out / "runs.csv", index=False)

    run = tmp_path / "run"  # a clone that ran P1-C5 alone
    (run / "results/subset/claims/P1").mkdir(parents=True)
    (run / "paper_figures/subset/P1").mkdir(parents=True)
    (run / "results/subset/runs").mkdir(parents=True)
    shutil.copy(KEPT / "P1/P1-C5.verdict.json", run / "results/subset/claims/P1/P1-C5.json")
    for ext in ("md", "csv", "png"):
        shutil.copy(KEPT / f"P1/P1-C5.{ext}", run / f"paper_figures/subset/P1/P1-C5.{ext}")
    shutil.copytree(KEPT / "replicates/P1-C5", run / "results/subset/replicates/P1-C5")
    alpha.to_csv(run / "results/subset/runs/p1_alpha.csv", index=False)

    script = [sys.executable, str(REPO / "scripts/collect_results.py"), "--run", str(run), "--preset", "subset", "--paper", "P1", "--out", str(out)]
    done = subprocess.run(script, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    ledger = pd.read_csv(out / "claims.csv")
    assert list(ledger.claim) == list(pd.read_csv(KEPT / "claims.csv").claim)  # every claim, the new one among them
    assert sorted(p.name for p in (out / "replicates").iterdir()) == sorted(p.name for p in (KEPT / "replicates").iterdir())
    merged = pd.read_csv(out / "runs.csv")
    assert set(merged.run_dir) == set(runs.run_dir) and merged.run_dir.is_unique
    assert (out / "README.md").read_text() == (KEPT / "README.md").read_text()  # the author's


def run_redraw(results, *claims):
    script = [sys.executable, str(REPO / "scripts/redraw_figures.py"), "--preset", "subset", "--results", str(results), "--claims", *claims]
    return subprocess.run(script, capture_output=True, text=True, cwd=REPO)


def test_redrawing_a_claim_figure_reads_its_runs_and_its_rounds(tmp_path):
    """scripts/redraw_figures.py: the figure is drawn again from the claim's committed runs, its
    rounds' added seeds included, and a claim one of whose runs is missing is refused, not drawn
    from part of its data."""
    out = tmp_path / "out"
    shutil.copytree(KEPT, out)
    (out / "P2/P2-C1.png").write_bytes(b"the old figure")
    done = run_redraw(out, "P2-C1")
    assert done.returncode == 0, done.stderr[-2000:]
    figure = (out / "P2/P2-C1.png").read_bytes()
    assert figure.startswith(b"\x89PNG") and len(figure) > 10_000
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in KEPT.iterdir())  # nothing left behind

    runs = pd.read_csv(KEPT / "runs.csv", low_memory=False)
    added = pd.read_json(KEPT / "replicates/P2-C1/round1.json", typ="series")["metrics"][0].rsplit("/", 1)[0]
    runs[runs.run_dir != added].to_csv(out / "runs.csv", index=False)  # a run one of its rounds added
    refused = run_redraw(out, "P2-C1")
    assert refused.returncode != 0 and "P2-C1: 1 of its 64 runs are not in" in refused.stderr
