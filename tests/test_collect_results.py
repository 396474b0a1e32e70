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


def redraw(results, *args):
    script = [sys.executable, str(REPO / "scripts/redraw_claims.py"), "--preset", "subset", "--results", str(results), *args]
    return subprocess.run(script, capture_output=True, text=True, cwd=REPO)


def test_redrawing_a_claim_figure_reads_its_runs_and_its_rounds(tmp_path):
    """scripts/redraw_claims.py: the figure is drawn again from the claim's committed runs, its
    rounds' added seeds included, and a claim one of whose runs is missing is refused, not drawn
    from part of its data."""
    out = tmp_path / "out"
    shutil.copytree(KEPT, out)
    (out / "P2/P2-C1.png").write_bytes(b"the old figure")
    done = redraw(out, "--claims", "P2-C1")
    assert done.returncode == 0, done.stderr[-2000:]
    figure = (out / "P2/P2-C1.png").read_bytes()
    assert figure.startswith(b"\x89PNG") and len(figure) > 10_000
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in KEPT.iterdir())  # nothing left behind

    runs = pd.read_csv(KEPT / "runs.csv", low_memory=False)
    added = pd.read_json(KEPT / "replicates/P2-C1/round1.json", typ="series")["metrics"][0].rsplit("/", 1)[0]
    runs[runs.run_dir != added].to_csv(out / "runs.csv", index=False)  # a run one of its rounds added
    refused = redraw(out, "--claims", "P2-C1")
    assert refused.returncode != 0 and "P2-C1: 1 of its 64 runs are not in" in refused.stderr


def test_a_claim_judged_again_from_its_committed_runs_gives_its_committed_verdict(tmp_path):
    """--verdict with the run's --config (the replicates its summary states) reproduces P1-C5n's
    committed verdict and the ledger from runs.csv, and reads runs.csv: a retrained run moves the
    effect."""
    out = tmp_path / "out"
    shutil.copytree(KEPT, out)
    run_config = ["--config", "replicates={min: 3, max: 6, futility: 3}"]
    done = redraw(out, "--claims", "P1-C5n", "--verdict", *run_config)
    assert done.returncode == 0, done.stderr[-2000:]
    committed, again = (pd.read_json(d / "P1/P1-C5n.verdict.json", typ="series") for d in (KEPT, out))
    assert again["verdict"] == committed["verdict"] and again["replicates"] == committed["replicates"]
    cells, committed_cells = pd.DataFrame(again["cells"]), pd.DataFrame(committed["cells"])
    assert list(cells.n_pairs) == list(committed_cells.n_pairs) and list(cells.status) == list(committed_cells.status)
    assert (cells["diff"] - committed_cells["diff"]).abs().max() < 1e-12  # the same runs, summed in another order
    assert (out / "claims.md").read_text() == (KEPT / "claims.md").read_text()

    runs = pd.read_csv(KEPT / "runs.csv", low_memory=False)
    one = runs.run_dir.str.contains("noise0.2/students/resnet8-student/el2n-hardest/keep0.1/kd-resnet20-teacher-s0-a1-T4/s0", regex=False)
    assert one.sum() == 1
    runs.loc[one, "final_acc"] += 0.10  # that run retrained, 10 points better
    runs.to_csv(out / "runs.csv", index=False)
    assert redraw(out, "--claims", "P1-C5n", "--verdict", *run_config).returncode == 0
    moved = pd.read_json(out / "P1/P1-C5n.verdict.json", typ="series")
    assert abs(moved["cells"][0]["diff"] - committed["cells"][0]["diff"]) > 0.01
