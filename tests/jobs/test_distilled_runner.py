"""P4's two job kinds, run as the workflow runs them (specs, inputs and outputs from the smoke plan):
a distilled-set job makes each seed's set in its own folder; an evaluation job trains fresh networks
on each seed's set and writes the run's metrics, deterministically on the CPU."""

import json
from pathlib import Path

import pytest
import torch

from kdprune.files import load_torch
from kdprune.jobs.runners import run_distilled, run_students
from kdprune.plan import Plan
from kdprune.plan.config import ROOT

pytestmark = pytest.mark.usefixtures("one_thread")
FULL = "digits/distilled/dc-ipc1/full/keep1"
EVALUATION = "digits/students/ConvNet-eval/full/keep1/ce-dc-ipc1"


def quiet(msg: str) -> None:
    pass


def moved(paths: dict, root: Path) -> dict:
    """The plan's paths (results/smoke/...) under a test folder."""
    return {k: [str(root / p) for p in v] if isinstance(v, list) else str(root / v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.from_config(ROOT / "config.yaml", {"papers": ["P4"]})


@pytest.fixture(scope="module")
def made(plan, tmp_path_factory) -> Path:
    """The smoke plan's full-data DC sets (IPC 1, seeds 0-2), made by their job."""
    root = tmp_path_factory.mktemp("results")
    run_distilled(plan.spec("distilled", FULL), {}, moved(plan.outputs("distilled", FULL), root), plan.cfg, quiet)
    return root


def test_a_distilled_set_job_writes_each_seeds_set_and_what_made_it(plan, made):
    sets = [load_torch(made / f"results/smoke/{FULL}/s{seed}/synthetic.pt") for seed in (0, 1, 2)]
    for seed, synthetic in enumerate(sets):
        assert synthetic["images"].shape == (10, 1, 8, 8) and synthetic["labels"].tolist() == list(range(10))
        meta = json.loads((made / f"results/smoke/{FULL}/s{seed}/distilled.json").read_text())
        iterations = plan.cfg["distill"]["dc"]["iterations"]
        assert len(meta["history"]) == iterations + 1 and meta["settings"]["iterations"] == iterations
        assert meta["real_used"] == 1347 and meta["distill_seconds"] > 0 and meta["ite_seconds"] == 0 and meta["spec"]["seed"] == seed
    assert not torch.equal(sets[0]["images"], sets[1]["images"])  # each seed its own initialisation and batches


def test_the_evaluation_of_a_set_is_deterministic_and_records_its_distillation(plan, made, tmp_path):
    specs, inputs = plan.spec("student", EVALUATION), moved(plan.inputs("student", EVALUATION), made)
    metrics = []
    for attempt in ("a", "b"):
        outputs = moved(plan.outputs("student", EVALUATION), tmp_path / attempt)
        run_students(specs, inputs, outputs, plan.cfg, quiet)
        record = json.loads(Path(outputs["done"]).read_text())
        assert [run["seed"] for run in record["runs"]] == [0, 1, 2]
        metrics.append([json.loads(Path(outputs[f"run_s{s}"], "metrics.json").read_text()) for s in (0, 1, 2)])
    for first, second in zip(*metrics):
        assert first["accs"] == second["accs"] and len(first["accs"]) == plan.cfg["distill"]["evaluation"]["num_eval"]
        assert first["final_acc"] == pytest.approx(sum(first["accs"]) / len(first["accs"]))
        assert 0.0 <= first["final_acc"] <= 1.0 and first["subset_size"] == 10 and first["n_test"] == 450
        assert first["real_used"] == 1347 and first["distill_seconds"] > 0 and first["spec"]["axes"]["distill"] == "dc"
    assert metrics[0][0]["accs"] != metrics[0][1]["accs"]  # seed s evaluates set s with its own networks


def test_the_causal_effect_criterion_prunes_during_distillation_and_is_timed(plan, tmp_path):
    specs = plan.spec("distilled", FULL)[:1]
    specs[0]["ite"] = {"beta": 0.2, "tails": "both", "interval": 2, "exact": True}
    outputs = {"synthetic_s0": str(tmp_path / "synthetic.pt"), "meta_s0": str(tmp_path / "distilled.json")}
    run_distilled(specs, {}, outputs, plan.cfg, quiet)
    meta = json.loads((tmp_path / "distilled.json").read_text())
    # DC calls the filter once per class and outer loop: (iterations + 1) x 2 outer loops per class, every 2nd refreshes
    iterations, outer = plan.cfg["distill"]["dc"]["iterations"], plan.cfg["distill"]["dc"]["outer_loop"]
    assert meta["ite_refreshes"] == 10 * (((iterations + 1) * outer + 1) // 2)
    assert 0 < meta["ite_seconds"] < meta["distill_seconds"]
